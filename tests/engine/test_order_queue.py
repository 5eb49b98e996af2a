"""A completed order queues one delivery per mapped role, in the host's transaction, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from blinker import Namespace
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles, InvalidOrderEvent, OrderEvent, order_completed
from flask_discord_roles._core.queue import enqueue_order
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord

GUILD, VIP, SUPPORTER, EXTRA = (
    "400000000000000001",
    "400000000000000002",
    "400000000000000003",
    "400000000000000004",
)
BUYER = "500000000000000001"


# Only the queueing is under test here: nothing runs in the web process.
pytestmark = pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="worker")


def _map(app: Flask, db: SQLAlchemy, package_id: str, role_id: str, store_id: str = "store-1") -> None:
    """Map a package to a role in GUILD, linking GUILD to the store first as an owner must."""
    models = get_state(app).models
    link = models.LinkedGuild
    if db.session.scalar(sa.select(link.id).where(link.store_id == store_id, link.guild_id == GUILD)) is None:
        db.session.add(link(store_id=store_id, guild_id=GUILD))
    db.session.add(
        models.RoleMapping(store_id=store_id, package_id=package_id, guild_id=GUILD, role_id=role_id)
    )
    db.session.commit()


def _deliveries(app: Flask, db: SQLAlchemy) -> list[Any]:
    delivery = get_state(app).models.Delivery
    return list(db.session.scalars(sa.select(delivery).order_by(delivery.id)))


def _checkout(app: Flask, **order: Any) -> None:
    order.setdefault("store_id", "store-1")
    order.setdefault("order_id", "order-1")
    order.setdefault("customer_id", "customer-1")
    order_completed.send(app, **order)


def test_an_order_queues_one_delivery_per_mapped_role_without_committing_or_calling_discord(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    _map(app, db, "vip", VIP)
    _map(app, db, "vip", EXTRA)  # one package, two roles
    _map(app, db, "supporter", SUPPORTER)
    _checkout(app, package_ids=["vip", "supporter", "unmapped"], discord_user_id=BUYER)

    assert len(_deliveries(app, db)) == 3, "the INSERTs are in the host's open transaction..."
    db.session.rollback()
    assert _deliveries(app, db) == [], "...and nothing was committed on the host's behalf"

    _checkout(app, package_ids=["vip", "supporter", "unmapped"], discord_user_id=BUYER)
    db.session.commit()
    rows = _deliveries(app, db)
    assert sorted((row.package_id, row.role_id) for row in rows) == [
        ("supporter", SUPPORTER),
        ("vip", VIP),
        ("vip", EXTRA),
    ]
    for row in rows:
        assert (row.action, row.status, row.source) == ("add", "pending", "auto")
        assert row.discord_user_id == BUYER
        assert row.next_attempt_at is not None, "a known Discord user in automatic mode is due at once"
        assert row.expires_at is not None
        assert row.expires_at > row.created_at, "pending deliveries expire after the claim window"
    assert fake_discord.calls == [], "queueing an order must never call Discord"


def test_the_hosts_sql_listeners_see_the_statement_that_queues_an_order(app: Flask, db: SQLAlchemy) -> None:
    # Without listeners the statement skips SQLAlchemy's result machinery; with one it must not hide.
    _map(app, db, "vip", VIP)
    seen: list[str] = []

    def record(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        _checkout(app, package_ids=["vip"], discord_user_id=BUYER)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    db.session.commit()

    queueing = [s for s in seen if "discord_roles_deliveries" in s or "discord_roles_enqueue_order" in s]
    assert queueing, f"the host's listener never saw our INSERT; it saw {seen}"
    assert len(_deliveries(app, db)) == 1


def test_a_database_error_while_queueing_is_sqlalchemys_own_and_leaves_nothing(
    app: Flask, db: SQLAlchemy
) -> None:
    _map(app, db, "vip", VIP)
    # Inside the host's transaction, so the rollback below brings the table back. (Python's sqlite3
    # only opens the transaction at the first DML statement, hence the UPDATE that changes nothing.)
    db.session.execute(sa.text("UPDATE discord_roles_role_mappings SET role_name = role_name"))
    db.session.execute(sa.text("ALTER TABLE discord_roles_deliveries RENAME TO discord_roles_gone"))

    with pytest.raises(sa.exc.DBAPIError) as raised:
        _checkout(app, package_ids=["vip"], discord_user_id=BUYER)
    db.session.rollback()

    assert "discord_roles_deliveries" in str(raised.value), "the error names what was missing"
    assert _deliveries(app, db) == []


def test_the_same_order_signalled_three_times_queues_each_role_once(app: Flask, db: SQLAlchemy) -> None:
    _map(app, db, "vip", VIP)
    for _ in range(3):
        _checkout(app, package_ids=["vip"], discord_user_id=BUYER)
        db.session.commit()
    assert len(_deliveries(app, db)) == 1


def test_without_a_discord_user_the_delivery_waits_for_the_customer(app: Flask, db: SQLAlchemy) -> None:
    _map(app, db, "vip", VIP)
    _checkout(app, package_ids=["vip"], customer_id=None)
    db.session.commit()
    (row,) = _deliveries(app, db)
    assert row.discord_user_id is None
    assert row.next_attempt_at is None, "nobody to deliver to yet: not due until they link or /claim"


def test_a_linked_account_supplies_the_discord_user(app: Flask, db: SQLAlchemy) -> None:
    models = get_state(app).models
    db.session.add(models.DiscordAccount(store_id="store-1", customer_id="customer-1", discord_user_id=BUYER))
    _map(app, db, "vip", VIP)
    _checkout(app, package_ids=["vip"])
    db.session.commit()
    assert [row.discord_user_id for row in _deliveries(app, db)] == [BUYER]


def test_claim_mode_and_never_expire_follow_the_store_settings(app: Flask, db: SQLAlchemy) -> None:
    models = get_state(app).models
    db.session.add(models.StoreSettings(store_id="store-1", delivery_mode="claim", claims_expire=False))
    _map(app, db, "vip", VIP)
    _checkout(app, package_ids=["vip"], discord_user_id=BUYER)
    db.session.commit()
    (row,) = _deliveries(app, db)
    assert row.next_attempt_at is None, "claim mode waits for /claim even when the user is known"
    assert row.expires_at is None


def test_the_claim_window_is_the_stores_own_to_the_microsecond(app: Flask, db: SQLAlchemy) -> None:
    """The database computes the expiry inside the INSERT: it must be exactly ``now`` + the store's hours."""
    models = get_state(app).models
    db.session.add(models.StoreSettings(store_id="store-1", claim_expiry_hours=5))
    _map(app, db, "vip", VIP)
    moment = datetime(2026, 11, 23, 23, 30, 15, 123456, tzinfo=UTC)
    enqueue_order(
        get_state(app),
        OrderEvent.build(
            store_id="store-1", order_id="order-1", customer_id="customer-1", package_ids=["vip"]
        ),
        now=moment,
    )
    db.session.commit()
    (row,) = _deliveries(app, db)
    assert (row.created_at, row.next_attempt_at) == (moment, None), "no Discord user yet: not due"
    if db.engine.dialect.name == "sqlite":  # stored exactly as SQLAlchemy stores times there
        stored = db.session.execute(
            sa.text("SELECT created_at, expires_at FROM discord_roles_deliveries WHERE id = :id"),
            {"id": row.id},
        ).one()
        assert tuple(stored) == ("2026-11-23 23:30:15.123456", "2026-11-24 04:30:15.123456")
    assert row.expires_at == moment + timedelta(hours=5), (
        f"expected {moment + timedelta(hours=5)} (5 h after checkout, across midnight), got {row.expires_at}"
    )


