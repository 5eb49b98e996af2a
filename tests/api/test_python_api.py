"""The public Python API a host's dashboard calls: deliveries (list and filter, retry, stats, per day for
a chart), the signals we send, a customer's roles given and taken by hand, and diagnostics, each with the
checks the tenant API makes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_discord_roles
from flask_discord_roles import (
    DeliveryInfo,
    customers,
    deliveries,
    delivery_failed,
    diagnostics,
    role_delivered,
    role_removed,
)
from flask_discord_roles.deliveries import DayCount, ValidationError
from tests.shop import FAST_QUEUE, Shop

# Python calls, not HTTP: Discord calls as short and unforgiving as the engine's, not the API's.
pytestmark = pytest.mark.app_settings(FAST_QUEUE)


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop, selling VIP."""
    shop.map("vip", "VIP")
    return shop


def test_the_new_modules_are_part_of_the_package() -> None:
    for name in ("customers", "diagnostics"):
        assert name in flask_discord_roles.__all__, f"flask_discord_roles.__all__ lacks {name}"
    for module, name in ((diagnostics, "Check"), (diagnostics, "Diagnosis"), (deliveries, "DayCount")):
        assert name in module.__all__, f"{module.__name__} does not export {name}"
    assert "deliveries_per_day" in deliveries.__all__


# -- deliveries: listing, retrying, stats and signals ----------------------------------------------------


def test_listing_filters_by_status_customer_order_and_discord_user_and_pages_newest_first(shop: Shop) -> None:
    members = [shop.member(f"user{n}") for n in range(5)]
    stranger = shop.fake.create_user("stranger").id  # not in the server: fails
    for n, member in enumerate(members):
        shop.buy(f"order-{n}", "vip", buyer=member, customer=f"customer-{n}")
    shop.buy("order-x", "vip", buyer=stranger, customer="customer-x")

    first = deliveries.list_deliveries(shop.store_id, limit=4)
    assert [item.order_id for item in first.items] == ["order-x", "order-4", "order-3", "order-2"]
    assert first.next_before_id is not None
    second = deliveries.list_deliveries(shop.store_id, limit=4, before_id=first.next_before_id)
    assert [item.order_id for item in second.items] == ["order-1", "order-0"]
    assert second.next_before_id is None, "the last page says there is no next one"

    failed = deliveries.list_deliveries(shop.store_id, status="failed").items
    assert [(item.order_id, item.reason_code) for item in failed] == [("order-x", "member_not_in_guild")]
    assert [
        i.order_id for i in deliveries.list_deliveries(shop.store_id, customer_id="customer-2").items
    ] == ["order-2"]
    assert [
        i.order_id for i in deliveries.list_deliveries(shop.store_id, discord_user_id=members[1]).items
    ] == ["order-1"]
    assert deliveries.list_deliveries("another-store").items == [], "stores never see each other's rows"
    payload = failed[0].to_dict()
    assert payload["status"] == "failed"
    assert payload["created_at"].endswith("Z"), "times are ISO 8601 in UTC"


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"source": "robot"}, "source"),
        ({"limit": 0}, "limit"),
        ({"before_id": 2**70}, "before_id"),  # past BIGINT: SQLite's driver would overflow on it
        ({"before_id": 0}, "before_id"),
        ({"before_id": "12"}, "before_id"),
    ],
)
def test_listing_refuses_bad_filters_with_the_field_named(
    shop: Shop, filters: dict[str, Any], field: str
) -> None:
    with pytest.raises(deliveries.ValidationError) as refused:
        deliveries.list_deliveries(shop.store_id, **filters)
    assert field in refused.value.errors


def test_a_failed_delivery_retried_after_the_customer_joins_is_delivered(shop: Shop) -> None:
    stranger = shop.fake.create_user("late-joiner").id
    shop.buy("order-1", "vip", buyer=stranger)
    (row,) = shop.deliveries()
    assert row.reason_code == "member_not_in_guild"

    shop.fake.add_member(shop.guild_id, stranger)
    info = deliveries.retry_delivery(shop.store_id, row.id)
    assert (info.status, info.attempts) == ("pending", 0), "back to pending with fresh attempts"
    shop.db.session.commit()

    assert shop.roles_of(stranger) == {"VIP"}
    with pytest.raises(deliveries.ValidationError):
        deliveries.retry_delivery(shop.store_id, row.id)  # completed now: nothing to retry
    with pytest.raises(deliveries.DeliveryNotFound):
        deliveries.retry_delivery("another-store", row.id)


