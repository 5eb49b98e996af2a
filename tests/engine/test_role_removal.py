"""Refunds take away only what we granted and nothing else still grants; owners can do anything by hand."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from flask_discord_roles import deliveries
from flask_discord_roles._engine.worker import Worker, build_runners
from flask_discord_roles.testing import FakeDiscord
from tests.shop import FAST_QUEUE, Shop, open_shop

ROLE_DELETE = r"/guilds/\d+/members/\d+/roles/\d+$"


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop, selling one VIP role through two packages."""
    shop.map("vip-monthly", "VIP")
    shop.map("vip-lifetime", "VIP")
    return shop


def test_a_role_two_orders_grant_stays_until_both_are_refunded(shop: Shop) -> None:
    buyer = shop.member("alice")
    shop.buy("order-1", "vip-monthly", buyer=buyer)
    shop.buy("order-2", "vip-lifetime", buyer=buyer)
    assert shop.roles_of(buyer) == {"VIP"}

    shop.refund("order-1")
    assert shop.roles_of(buyer) == {"VIP"}, "order-2 still grants VIP: it must stay"
    assert shop.fake.calls_to("DELETE", ROLE_DELETE) == [], "no removal may even be attempted"

    shop.refund("order-2")
    assert shop.roles_of(buyer) == set(), "nothing grants VIP any more: it goes"
    removal = shop.deliveries(action="remove")
    assert [(r.status, r.order_id) for r in removal] == [("completed", "order-2")]
    audit = shop.fake.audit_log(shop.guild_id)
    assert any("order order-2 revoked" in (entry.get("reason") or "") for entry in audit), audit


def test_a_role_the_customer_had_before_us_is_never_removed(shop: Shop) -> None:
    buyer = shop.member("alice", roles=("VIP",))
    shop.buy("order-1", "vip-monthly", buyer=buyer)
    (grant,) = shop.deliveries()
    assert (grant.status, grant.role_was_present) == ("completed", True)

    shop.refund("order-1")

    assert shop.roles_of(buyer) == {"VIP"}, "we did not grant VIP, so a refund must not take it"
    assert shop.deliveries(action="remove") == []


def test_refunding_an_order_touches_only_that_order_whatever_its_id_looks_like(shop: Shop) -> None:
    # An order's rows are found by their key's "order:<id>:" prefix; ids that extend one another, or
    # hold the ":" that ends the prefix, must still not reach each other's rows.
    buyers = {order_id: shop.member(f"buyer-{n}") for n, order_id in enumerate(["7", "7:add", "77", "7;"])}
    for order_id, buyer in buyers.items():
        shop.buy(order_id, "vip-monthly", buyer=buyer, customer=f"customer-{order_id}")

    shop.refund("7", customer="customer-7")

    kept = {order_id for order_id, buyer in buyers.items() if shop.roles_of(buyer) == {"VIP"}}
    assert kept == {"7:add", "77", "7;"}, "only order 7's buyer loses VIP"
    assert [r.order_id for r in shop.deliveries(action="remove")] == ["7"]
    page = deliveries.list_deliveries(shop.store_id, order_id="7")
    assert [(item.order_id, item.action) for item in page.items] == [("7", "remove"), ("7", "add")]


def test_refunding_twice_queues_one_removal(shop: Shop) -> None:
    buyer = shop.member("alice")
    shop.buy("order-1", "vip-monthly", buyer=buyer)
    shop.refund("order-1")
    shop.refund("order-1")
    assert len(shop.deliveries(action="remove")) == 1
    assert len(shop.fake.calls_to("DELETE", ROLE_DELETE)) == 1


def test_refunding_an_undelivered_order_cancels_it_and_removes_nothing(shop: Shop) -> None:
    shop.settings(delivery_mode="claim")
    buyer = shop.member("alice")
    shop.buy("order-1", "vip-monthly", buyer=buyer)
    shop.refund("order-1")

    (grant,) = shop.deliveries()
    assert (grant.status, grant.reason_code) == ("expired", "order_revoked")
    with pytest.raises(deliveries.ValidationError):
        deliveries.retry_delivery(shop.store_id, grant.id)
    assert shop.fake.calls == []


def test_a_repurchase_after_a_refund_grants_the_role_again(shop: Shop) -> None:
    buyer = shop.member("alice")
    shop.buy("order-1", "vip-monthly", buyer=buyer)
    shop.refund("order-1")
    shop.buy("order-2", "vip-monthly", buyer=buyer)
    assert shop.roles_of(buyer) == {"VIP"}


