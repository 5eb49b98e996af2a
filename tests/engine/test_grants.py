"""Roles that last as long as what was bought: subscriptions renew, lapse after grace, end on revoke,
and remind once before they expire.

The clock is the ``now`` each sweep is given. Scenarios that end grants are set in the past (an order
may carry an expiry already gone), so the removals a sweep queues "now" are due for the real runner too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest

from flask_discord_roles import grants, order_completed, order_revoked
from flask_discord_roles._core import grant_sweeps as sweeps
from flask_discord_roles._core.grant_sweeps import due_reminders, end_batch
from flask_discord_roles._engine.worker import Worker
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.signals import grant_ended, grant_expiring, grant_renewed
from tests.shop import Shop

ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+$"
DM_POST = r"/channels/\d+/messages$"
MONTH = timedelta(days=30)


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop, selling VIP monthly (a subscription) and for life (a plain order)."""
    shop.map("vip-monthly", "VIP")
    shop.map("vip-lifetime", "VIP")
    return shop


def subscribe(
    shop: Shop,
    order_id: str,
    *,
    buyer: str | None,
    expires_at: datetime,
    subscription_id: str | None = "sub-1",
    package: str = "vip-monthly",
    customer: str = "customer-1",
) -> None:
    """The host's checkout (or its billing webhook for a renewal): order_completed with an expiry."""
    order_completed.send(
        shop.app,
        store_id=shop.store_id,
        order_id=order_id,
        customer_id=customer,
        package_ids=[package],
        discord_user_id=buyer,
        expires_at=expires_at,
        subscription_id=subscription_id,
    )
    shop.db.session.commit()


def the_grant(shop: Shop, **where: Any) -> grants.GrantInfo:
    found = grants.list_grants(shop.store_id, **where)
    assert len(found) == 1, f"expected one grant, found {found}"
    return found[0]


@contextmanager
def received(signal: Any) -> Iterator[list[grants.GrantInfo]]:
    seen: list[grants.GrantInfo] = []

    def receive(sender: Any, grant: grants.GrantInfo) -> None:
        seen.append(grant)

    signal.connect(receive)
    try:
        yield seen
    finally:
        signal.disconnect(receive)


def ago(hours: float) -> datetime:
    return utcnow() - timedelta(hours=hours)


def test_a_renewal_extends_the_grant_without_touching_discord(shop: Shop) -> None:
    buyer = shop.member("alice")
    first_end = utcnow() - MONTH - timedelta(days=2)
    subscribe(shop, "order-1", buyer=buyer, expires_at=first_end)
    assert shop.roles_of(buyer) == {"VIP"}
    shop.fake.clear_calls()

    with received(grant_renewed) as renewed:
        subscribe(shop, "order-2", buyer=buyer, expires_at=first_end + MONTH)
        subscribe(shop, "order-2", buyer=buyer, expires_at=first_end + MONTH)  # the webhook, twice

    assert shop.fake.calls == [], "a renewal changes no role: Discord must not even be asked"
    assert len(shop.deliveries()) == 1, "a renewal queues no delivery"
    grant = the_grant(shop)
    assert (grant.order_id, grant.last_order_id, grant.renewals) == ("order-1", "order-2", 1)
    assert grant.expires_at == grant.ends_at == first_end + MONTH
    assert [g.last_order_id for g in renewed] == ["order-2"], "one grant_renewed, after the commit"

    assert grants.end_due_grants(now=first_end + timedelta(hours=1)) == []
    assert shop.roles_of(buyer) == {"VIP"}, "the first period's end no longer counts"
    (ended,) = grants.end_due_grants(now=first_end + MONTH)
    assert (ended.status, ended.end_reason) == ("ended", "expired")
    assert shop.roles_of(buyer) == set(), "the renewed period ran out: the role goes"


def test_a_grant_lapses_only_after_its_grace_period(shop: Shop) -> None:
    shop.settings(grace_hours=48)
    buyer = shop.member("alice")
    expires = ago(49)
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires)
    assert the_grant(shop).ends_at == expires + timedelta(hours=48)

    assert grants.end_due_grants(now=expires + timedelta(hours=47)) == []
    assert shop.roles_of(buyer) == {"VIP"}, "still inside the grace period"

    with received(grant_ended) as ended:
        grants.end_due_grants(now=expires + timedelta(hours=48))
        assert grants.end_due_grants(now=expires + timedelta(hours=49)) == [], "ends once"
    assert shop.roles_of(buyer) == set()
    assert [(g.status, g.end_reason) for g in ended] == [("ended", "expired")]
    assert [(r.action, r.status, r.order_id) for r in shop.deliveries()] == [
        ("add", "completed", "order-1"),
        ("remove", "completed", "order-1"),
    ]


def test_changing_the_grace_period_moves_the_end_of_active_grants(shop: Shop) -> None:
    from flask_discord_roles import store_settings

    buyer = shop.member("alice")
    expires = utcnow() + MONTH
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires)
    store_settings.update_settings(shop.store_id, grace_hours=72, expiry_reminder_hours=24)
    shop.db.session.commit()
    shop.db.session.expire_all()
    grant = the_grant(shop)
    assert grant.ends_at == expires + timedelta(hours=72)
    assert grants.end_due_grants(now=expires + timedelta(hours=71)) == []
    assert grants.send_due_reminders(now=expires - timedelta(hours=23)) == 1, "the new reminder is due"