def test_retrying_every_failure_matching_a_filter_retries_just_those(shop: Shop) -> None:
    strangers = [shop.fake.create_user(f"s{n}").id for n in range(3)]
    for n, user in enumerate(strangers):
        shop.buy(f"order-{n}", "vip", buyer=user, customer=f"c{n}")
    for user in strangers[:2]:
        shop.fake.add_member(shop.guild_id, user)

    retried = deliveries.retry_deliveries(shop.store_id, reason_code="member_not_in_guild", customer_id="c0")
    shop.db.session.commit()
    assert retried == deliveries.Retried(retried=1, refused={})
    assert [shop.roles_of(user) for user in strangers[:2]] == [{"VIP"}, set()]

    assert deliveries.retry_deliveries(shop.store_id).retried == 2
    shop.db.session.commit()
    statuses = sorted(row.status for row in shop.deliveries())
    assert statuses == ["completed", "completed", "failed"], "s2 never joined: it fails again"


def test_stats_are_counters_on_the_bot_row(shop: Shop) -> None:
    alice, bob = shop.member("alice"), shop.member("bob")
    shop.buy("order-1", "vip", buyer=alice, customer="alice")
    shop.buy("order-2", "vip", buyer=bob, customer="bob")
    shop.buy("order-3", "vip", buyer=shop.fake.create_user("stranger").id, customer="stranger")
    shop.refund("order-1", customer="alice")

    stats = deliveries.store_stats(shop.store_id)
    assert (stats.total_roles_assigned, stats.total_roles_removed, stats.total_errors) == (2, 1, 1)
    assert stats.success_rate == pytest.approx(66.7)
    assert stats.is_active is True
    assert deliveries.store_stats("no-bot-store").success_rate == 100.0


def test_a_role_the_member_already_held_is_not_counted_as_assigned(shop: Shop) -> None:
    carol = shop.member("carol", roles=("VIP",))
    shop.buy("order-1", "vip", buyer=carol, customer="carol")
    (delivery,) = shop.deliveries()
    assert delivery.status == "completed"
    assert deliveries.store_stats(shop.store_id).total_roles_assigned == 0, "no role was assigned"


def test_signals_report_each_outcome_with_the_delivery(shop: Shop) -> None:
    seen: list[tuple[str, DeliveryInfo]] = []

    def record(name: str) -> Any:
        def receiver(sender: Flask, delivery: DeliveryInfo) -> None:
            assert sender is shop.app
            seen.append((name, delivery))

        return receiver

    receivers = {name: record(name) for name in ("delivered", "removed", "failed")}
    role_delivered.connect(receivers["delivered"])
    role_removed.connect(receivers["removed"])
    delivery_failed.connect(receivers["failed"])
    try:
        buyer = shop.member("alice")
        shop.buy("order-1", "vip", buyer=buyer)
        shop.buy("order-2", "vip", buyer=shop.fake.create_user("stranger").id)
        shop.refund("order-1")
    finally:
        role_delivered.disconnect(receivers["delivered"])
        role_removed.disconnect(receivers["removed"])
        delivery_failed.disconnect(receivers["failed"])

    assert [(name, d.order_id, d.status) for name, d in seen] == [
        ("delivered", "order-1", "completed"),
        ("failed", "order-2", "failed"),
        ("removed", "order-1", "completed"),
    ]
    assert seen[1][1].reason_code == "member_not_in_guild"


