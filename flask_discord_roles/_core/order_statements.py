"""The statements a checkout runs for us: set-based INSERTs, built once per app and dialect.

A paid order's deliveries are the store's role mappings for its packages, joined with the store's
settings (delivery mode, claim expiry) and the customer's linked Discord account. Letting the database
do that join inside the INSERT means a checkout costs us one call with a handful of scalar parameters,
instead of a SELECT, rows built in Python and a multi-row INSERT.

- PostgreSQL: one call to ``discord_roles_enqueue_order`` (:mod:`._core.sql_functions`), which
  runs the same INSERTs from plans it keeps for the life of the connection.
- SQLite: an ``INSERT … SELECT`` for the deliveries and another for the notification; in-process, each
  costs microseconds, and SQLite parses nothing twice thanks to its statement cache.

Both return rows of (kind, id, due). Other databases get None from :func:`order_statements` and the
caller queues row by row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from flask_discord_roles._core.driver_sql import DriverStatement
from flask_discord_roles._core.order_rows import order_key_prefix
from flask_discord_roles._core.settings import DEFAULT_CLAIM_EXPIRY_HOURS
from flask_discord_roles._runtime.models import HOST_ID, SNOWFLAKE, Models, UTCDateTime

NOTIFICATION = "notification"
DELIVERY = "delivery"


Created = tuple[str, int, bool]
"""A row the statements created: kind (:data:`DELIVERY` or :data:`NOTIFICATION`), id, whether due."""


class OrderStatements(Protocol):
    """What queues one order: run it on the host's connection, in the host's transaction."""

    def run(self, connection: sa.Connection, values: Mapping[str, Any]) -> list[Created]: ...


@dataclass(frozen=True)
class FunctionCall:
    """PostgreSQL: one call to ``discord_roles_enqueue_order``, which does both INSERTs."""

    call: DriverStatement

    def run(self, connection: sa.Connection, values: Mapping[str, Any]) -> list[Created]:
        return [(kind, row_id, bool(due)) for kind, row_id, due in self.call.execute(connection, values)]


@dataclass(frozen=True)
class TwoInserts:
    """SQLite: the deliveries INSERT, then the notification INSERT only when it can insert something.

    The deliveries statement returns, with each row, whether the store announces purchases; the second
    statement runs when one says yes, or when no role was mapped to tell.
    """

    deliveries: DriverStatement
    notification: DriverStatement

    def run(self, connection: sa.Connection, values: Mapping[str, Any]) -> list[Created]:
        rows = self.deliveries.execute(connection, values)
        created: list[Created] = [(kind, row_id, bool(due)) for kind, row_id, due, _ in rows]
        if not rows or any(notify for *_, notify in rows):
            created.extend(
                (kind, row_id, bool(due))
                for kind, row_id, due in self.notification.execute(connection, values)
            )
        return created


PARAMETER_NAMES = (
    "store_id",
    "order_id",
    "customer_id",
    "given_discord_user_id",
    "package_ids",
    "package_ids_json",
    "notified_package_ids",
    "notified_package_names",
    "key_prefix",
    "now",
)


def order_parameters(
    *,
    store_id: str,
    order_id: str,
    customer_id: str | None,
    discord_user_id: str | None,
    package_ids: list[str],
    package_names: list[str],
    now: Any,
) -> dict[str, Any]:
    """The bound values for :class:`OrderStatements`: all that differs from one checkout to the next."""
    return {
        "store_id": store_id,
        "order_id": order_id,
        "customer_id": customer_id,
        "given_discord_user_id": discord_user_id,
        "package_ids": package_ids,
        "package_ids_json": package_ids,
        "notified_package_ids": package_ids,
        "notified_package_names": package_names,
        # Must match services.queue.order_delivery_key: the same order signalled again finds its rows.
        "key_prefix": order_key_prefix(order_id, "add"),
        "now": now,
    }


@lru_cache(maxsize=64)
def order_statements(models: Models, dialect: Dialect) -> OrderStatements | None:
    """The statements for ``models`` on ``dialect``, built once: building costs more than running them."""
    if dialect.name == "postgresql":
        return FunctionCall(DriverStatement.compile(ENQUEUE_ORDER_CALL, dialect, parameters=PARAMETER_NAMES))
    if dialect.name != "sqlite":
        return None
    insert = sqlite.insert
    mappings = models.RoleMapping.__table__  # type: ignore[attr-defined]
    settings = models.StoreSettings.__table__  # type: ignore[attr-defined]
    accounts = models.DiscordAccount.__table__  # type: ignore[attr-defined]
    deliveries = models.Delivery.__table__  # type: ignore[attr-defined]
    notifications = models.PurchaseNotification.__table__  # type: ignore[attr-defined]

    store_id = sa.bindparam("store_id", type_=HOST_ID)
    customer_id = sa.bindparam("customer_id", type_=HOST_ID)
    order_id = sa.bindparam("order_id", type_=HOST_ID)
    now = sa.bindparam("now", type_=UTCDateTime())
    # The id given at checkout wins; otherwise the account the customer linked earlier, if any.
    discord_user_id = sa.func.coalesce(
        sa.bindparam("given_discord_user_id", type_=SNOWFLAKE), accounts.c.discord_user_id
    )
    linked_account = sa.and_(accounts.c.store_id == store_id, accounts.c.customer_id == customer_id)
    automatic = sa.func.coalesce(settings.c.delivery_mode, _text("automatic")) == _text("automatic")
    hours = sa.func.coalesce(settings.c.claim_expiry_hours, _number(DEFAULT_CLAIM_EXPIRY_HOURS))

    delivery_rows = (
        sa.select(
            mappings.c.store_id,
            sa.bindparam("key_prefix", type_=sa.String)
            + mappings.c.package_id
            + _text(":")
            + mappings.c.guild_id
            + _text(":")
            + mappings.c.role_id,
            _text("add"),
            _text("pending"),
            _text("auto"),
            mappings.c.guild_id,
            mappings.c.role_id,
            mappings.c.role_name,
            discord_user_id,
            customer_id,
            order_id,
            mappings.c.package_id,
            _number(0),
            # Due now when Discord knows who to give it to and the store delivers without a /claim.
            sa.case((sa.and_(discord_user_id.is_not(None), automatic), now), else_=sa.null()),
            sa.case(
                (sa.func.coalesce(settings.c.claims_expire, sa.true()), _plus_hours(now, hours)),
                else_=sa.null(),
            ),
            now,
            now,
        )
        .select_from(
            mappings.outerjoin(settings, settings.c.store_id == mappings.c.store_id).outerjoin(
                accounts, linked_account
            )
        )
        .where(
            mappings.c.store_id == store_id,
            # One JSON parameter, not an expanding IN: the SQL stays the same whatever the basket holds.
            mappings.c.package_id.in_(
                sa.select(sa.column("value")).select_from(
                    sa.func.json_each(sa.bindparam("package_ids_json", type_=sa.JSON))
                )
            ),
        )
        .order_by(mappings.c.id)
    )
    add_deliveries = (
        insert(deliveries)
        .from_select(
            [
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
            ],
            delivery_rows,
        )
        .on_conflict_do_nothing(index_elements=["store_id", "idempotency_key"])
    )

    notification_rows = (
        sa.select(
            settings.c.store_id,
            order_id,
            customer_id,
            sa.bindparam("notified_package_ids", type_=sa.JSON),
            sa.bindparam("notified_package_names", type_=sa.JSON),
            discord_user_id,
            settings.c.notification_channel_id,
            _text("pending"),
            _number(0),
            now,
            now,
        )
        .select_from(settings.outerjoin(accounts, linked_account))
        .where(
            settings.c.store_id == store_id,
            settings.c.notifications_enabled == sa.true(),
            settings.c.notification_channel_id.is_not(None),
        )
    )
    add_notification = (
        insert(notifications)
        .from_select(
            [
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
            ],
            notification_rows,
        )
        .on_conflict_do_nothing(index_elements=["store_id", "order_id"])
    )

    notifications_on = (
        sa.select(_number(1))
        .where(
            settings.c.store_id == store_id,
            settings.c.notifications_enabled == sa.true(),
            settings.c.notification_channel_id.is_not(None),
        )
        .scalar_subquery()
    )
    delivery_returning = (
        _text(DELIVERY),
        deliveries.c.id,
        deliveries.c.next_attempt_at.is_not(None),
        notifications_on,
    )
    notification_returning = (_text(NOTIFICATION), notifications.c.id, sa.true())
    return TwoInserts(
        DriverStatement.compile(
            add_deliveries.returning(*delivery_returning), dialect, parameters=PARAMETER_NAMES
        ),
        DriverStatement.compile(
            add_notification.returning(*notification_returning), dialect, parameters=PARAMETER_NAMES
        ),
    )


ENQUEUE_ORDER_CALL = sa.text(
    "SELECT queued_kind, queued_id, queued_due FROM discord_roles_enqueue_order("
    ":store_id, :order_id, :customer_id, :given_discord_user_id, :package_ids, :notified_package_names, :now)"
).bindparams(
    sa.bindparam("store_id", type_=sa.Text),
    sa.bindparam("order_id", type_=sa.Text),
    sa.bindparam("customer_id", type_=sa.Text),
    sa.bindparam("given_discord_user_id", type_=sa.Text),
    sa.bindparam("package_ids", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("notified_package_names", type_=postgresql.JSON),
    sa.bindparam("now", type_=UTCDateTime()),
)
"""PostgreSQL's statement: the function does the two INSERTs (see :mod:`..sql_functions`)."""


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