def test_a_linked_account_makes_the_delivery_due_and_a_given_id_wins(app: Flask, db: SQLAlchemy) -> None:
    models = get_state(app).models
    db.session.add(models.DiscordAccount(store_id="store-1", customer_id="customer-1", discord_user_id=BUYER))
    _map(app, db, "vip", VIP)
    _checkout(app, package_ids=["vip"])
    _checkout(app, order_id="order-2", package_ids=["vip"], discord_user_id="500000000000000009")
    db.session.commit()
    rows = _deliveries(app, db)
    assert [(row.order_id, row.discord_user_id) for row in rows] == [
        ("order-1", BUYER),
        ("order-2", "500000000000000009"),
    ], "the account linked earlier fills in a missing id; an id given at checkout is used as given"
    assert all(row.next_attempt_at is not None for row in rows), "both have a Discord user: due at once"


def test_mappings_of_another_store_are_not_used(app: Flask, db: SQLAlchemy) -> None:
    _map(app, db, "vip", VIP, store_id="other-store")
    _checkout(app, package_ids=["vip"], discord_user_id=BUYER)
    db.session.commit()
    assert _deliveries(app, db) == []


@pytest.mark.parametrize(
    ("order", "field"),
    [
        ({"order_id": None}, "order_id"),
        ({"store_id": ""}, "store_id"),
        ({"package_ids": "vip"}, "package_ids"),
        ({"discord_user_id": "not-a-snowflake"}, "discord_user_id"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_malformed_order_signal_fails_loudly_and_queues_nothing(
    app: Flask, db: SQLAlchemy, order: dict[str, Any], field: str
) -> None:
    _map(app, db, "vip", VIP)
    order.setdefault("package_ids", ["vip"])
    with pytest.raises(InvalidOrderEvent, match=field):
        _checkout(app, **order)
    db.session.commit()
    assert _deliveries(app, db) == []


def test_only_the_app_the_signal_is_for_queues(
    database_url: str, tmp_path: Any, make_app: Callable[..., tuple[Flask, SQLAlchemy, DiscordRoles]]
) -> None:
    first, first_db, _ = make_app(database_url)
    second, second_db, _ = make_app(f"sqlite:///{tmp_path / 'second.sqlite'}")
    for app, db in ((first, first_db), (second, second_db)):
        with app.app_context():
            db.create_all()
            _map(app, db, "vip", VIP)
    with second.app_context():
        order_completed.send(second, store_id="store-1", order_id="o", package_ids=["vip"])
        second_db.session.commit()
        assert len(_deliveries(second, second_db)) == 1
        second_db.session.remove()
        second_db.engine.dispose()
    with first.app_context():
        assert _deliveries(first, first_db) == [], "another app's order must not land in this app's queue"
        first_db.session.remove()
        first_db.engine.dispose()


def test_a_hosts_own_signal_works_through_an_adapter(
    database_url: str, make_app: Callable[..., tuple[Flask, SQLAlchemy, DiscordRoles]]
) -> None:
    signals = Namespace()
    paid, refunded = signals.signal("shop.order-paid"), signals.signal("shop.order-refunded")

    def adapter(sender: Any, payload: dict[str, Any]) -> OrderEvent:
        order = payload["order"]
        return OrderEvent.build(
            store_id=order["shop"], order_id=order["number"], package_ids=order["skus"], discord_user_id=BUYER
        )

    app, db, _ = make_app(database_url)
    app.extensions.pop("discord_roles")
    DiscordRoles().init_app(
        app, db, order_completed_signal=paid, order_revoked_signal=refunded, order_adapter=adapter
    )
    with app.app_context():
        db.create_all()
        _map(app, db, "sku-9", VIP, store_id="7")
        paid.send("checkout-service", order={"shop": 7, "number": 1001, "skus": ["sku-9"]})
        db.session.commit()
        rows = _deliveries(app, db)
        assert [(row.store_id, row.order_id, row.role_id) for row in rows] == [("7", "1001", VIP)]

        refunded.send("checkout-service", order={"shop": 7, "number": 1001, "skus": ["sku-9"]})
        db.session.commit()
        (row,) = _deliveries(app, db)
        assert (row.status, row.reason_code) == ("expired", "order_revoked"), (
            "the host's refund signal works too"
        )
        db.session.remove()
        db.engine.dispose()