def test_listing_filters_by_guild_and_a_half_open_creation_window(shop: Shop) -> None:
    for n in range(3):
        shop.buy(f"order-{n}", "vip", buyer=shop.member(f"user{n}"))
    rows = shop.deliveries()
    base = datetime(2025, 1, 20, tzinfo=UTC)
    for n, row in enumerate(rows):
        row.created_at = base + timedelta(days=n)
    shop.db.session.commit()

    window = deliveries.list_deliveries(
        shop.store_id,
        guild_id=shop.guild_id,
        created_after=base + timedelta(days=1),
        created_before=base + timedelta(days=2),
    )
    assert [item.order_id for item in window.items] == ["order-1"], "after inclusive, before exclusive"
    assert deliveries.list_deliveries(shop.store_id, guild_id="123456789012345678").items == []
    assert deliveries.get_delivery(shop.store_id, rows[0].id).order_id == "order-0"
    with pytest.raises(deliveries.DeliveryNotFound):
        deliveries.get_delivery("another-store", rows[0].id)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        (
            {
                "created_after": datetime(2025, 1, 2, tzinfo=UTC),
                "created_before": datetime(2025, 1, 1, tzinfo=UTC),
            },
            "created_after",
        ),
        ({"created_before": datetime(2025, 1, 1)}, "created_before"),  # naive: which zone?
        ({"guild_id": "my-server"}, "guild_id"),
    ],
)
def test_listing_refuses_a_backwards_or_naive_window_and_a_bad_guild(
    shop: Shop, filters: dict[str, Any], field: str
) -> None:
    with pytest.raises(deliveries.ValidationError) as refused:
        deliveries.list_deliveries(shop.store_id, **filters)
    assert field in refused.value.errors


# -- deliveries per day ----------------------------------------------------------------------------------


def _today() -> date:
    return datetime.now(UTC).date()


def test_deliveries_per_day_counts_each_utc_day_by_status_with_zeros_for_quiet_days(shop: Shop) -> None:
    member = shop.member("alice")
    stranger = shop.fake.create_user("stranger").id  # not in the server: the delivery fails
    shop.buy("order-1", "vip", buyer=member)
    shop.buy("order-2", "vip", buyer=stranger)
    shop.buy("order-3", "vip", buyer=None)  # nobody to deliver to yet: pending
    shop.buy("order-4", "vip", buyer=member, customer="customer-2")
    shop.buy("order-5", "vip", buyer=member, customer="customer-3")
    rows = {row.order_id: row for row in shop.deliveries()}
    today = _today()
    midnight = datetime.combine(today, time(), tzinfo=UTC)
    # The last moment of yesterday and the first of today fall on either side of the UTC day boundary.
    shop.set_created_at(rows["order-2"].id, midnight - timedelta(microseconds=1))
    shop.set_created_at(rows["order-3"].id, midnight - timedelta(days=3))
    shop.set_created_at(rows["order-4"].id, midnight)
    shop.set_created_at(rows["order-5"].id, midnight - timedelta(days=7))  # just outside a 7-day window

    days = deliveries.deliveries_per_day(shop.store_id, days=7)

    assert [day.day for day in days] == [today - timedelta(days=n) for n in range(6, -1, -1)], (
        "one entry per day, oldest first, today last"
    )
    by_day = {day.day: day for day in days}
    assert by_day[today] == DayCount(today, completed=2, failed=0, pending=0, expired=0)
    assert by_day[today - timedelta(days=1)] == DayCount(
        today - timedelta(days=1), completed=0, failed=1, pending=0, expired=0
    ), "a delivery made a microsecond before midnight UTC counts on the day before"
    assert by_day[today - timedelta(days=3)].pending == 1
    assert sum(day.total for day in days) == 4, "the delivery 7 days ago is outside a 7-day window"
    assert by_day[today - timedelta(days=2)].total == 0, "a quiet day is there, with zeros"
    assert sum(day.total for day in deliveries.deliveries_per_day("another-store", days=7)) == 0, (
        "a store never counts another's deliveries"
    )
    assert [day.day for day in deliveries.deliveries_per_day(shop.store_id, days=1)] == [today]


def test_deliveries_per_day_uses_utc_days_whatever_the_database_sessions_time_zone(shop: Shop) -> None:
    shop.buy("order-1", "vip", buyer=shop.member("alice"))
    row = shop.deliveries()[0]
    late_yesterday = datetime.combine(_today(), time(), tzinfo=UTC) - timedelta(minutes=30)
    shop.set_created_at(row.id, late_yesterday)
    if shop.db.engine.dialect.name == "postgresql":
        # Already tomorrow in Kiribati: a day taken from the session's wall clock would be wrong.
        shop.db.session.execute(sa.text("SET TIME ZONE 'Pacific/Kiritimati'"))
    days = deliveries.deliveries_per_day(shop.store_id, days=2)
    assert [(day.day, day.total) for day in days] == [(late_yesterday.date(), 1), (_today(), 0)]


