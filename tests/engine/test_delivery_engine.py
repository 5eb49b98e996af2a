"""From a completed order to a role in the fake guild: modes, idempotency, rollbacks, provenance."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles.testing import FakeDiscord
from tests.shop import Shop, open_shop

ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+$"


def test_a_paid_order_gives_the_buyer_their_roles_once_the_host_commits(shop: Shop) -> None:
    shop.map("vip", "VIP")
    shop.map("vip", "Supporter")
    buyer = shop.member("alice")

    shop.buy("order-1", "vip", buyer=buyer)

    assert shop.roles_of(buyer) == {"VIP", "Supporter"}
    assert shop.statuses() == [("add", "completed", None), ("add", "completed", None)]


def test_the_same_order_signalled_three_times_gives_each_role_once(shop: Shop) -> None:
    shop.map("vip", "VIP")
    buyer = shop.member("alice")
    for _ in range(3):
        shop.buy("order-1", "vip", buyer=buyer)

    assert len(shop.deliveries()) == 1, "one delivery per role, however often the order is signalled"
    assert len(shop.fake.calls_to("PUT", ROLE_PUT)) == 1, "and one role PUT at Discord"
    assert shop.roles_of(buyer) == {"VIP"}


def test_a_rolled_back_checkout_queues_nothing_and_sends_nothing(shop: Shop) -> None:
    from flask_discord_roles import order_completed

    shop.map("vip", "VIP")
    buyer = shop.member("alice")
    order_completed.send(
        shop.app, store_id=shop.store_id, order_id="order-1", package_ids=["vip"], discord_user_id=buyer
    )
    shop.db.session.rollback()
    shop.db.session.commit()  # a later, unrelated commit must not dispatch the rolled-back rows

    assert shop.deliveries() == []
    assert shop.fake.calls == [], "nothing may reach Discord for an order that never committed"
    assert shop.roles_of(buyer) == set()


def test_claim_mode_waits_for_the_customer_even_when_their_discord_id_is_known(shop: Shop) -> None:
    shop.settings(delivery_mode="claim")
    shop.map("vip", "VIP")
    buyer = shop.member("alice")

    shop.buy("order-1", "vip", buyer=buyer)

    (row,) = shop.deliveries()
    assert (row.status, row.next_attempt_at) == ("pending", None), "claim mode waits for /claim"
    assert shop.roles_of(buyer) == set()
    assert shop.fake.calls == []


# -- permanent failures: a reason code and a fix in plain words --------------------------------------


@pytest.mark.parametrize(
    ("setup", "code", "hint"),
    [
        ("role_above_bot", "role_above_bot", "Move the bot's role above «Legend»"),
        ("managed_role", "managed_role", "managed by an integration"),
        ("role_deleted", "role_deleted", "no longer exists"),
        ("member_not_in_guild", "member_not_in_guild", "Ask them to join it, then run /claim"),
    ],
)
def test_each_permanent_error_fails_at_once_with_its_reason_and_fix(
    shop: Shop, setup: str, code: str, hint: str
) -> None:
    buyer = shop.member("alice")
    if setup == "role_above_bot":
        shop.fake.move_role(shop.guild_id, shop.role("Legend"), 100)  # dragged above the bot's role
    elif setup == "managed_role":
        shop.role("Legend", managed=True)
    else:
        shop.role("Legend")
    shop.map("legend", "Legend")
    if setup == "role_deleted":
        shop.fake.guild(shop.guild_id).roles.pop(shop.roles["Legend"])
    if setup == "member_not_in_guild":
        buyer = shop.fake.create_user("stranger").id

    shop.buy("order-1", "legend", buyer=buyer)

    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("failed", code), f"expected {code}, got {row.reason}"
    assert hint in (row.reason or ""), f"the fix hint should say {hint!r}; it says {row.reason!r}"
    assert row.attempts == 1, "a permanent error is not retried"


def test_missing_manage_roles_is_named_as_the_fix(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    shop = open_shop(app, db, fake_discord, bot_permissions=0)
    buyer = shop.member("alice")
    shop.role("VIP", position=1)
    shop.map("vip", "VIP")

    shop.buy("order-1", "vip", buyer=buyer)

    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("failed", "missing_manage_roles"), row.reason
    assert "Manage Roles" in (row.reason or "")


def test_a_revoked_token_fails_the_delivery_and_switches_the_bot_off_until_it_is_saved_again(
    shop: Shop,
) -> None:
    from flask_discord_roles._core.bots import get_bot, save_bot
    from flask_discord_roles._runtime.state import get_state

    shop.map("vip", "VIP")
    alice, bob = shop.member("alice"), shop.member("bob")
    shop.fake.revoke_bot_token(shop.bot)

    shop.buy("order-1", "vip", buyer=alice)
    shop.buy("order-2", "vip", buyer=bob)

    first, second = shop.deliveries()
    assert (first.status, first.reason_code) == ("failed", "token_revoked")
    assert "paste a new token" in (first.reason or "")
    bot = get_bot(get_state(shop.app), shop.store_id)
    assert bot is not None
    assert (bot.is_enabled, bot.disabled_reason) == (False, "token_revoked")
    assert (second.status, second.reason_code, second.next_attempt_at) == ("pending", "bot_disabled", None), (
        "later orders wait for a working bot instead of failing one by one"
    )

    new_token = shop.fake.rotate_bot_token(shop.bot)
    save_bot(
        get_state(shop.app),
        shop.store_id,
        application_id=shop.bot.application_id,
        public_key=shop.bot.public_key,
        bot_token=new_token,
    )
    shop.db.session.commit()

    assert shop.roles_of(bob) == {"VIP"}, "saving a working token delivers what waited for it"
    assert shop.deliveries()[1].status == "completed"


def test_transient_errors_are_retried_with_backoff_until_they_succeed(shop: Shop) -> None:
    from flask_discord_roles._engine.worker import Worker

    shop.map("vip", "VIP")
    buyer = shop.member("alice")
    shop.fake.set_faults(error_rate=1.0)

    shop.buy("order-1", "vip", buyer=buyer)

    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("pending", "discord_unavailable")
    assert row.next_attempt_at is not None, "a transient error schedules another attempt"
    assert row.next_attempt_at > row.updated_at, "...later, not at once"
    shop.fake.set_faults(error_rate=0.0)
    Worker(shop.app, poll_interval=0.05).run_pass()  # too early: not due yet, or due; either is fine
    _run_worker_until_settled(shop)
    (row,) = shop.deliveries()
    assert row.status == "completed"
    assert shop.roles_of(buyer) == {"VIP"}


def test_transient_errors_past_the_last_attempt_fail_with_a_retry_later_hint(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    buyer = shop.member("alice")
    shop.fake.set_faults(error_rate=1.0)

    shop.buy("order-1", "vip", buyer=buyer)
    _run_worker_until_settled(shop)

    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("failed", "discord_unavailable"), row.reason
    assert row.attempts == 8, "the default DISCORD_ROLES_MAX_ATTEMPTS"
    assert "retry the delivery later" in (row.reason or "")


def _run_worker_until_settled(shop: Shop, timeout: float = 20.0) -> None:
    """Run worker passes until no delivery is pending and scheduled (retries included)."""
    import time

    from flask_discord_roles._engine.worker import Worker

    worker = Worker(shop.app, poll_interval=0.05)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            worker.run_pass()
            if not [r for r in shop.deliveries(status="pending") if r.next_attempt_at is not None]:
                return
            time.sleep(0.05)
    finally:
        worker.drainer.close()
    raise AssertionError(f"deliveries still pending after {timeout}s: {shop.statuses()}")