def test_a_role_another_purchase_still_grants_stays_when_the_subscription_lapses(shop: Shop) -> None:
    buyer = shop.member("alice")
    expires = ago(1)
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires)
    shop.buy("order-2", "vip-lifetime", buyer=buyer)

    grants.end_due_grants(now=expires)

    assert the_grant(shop).status == "ended"
    assert shop.roles_of(buyer) == {"VIP"}, "order-2 (for life) still grants VIP"
    assert shop.fake.calls_to("DELETE", ROLE_PUT) == [], "no removal may even be attempted"


@pytest.mark.parametrize("revoked", ["first order", "renewal order", "subscription id"])
def test_revoking_a_subscription_ends_its_grant_at_once(shop: Shop, revoked: str) -> None:
    buyer = shop.member("alice")
    expires = utcnow() + MONTH
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires)
    subscribe(shop, "order-2", buyer=buyer, expires_at=expires + MONTH)

    with received(grant_ended) as ended:
        order_revoked.send(
            shop.app,
            store_id=shop.store_id,
            order_id={"first order": "order-1", "renewal order": "order-2"}.get(revoked, "refund-9"),
            customer_id="customer-1",
            subscription_id="sub-1" if revoked == "subscription id" else None,
        )
        shop.db.session.commit()

    assert shop.roles_of(buyer) == set(), "the role goes now, not at the end of the period"
    assert [(g.status, g.end_reason) for g in ended] == [("ended", "revoked")]
    assert grants.end_due_grants(now=expires + 2 * MONTH) == [], "an ended grant does not end again"


def test_an_ended_subscription_paid_again_gives_the_role_back(shop: Shop) -> None:
    buyer = shop.member("alice")
    expires = ago(1)
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires)
    grants.end_due_grants(now=expires)
    assert shop.roles_of(buyer) == set()

    subscribe(shop, "order-2", buyer=buyer, expires_at=expires + MONTH)

    assert shop.roles_of(buyer) == {"VIP"}
    grant = the_grant(shop)
    assert (grant.status, grant.order_id, grant.renewals, grant.end_reason) == ("active", "order-2", 0, None)


def test_the_same_order_sent_again_changes_nothing(shop: Shop) -> None:
    buyer = shop.member("alice")
    expires = utcnow() + MONTH
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires, subscription_id=None)  # a fixed term
    subscribe(shop, "order-2", buyer=buyer, expires_at=expires)
    shop.fake.clear_calls()
    before = [(row.id, row.status) for row in shop.deliveries()]

    subscribe(shop, "order-1", buyer=buyer, expires_at=expires, subscription_id=None)
    subscribe(shop, "order-2", buyer=buyer, expires_at=expires)

    assert [(row.id, row.status) for row in shop.deliveries()] == before
    assert shop.fake.calls == []
    assert sorted((g.order_id, g.renewals) for g in grants.list_grants(shop.store_id)) == [
        ("order-1", 0),
        ("order-2", 0),
    ]


def test_an_expiry_already_past_is_accepted_and_the_worker_ends_it(shop: Shop) -> None:
    buyer = shop.member("alice")
    subscribe(shop, "order-1", buyer=buyer, expires_at=utcnow() - timedelta(minutes=1))
    assert shop.roles_of(buyer) == {"VIP"}, "delivered as any order is"

    worker = Worker(shop.app, poll_interval=0.05)
    try:
        worker.run_pass()
    finally:
        worker.drainer.close()

    assert the_grant(shop).end_reason == "expired"
    assert shop.roles_of(buyer) == set(), "the worker's drain ran the removal the sweep queued"


# -- reminders ---------------------------------------------------------------------------------------


def test_the_expiry_reminder_goes_once_even_with_two_workers(shop: Shop) -> None:
    shop.settings(expiry_reminder_hours=24)
    buyer = shop.member("alice")
    expires = utcnow() + MONTH
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires)

    with received(grant_expiring) as expiring:
        assert grants.send_due_reminders(now=expires - timedelta(hours=25)) == 0, "not yet"
        due = expires - timedelta(hours=23)
        sent = [grants.send_due_reminders(now=due), grants.send_due_reminders(now=due)]  # two workers

    assert sorted(sent) == [0, 1]
    assert [g.package_id for g in expiring] == ["vip-monthly"]
    (message,) = shop.fake.dm_messages(shop.bot, buyer)
    assert f"<t:{int(expires.timestamp())}:R>" in message["content"], message["content"]
    assert "vip-monthly" in message["content"]
    assert "**VIP**" in message["content"]
    grant = the_grant(shop)
    assert grant.reminded_at == due


