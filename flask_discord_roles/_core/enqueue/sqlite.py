"""SQLite: an ``INSERT … SELECT`` for the deliveries, then one for the purchase notification.

In-process, each costs microseconds, and SQLite parses nothing twice thanks to its statement cache.
The statements do what ``discord_roles_enqueue_order`` does on PostgreSQL
(:mod:`flask_discord_roles._runtime.sql_functions`); ``tests/engine/test_enqueue_cases.py`` runs one table
of cases against both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect

from flask_discord_roles._core.driver_sql import DriverStatement
from flask_discord_roles._core.enqueue.statements import (
    DELIVERY,
    NOTIFICATION,
    PARAMETER_NAMES,
    ROLE_CONNECTION,
    Created,
)
from flask_discord_roles._core.settings import DEFAULT_CLAIM_EXPIRY_HOURS
from flask_discord_roles._runtime.models import HOST_ID, SNOWFLAKE, Models, UTCDateTime
from flask_discord_roles.codes import Action, DeliveryMode, SendStatus, Source, Status

DELIVERY_COLUMNS = (
    "store_id",
    "idempotency_key",
    "action",
    "status",
    "source",
    "guild_id",
    "role_id",
    "role_name",
    "discord_user_id",
    "customer_id",
    "order_id",
    "package_id",
    "attempts",
    "next_attempt_at",
    "expires_at",
    "created_at",
    "updated_at",
)
"""What the deliveries INSERT fills in, in the order :func:`_delivery_rows` selects it."""

NOTIFICATION_COLUMNS = (
    "store_id",
    "order_id",
    "customer_id",
    "package_ids",
    "package_names",
    "discord_user_id",
    "channel_id",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)
"""What the notification INSERT fills in, in the order :func:`_notification_row` selects it."""


@dataclass(frozen=True)
class TwoInserts:
    """The deliveries INSERT, then the notification INSERT only when it can insert something.

    The deliveries statement returns, with each row, its ``next_attempt_at`` (set: due now), whether
    the store announces purchases and whether it keeps Linked Roles for the customer; the second
    statement runs when one says yes, or when no role was mapped to tell.
    """

    deliveries: DriverStatement
    notification: DriverStatement

    def run(self, connection: sa.Connection, values: Mapping[str, Any]) -> list[Created]:
        rows = self.deliveries.execute(connection, values)
        created: list[Created] = [(kind, row_id, due is not None) for kind, row_id, due, *_ in rows]
        if not rows or any(notify for _, _, _, notify, _ in rows):
            created.extend(
                (kind, row_id, bool(due))
                for kind, row_id, due in self.notification.execute(connection, values)
            )
        # An order that queued no role changes none of the customer's Linked Roles values.
        if any(linked for *_, linked in rows):
            created.append((ROLE_CONNECTION, 0, True))
        return created


def two_inserts(models: Models, dialect: Dialect) -> TwoInserts:
    """Build both statements for ``models`` (building costs more than running them: build once)."""
    order = _Order.of(models)
    deliveries = models.Delivery.__table__  # type: ignore[attr-defined]
    notifications = models.PurchaseNotification.__table__  # type: ignore[attr-defined]
    add_deliveries = _insert_new(deliveries, DELIVERY_COLUMNS, _delivery_rows(order), "idempotency_key")
    add_notification = _insert_new(notifications, NOTIFICATION_COLUMNS, _notification_row(order), "order_id")
    notifications_on = sa.select(_number(1)).where(*order.announces).scalar_subquery()
    # Due is read from next_attempt_at itself, not from "next_attempt_at IS NOT NULL": SQLite 3.40 answers
    # that 1 for a NULL in a RETURNING clause when, as here, the table's id is an INTEGER NOT NULL
    # declared PRIMARY KEY in a table constraint.
    return TwoInserts(
        _compile(
            add_deliveries.returning(
                _text(DELIVERY),
                deliveries.c.id,
                deliveries.c.next_attempt_at,
                notifications_on,
                _linked_roles_on(order),
            ),
            dialect,
        ),
        _compile(add_notification.returning(_text(NOTIFICATION), notifications.c.id, sa.true()), dialect),
    )


def _linked_roles_on(order: _Order) -> Any:
    """1 when the store has Linked Roles on and the customer a linked account (their connection must be
    queued), else NULL: returned with each delivery, so the checkout asks nothing more."""
    settings, accounts = order.settings, order.accounts
    # No join: SQLite's RETURNING names columns without their table, so each level reads one table.
    linked = sa.exists().where(
        accounts.c.store_id == order.store_id, accounts.c.customer_id == order.customer_id
    )
    return (
        sa.select(_number(1))
        .where(settings.c.store_id == order.store_id, settings.c.linked_roles_enabled == sa.true(), linked)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class _Order:
    """The tables an order is queued from, and the checkout's values as the statements bind them."""

    mappings: sa.Table
    settings: sa.Table
    accounts: sa.Table
    store_id: Any
    customer_id: Any
    order_id: Any
    now: Any
    discord_user_id: Any
    """The id given at checkout wins; otherwise the account the customer linked earlier, if any."""
    linked_account: Any
    """The customer's linked account, to outer-join."""
    announces: tuple[Any, ...]
    """The store posts a message for each purchase: notifications on, and a channel to post in."""

    @classmethod
    def of(cls, models: Models) -> _Order:
        settings = models.StoreSettings.__table__  # type: ignore[attr-defined]
        accounts = models.DiscordAccount.__table__  # type: ignore[attr-defined]
        store_id = sa.bindparam("store_id", type_=HOST_ID)
        customer_id = sa.bindparam("customer_id", type_=HOST_ID)
        return cls(
            mappings=models.RoleMapping.__table__,  # type: ignore[attr-defined]
            settings=settings,
            accounts=accounts,
            store_id=store_id,
            customer_id=customer_id,
            order_id=sa.bindparam("order_id", type_=HOST_ID),
            now=sa.bindparam("now", type_=UTCDateTime()),
            discord_user_id=sa.func.coalesce(
                sa.bindparam("given_discord_user_id", type_=SNOWFLAKE), accounts.c.discord_user_id
            ),
            linked_account=sa.and_(accounts.c.store_id == store_id, accounts.c.customer_id == customer_id),
            announces=(
                settings.c.store_id == store_id,
                settings.c.notifications_enabled == sa.true(),
                settings.c.notification_channel_id.is_not(None),
            ),
        )


