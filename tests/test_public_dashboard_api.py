"""The public Python API a host's dashboard adds to ``deliveries``: deliveries per day for a chart, a
customer's roles given and taken by hand, and diagnostics, each with the checks the tenant API makes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import flask_discord_roles
from flask_discord_roles import customers, deliveries, diagnostics
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.deliveries import DayCount, ValidationError
from flask_discord_roles.testing import FakeDiscord
from tests.api import link_guild
from tests.shop import FAST_QUEUE, Shop, open_shop


@pytest.fixture
def app_config() -> dict[str, Any]:
    return dict(FAST_QUEUE)


@pytest.fixture
def shop(app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord) -> Shop:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    link_guild(shop)
    return shop


def test_the_new_modules_are_part_of_the_package() -> None:
    for name in ("customers", "diagnostics"):
        assert name in flask_discord_roles.__all__, f"flask_discord_roles.__all__ lacks {name}"
    for module, name in ((diagnostics, "Check"), (diagnostics, "Diagnosis"), (deliveries, "DayCount")):
        assert name in module.__all__, f"{module.__name__} does not export {name}"
    assert "deliveries_per_day" in deliveries.__all__


# -- deliveries per day ----------------------------------------------------------------------------------


def _today() -> date:
    return datetime.now(UTC).date()


def _stamp(shop: Shop, delivery_id: int, created_at: datetime) -> None:
    model = get_state(shop.app).models.Delivery
    shop.db.session.execute(sa.update(model).where(model.id == delivery_id).values(created_at=created_at))
    shop.db.session.commit()


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
    _stamp(shop, rows["order-2"].id, midnight - timedelta(microseconds=1))
    _stamp(shop, rows["order-3"].id, midnight - timedelta(days=3))
    _stamp(shop, rows["order-4"].id, midnight)
    _stamp(shop, rows["order-5"].id, midnight - timedelta(days=7))  # just outside a 7-day window

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
    _stamp(shop, row.id, late_yesterday)
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