@pytest.mark.parametrize("days", [0, 367, -1, True, "14", 2.5])
def test_deliveries_per_day_refuses_a_window_outside_one_to_366_days(app: Flask, days: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        deliveries.deliveries_per_day("store-1", days=days)
    assert list(refused.value.errors) == ["days"], f"the error names the field: {refused.value.errors}"


# -- customers ---------------------------------------------------------------------------------------------


def test_a_customer_never_seen_is_not_linked_and_has_no_roles(shop: Shop) -> None:
    status = customers.customer_status(shop.store_id, 42)  # the host's integer ids are welcome
    assert status.customer_id == "42"
    assert status.account is None
    assert status.roles == []
    assert status.counts == {"pending": 0, "completed": 0, "failed": 0, "expired": 0}


def test_a_role_given_and_taken_by_hand_reaches_discord_after_commit(shop: Shop) -> None:
    member = shop.member("alice")
    vip = shop.roles["VIP"]
    given = deliveries.assign_role(
        shop.store_id, customer_id="customer-1", guild_id=shop.guild_id, role_id=vip, discord_user_id=member
    )
    assert (given.source, given.action) == ("manual", "add")
    assert shop.roles_of(member) == set(), "nothing reaches Discord before the commit"
    shop.db.session.commit()
    assert shop.roles_of(member) == {"VIP"}
    held = customers.customer_status(shop.store_id, "customer-1").roles
    assert [(role.role_id, role.role_name, role.status) for role in held] == [(vip, "VIP", "held")]

    # No user id given: the role is taken from whoever the customer's latest delivery of it went to.
    deliveries.remove_role(shop.store_id, customer_id="customer-1", guild_id=shop.guild_id, role_id=vip)
    shop.db.session.commit()
    assert shop.roles_of(member) == set()
    assert customers.customer_status(shop.store_id, "customer-1").roles[0].status == "removed"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"guild_id": "123456789012345678"}, "guild_id"),  # a server not linked to the store
        ({"role_id": "not-a-snowflake"}, "role_id"),
        ({}, "discord_user_id"),  # not linked, and no user id given
    ],
)
def test_a_manual_change_that_cannot_be_made_is_refused_with_the_field(
    shop: Shop, change: dict[str, str], field: str
) -> None:
    request = {"guild_id": shop.guild_id, "role_id": shop.roles["VIP"], **change}
    with pytest.raises(customers.ValidationError) as refused:
        deliveries.assign_role(shop.store_id, customer_id="customer-1", **request)
    assert field in refused.value.errors, f"expected an error on {field}: {refused.value.errors}"
    assert shop.deliveries() == [], "nothing was queued"


# -- diagnostics -------------------------------------------------------------------------------------------


def test_diagnostics_name_a_role_above_the_bot_with_its_fix(shop: Shop) -> None:
    bot_role = next(r for r in shop.fake.guild(shop.guild_id).roles.values() if r.bot_id is not None)
    shop.fake.move_role(shop.guild_id, shop.roles["VIP"], bot_role.position + 1)
    diagnosis = diagnostics.run_diagnostics(shop.store_id)
    assert not diagnosis.ok
    failing = [check for check in diagnosis.checks if not check.ok]
    role_check = next(check for check in failing if check.check == "role_assignable")
    assert role_check.reason_code == "role_above_bot"
    assert role_check.role_id == shop.roles["VIP"]
    assert "VIP" in (role_check.fix or ""), f"the fix names the role: {role_check.fix}"


def test_diagnostics_tell_where_to_paste_the_interactions_url(app: Flask, shop: Shop) -> None:
    def interactions_fix(**options: str) -> str:
        checks = diagnostics.run_diagnostics(shop.store_id, **options).checks
        check = next(check for check in checks if check.check == "interactions_received")
        assert check.reason_code == "no_interactions", "this bot never received a command"
        return check.fix or ""

    with app.test_request_context(base_url="https://shop.example.com"):
        assert "https://shop.example.com/webhook/discord/interactions/store-1" in interactions_fix(), (
            "by default the address is this request's"
        )
        assert "https://proxy.example/x" in interactions_fix(interactions_url="https://proxy.example/x")