def test_the_owner_can_give_and_take_any_role_by_hand(shop: Shop) -> None:
    buyer = shop.member("alice", roles=("VIP",))  # theirs before us
    moderator = shop.role("Helper")

    given = deliveries.assign_role(
        shop.store_id, guild_id=shop.guild_id, role_id=moderator, discord_user_id=buyer, role_name="Helper"
    )
    shop.db.session.commit()
    assert shop.roles_of(buyer) == {"VIP", "Helper"}

    deliveries.remove_role(
        shop.store_id, guild_id=shop.guild_id, role_id=shop.roles["VIP"], discord_user_id=buyer
    )
    shop.db.session.commit()
    assert shop.roles_of(buyer) == {"Helper"}, (
        "a manual removal is carried out even for a role we did not grant"
    )

    rows = shop.deliveries(source="manual")
    assert [(r.id == given.id, r.action, r.status) for r in rows] == [
        (True, "add", "completed"),
        (False, "remove", "completed"),
    ]
    audit = [entry.get("reason") or "" for entry in shop.fake.audit_log(shop.guild_id)]
    assert all("manual change by the store owner" in reason for reason in audit[-2:]), audit


def test_a_manual_change_with_a_bad_id_changes_nothing(shop: Shop) -> None:
    with pytest.raises(deliveries.ValidationError) as refused:
        deliveries.assign_role(
            shop.store_id, guild_id=shop.guild_id, role_id="not-a-role", discord_user_id="1"
        )
    assert set(refused.value.errors) == {"role_id", "discord_user_id"}
    shop.db.session.commit()
    assert shop.deliveries() == []


def test_a_gift_bought_by_the_same_customer_does_not_keep_the_refunded_buyers_role(shop: Shop) -> None:
    alice, bob = shop.member("alice"), shop.member("bob")
    shop.buy("order-1", "vip-monthly", buyer=alice, customer="payer")
    shop.buy("order-2", "vip-monthly", buyer=bob, customer="payer")  # a gift for bob

    shop.refund("order-1", customer="payer")

    assert (shop.roles_of(alice), shop.roles_of(bob)) == (set(), {"VIP"})


def test_an_order_refunded_while_its_role_is_being_delivered_still_ends_without_the_role(
    make_app: Any, database_url: str, fake_discord: FakeDiscord
) -> None:
    config = {**FAST_QUEUE, "DISCORD_ROLES_EXECUTOR": "worker"}  # rows wait for the runner we drive
    app, db, _ = make_app(database_url, DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url, **config)
    with app.app_context():
        db.create_all()
        shop = open_shop(app, db, fake_discord)
        shop.map("vip", "VIP")
        buyer = shop.member("alice")
        shop.buy("order-1", "vip", buyer=buyer)
        runner, _ = build_runners(app)
        (claimed,) = runner.claim(10)
        shop.fake.set_faults(slow_seconds=0.5)  # each Discord call takes a while...
        delivering = threading.Thread(target=runner.run, args=(claimed,))
        delivering.start()
        time.sleep(0.25)
        shop.refund("order-1")  # ...and the refund lands while the role is on its way
        (row,) = shop.deliveries()
        assert (row.status, row.revoked_at is not None) == ("pending", True), "in flight: left to its runner"
        delivering.join(timeout=10)
        shop.fake.set_faults(slow_seconds=0.0)
        Worker(app).run(once=True)

        assert shop.roles_of(buyer) == set(), "the role that went out during the refund is taken back"
        assert [(r.action, r.status) for r in shop.deliveries()] == [
            ("add", "completed"),
            ("remove", "completed"),
        ]
        db.session.remove()
        db.engine.dispose()


def test_a_role_whose_put_timed_out_but_was_applied_is_still_ours_to_remove(shop: Shop) -> None:
    buyer = shop.member("alice")
    # The PUT times out on our side, yet Discord applies it: the retry finds the role already there.
    shop.fake.set_faults(timeout_rate=1.0, timeout_seconds=2.5, routes=["member_role"])
    shop.buy("order-1", "vip-monthly", buyer=buyer)
    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("pending", "discord_unavailable"), shop.statuses()
    shop.fake.set_faults()
    time.sleep(1.0)  # the fake applies the timed-out PUT 2.5 s after it arrived, i.e. about now
    assert shop.roles_of(buyer) == {"VIP"}, "the timed-out PUT landed"
    _settle(shop)
    (row,) = shop.deliveries()
    assert (row.status, row.role_was_present) == ("completed", False), "we granted it, even if unconfirmed"

    shop.refund("order-1")

    assert shop.roles_of(buyer) == set(), "a refund takes back a role whose grant timed out but landed"


def _settle(shop: Shop, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    worker = Worker(shop.app, poll_interval=0.05)
    try:
        while any(r.next_attempt_at is not None for r in shop.deliveries(status="pending")):
            assert time.monotonic() < deadline, f"still pending: {shop.statuses()}"
            worker.run_pass()
            time.sleep(0.05)
    finally:
        worker.drainer.close()