def _delivery_rows(order: _Order) -> sa.Select[Any]:
    """One row per role mapped to a package of the order, as :data:`DELIVERY_COLUMNS` lists them."""
    mappings, settings, now = order.mappings, order.settings, order.now
    automatic = sa.func.coalesce(settings.c.delivery_mode, _text(DeliveryMode.AUTOMATIC)) == _text(
        DeliveryMode.AUTOMATIC
    )
    hours = sa.func.coalesce(settings.c.claim_expiry_hours, _number(DEFAULT_CLAIM_EXPIRY_HOURS))
    key = (
        sa.bindparam("key_prefix", type_=sa.String)
        + mappings.c.package_id
        + _text(":")
        + mappings.c.guild_id
        + _text(":")
        + mappings.c.role_id
    )
    return (
        sa.select(
            mappings.c.store_id,
            key,
            _text(Action.ADD),
            _text(Status.PENDING),
            _text(Source.AUTO),
            mappings.c.guild_id,
            mappings.c.role_id,
            mappings.c.role_name,
            order.discord_user_id,
            order.customer_id,
            order.order_id,
            mappings.c.package_id,
            _number(0),
            # Due now when Discord knows who to give it to and the store delivers without a /claim.
            sa.case((sa.and_(order.discord_user_id.is_not(None), automatic), now), else_=sa.null()),
            sa.case(
                (sa.func.coalesce(settings.c.claims_expire, sa.true()), _plus_hours(now, hours)),
                else_=sa.null(),
            ),
            now,
            now,
        )
        .select_from(
            mappings.outerjoin(settings, settings.c.store_id == mappings.c.store_id).outerjoin(
                order.accounts, order.linked_account
            )
        )
        .where(
            mappings.c.store_id == order.store_id,
            # One JSON parameter, not an expanding IN: the SQL stays the same whatever the basket holds.
            mappings.c.package_id.in_(
                sa.select(sa.column("value")).select_from(
                    sa.func.json_each(sa.bindparam("package_ids_json", type_=sa.JSON))
                )
            ),
        )
        .order_by(mappings.c.id)
    )


def _notification_row(order: _Order) -> sa.Select[Any]:
    """The order's purchase message, if the store announces purchases, as :data:`NOTIFICATION_COLUMNS`."""
    settings = order.settings
    return (
        sa.select(
            settings.c.store_id,
            order.order_id,
            order.customer_id,
            sa.bindparam("notified_package_ids", type_=sa.JSON),
            sa.bindparam("notified_package_names", type_=sa.JSON),
            order.discord_user_id,
            settings.c.notification_channel_id,
            _text(SendStatus.PENDING),
            _number(0),
            order.now,
            order.now,
        )
        .select_from(settings.outerjoin(order.accounts, order.linked_account))
        .where(*order.announces)
    )


def _insert_new(table: sa.Table, columns: tuple[str, ...], rows: sa.Select[Any], unique: str) -> Any:
    """INSERT ``rows`` into ``table``, skipping those whose (store_id, ``unique``) is there already."""
    return (
        sqlite.insert(table)
        .from_select(list(columns), rows)
        .on_conflict_do_nothing(index_elements=["store_id", unique])
    )


def _compile(statement: Any, dialect: Dialect) -> DriverStatement:
    return DriverStatement.compile(statement, dialect, parameters=PARAMETER_NAMES)


def _plus_hours(moment: Any, hours: Any) -> Any:
    """``moment`` plus ``hours`` hours, in SQLite, stored the way :class:`UTCDateTime` stores it there."""
    # SQLite keeps times as 'YYYY-MM-DD HH:MM:SS.ffffff' text: shift the whole seconds, keep the fraction.
    shifted = sa.func.strftime(
        _text("%Y-%m-%d %H:%M:%S"),
        moment,
        _text("+") + sa.cast(hours, sa.String) + _text(" hours"),
        type_=sa.String,
    )
    return shifted + sa.func.substr(moment, _number(20), type_=sa.String)


def _text(value: str) -> Any:
    """A constant written into the SQL, not bound: fewer parameters for every checkout to send and parse."""
    if "'" in value or "\\" in value:
        raise ValueError(f"not a plain SQL constant: {value!r}")
    return sa.literal_column(f"'{value}'", sa.String)


def _number(value: int) -> Any:
    return sa.literal_column(str(int(value)), sa.Integer)
