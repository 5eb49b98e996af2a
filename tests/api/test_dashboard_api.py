"""The Python API a store's dashboard calls: list and filter, retry, stats, and the signals we send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DeliveryInfo, deliveries, delivery_failed, role_delivered, role_removed
from flask_discord_roles.testing import FakeDiscord
from tests.shop import FAST_QUEUE, Shop, open_shop


@pytest.fixture
def app_config() -> dict[str, Any]:
    return dict(FAST_QUEUE)


@pytest.fixture
def shop(app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord) -> Shop:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    return shop


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
