"""PostgreSQL: a checkout queues its order with one call to ``discord_roles_enqueue_order``.

The function (its PL/pgSQL text is in :mod:`flask_discord_roles._runtime.sql_functions`, installed by the
migration ``dr0003`` and by ``db.create_all()``) runs both INSERTs from plans it keeps for the life of
the connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from flask_discord_roles._core.driver_sql import DriverStatement
from flask_discord_roles._core.enqueue.statements import PARAMETER_NAMES, ROLE_CONNECTION, Created
from flask_discord_roles._runtime.models import UTCDateTime

ENQUEUE_ORDER_CALL = sa.text(
    # S608 below: the one value formatted in is our constant ROLE_CONNECTION, never input.
    "SELECT queued_kind, queued_id, queued_due FROM discord_roles_enqueue_order("  # noqa: S608
    ":store_id, :order_id, :customer_id, :given_discord_user_id, :package_ids, :notified_package_names, :now)"
    # In the same round trip: does the store keep Linked Roles for this (linked) customer?
    f" UNION ALL SELECT '{ROLE_CONNECTION}', 0, true FROM discord_roles_settings AS s"
    " JOIN discord_roles_accounts AS a ON a.store_id = s.store_id"
    " WHERE s.store_id = :store_id AND s.linked_roles_enabled AND a.customer_id = :customer_id"
).bindparams(
    sa.bindparam("store_id", type_=sa.Text),
    sa.bindparam("order_id", type_=sa.Text),
    sa.bindparam("customer_id", type_=sa.Text),
    sa.bindparam("given_discord_user_id", type_=sa.Text),
    sa.bindparam("package_ids", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("notified_package_names", type_=postgresql.JSON),
    sa.bindparam("now", type_=UTCDateTime()),
)
"""The statement: the function does the two INSERTs; the UNION adds the Linked Roles mark."""


@dataclass(frozen=True)
class FunctionCall:
    """One call to ``discord_roles_enqueue_order``, which does both INSERTs."""

    call: DriverStatement

    def run(self, connection: sa.Connection, values: Mapping[str, Any]) -> list[Created]:
        return [(kind, row_id, bool(due)) for kind, row_id, due in self.call.execute(connection, values)]


def function_call(dialect: Dialect) -> FunctionCall:
    return FunctionCall(DriverStatement.compile(ENQUEUE_ORDER_CALL, dialect, parameters=PARAMETER_NAMES))