def test_no_reminder_for_a_period_a_renewal_replaced(shop: Shop) -> None:
    shop.settings(expiry_reminder_hours=24)
    buyer = shop.member("alice")
    expires = utcnow() + MONTH
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires)
    subscribe(shop, "order-2", buyer=buyer, expires_at=expires + MONTH)

    assert grants.send_due_reminders(now=expires - timedelta(hours=1)) == 0
    assert shop.fake.dm_messages(shop.bot, buyer) == []
    assert grants.send_due_reminders(now=expires + MONTH - timedelta(hours=1)) == 1, "the new period's"


def test_a_reminder_discord_refuses_is_recorded_and_not_retried(shop: Shop) -> None:
    shop.settings(expiry_reminder_hours=24)
    buyer = shop.member("alice")
    shop.fake.close_dms(buyer)
    expires = utcnow() + MONTH
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires)

    with received(grant_expiring) as expiring:
        for hours_before in (23, 22, 1):
            grants.send_due_reminders(now=expires - timedelta(hours=hours_before))

    assert len(expiring) == 1, "the host still hears of it, once"
    assert len(shop.fake.calls_to("POST", DM_POST)) == 1, "refused once, never tried again"
    grant_row = shop.db.session.get(get_state(shop.app).models.Grant, the_grant(shop).id)
    assert grant_row is not None
    assert grant_row.reminder_reason_code == "dms_closed"
    public = grants.get_grant(shop.store_id, grant_row.id)
    assert (public.reminder_reason_code, public.reminded_at is not None) == ("dms_closed", True), (
        "the public API must say why the reminder's DM did not go"
    )


# -- the sweeps read only what is due -------------------------------------------------------------------


def test_the_sweeps_read_only_their_partial_indexes(shop: Shop) -> None:
    models = get_state(shop.app).models
    now = utcnow()
    with shop.db.engine.connect() as connection:
        dialect = connection.dialect
        if dialect.name == "postgresql":
            # An empty table is cheapest to scan whole; forbid that to see whether the index can serve.
            connection.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN QUERY PLAN" if dialect.name == "sqlite" else "EXPLAIN"
        for index, statement in (
            ("ix_discord_roles_grants_ending", end_batch(models.Grant, now, 100, dialect.name)),
            ("ix_discord_roles_grants_reminders", due_reminders(models.Grant, now, 100)),
        ):
            sql = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
            plan = "\n".join(str(row[-1]) for row in connection.exec_driver_sql(f"{explain} {sql}"))
            assert index in plan, f"the sweep must read {index}; the plan is:\n{plan}"
            assert "SCAN discord_roles_grants" not in plan, f"a full scan:\n{plan}"


MEMBERS = 4
"""Few enough that their roles go out within one of FakeDiscord's rate-limit windows."""


def test_two_workers_sweeping_at_once_end_and_remind_each_grant_once(shop: Shop, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers at once need PostgreSQL (SQLite: one worker, see the workers docs)")
    shop.settings(expiry_reminder_hours=24, expiry_reminder_dm=False)
    expires = utcnow() + MONTH
    for number in range(MEMBERS):
        lapsed, ending = shop.member(f"lapsed-{number}"), shop.member(f"ending-{number}")
        subscribe(shop, f"lapsed-{number}", buyer=lapsed, expires_at=ago(1), subscription_id=f"a-{number}")
        subscribe(shop, f"ending-{number}", buyer=ending, expires_at=expires, subscription_id=f"b-{number}")
    assert [r.status for r in shop.deliveries(action="add")] == ["completed"] * 2 * MEMBERS
    state = get_state(shop.app)
    start = threading.Barrier(2)

    def worker() -> None:
        with shop.app.app_context():
            start.wait(timeout=10)
            sweeps.end_due_grants(state, now=utcnow(), batch_size=2)
            sweeps.send_due_reminders(state, now=expires - timedelta(hours=1), batch_size=20)

    with received(grant_ended) as ended, received(grant_expiring) as expiring:
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert sorted(g.order_id for g in ended) == [f"lapsed-{n}" for n in range(MEMBERS)], "each ends once"
    assert sorted(g.order_id for g in expiring) == [f"ending-{n}" for n in range(MEMBERS)], "once each"
    assert len(shop.deliveries(action="remove")) == MEMBERS, "one removal per ended grant"


def test_a_reminder_discord_could_not_take_is_recorded_and_not_retried(shop: Shop) -> None:
    shop.settings(expiry_reminder_hours=24)
    buyer = shop.member("alice")
    expires = utcnow() + MONTH
    subscribe(shop, "order-1", buyer=buyer, expires_at=expires)
    shop.fake.set_faults(error_rate=1.0, routes=["messages"])  # Discord answers 500 to the DM

    sent = [grants.send_due_reminders(now=expires - timedelta(hours=h)) for h in (23, 22)]
    shop.fake.set_faults()

    assert sent == [1, 0], "claimed once: at most once means a failed DM is not sent again"
    assert len(shop.fake.calls_to("POST", DM_POST)) == 1
    grant_row = shop.db.session.get(get_state(shop.app).models.Grant, the_grant(shop).id)
    assert grant_row is not None
    assert grant_row.reminder_reason_code == "discord_unavailable"
