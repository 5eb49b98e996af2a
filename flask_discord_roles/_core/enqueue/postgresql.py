"""PostgreSQL: a checkout queues its order with one call to ``discord_roles_enqueue_order``.

The function (its PL/pgSQL text is in :mod:`flask_discord_roles._runtime.sql_functions`, installed by the
migrations ``dr0003`` and ``dr0012`` and by ``db.create_all()``) runs both INSERTs from plans it keeps for
the life of the connection. From V2 on it also returns the Linked Roles mark, so the statement is the
bare call. A database still on V1 (the host upgraded the package but not yet its tables) gets the
statement V1 needs, with the mark found by a UNION beside the call; which version is installed is asked
once per engine, on its first checkout.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from flask_discord_roles._core.driver_sql import DriverStatement
from flask_discord_roles._core.enqueue.statements import PARAMETER_NAMES, ROLE_CONNECTION, Created
from flask_discord_roles._runtime.models import UTCDateTime
from flask_discord_roles._runtime.sql_functions import ENQUEUE_ORDER_MARKS_LINKED_ROLES

_CALL = (
    "SELECT queued_kind, queued_id, queued_due FROM discord_roles_enqueue_order("
    ":store_id, :order_id, :customer_id, :given_discord_user_id, :package_ids, :notified_package_names, :now)"
)

_BINDS = (
    sa.bindparam("store_id", type_=sa.Text),
    sa.bindparam("order_id", type_=sa.Text),
    sa.bindparam("customer_id", type_=sa.Text),
    sa.bindparam("given_discord_user_id", type_=sa.Text),
    sa.bindparam("package_ids", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("notified_package_names", type_=postgresql.JSON),
    sa.bindparam("now", type_=UTCDateTime()),
)

ENQUEUE_ORDER_CALL = sa.text(_CALL).bindparams(*_BINDS)
"""The statement for V2 and later: the function does the INSERTs and returns the Linked Roles mark."""

_V1_MARK = (
    # In the same round trip: does the store keep Linked Roles for this (linked) customer?
    # S608: the one value formatted in is our constant ROLE_CONNECTION, never input.
    f" UNION ALL SELECT '{ROLE_CONNECTION}', 0, true FROM discord_roles_settings AS s"  # noqa: S608
    " JOIN discord_roles_accounts AS a ON a.store_id = s.store_id"
    " WHERE s.store_id = :store_id AND s.linked_roles_enabled AND a.customer_id = :customer_id"
)

ENQUEUE_ORDER_V1_CALL = sa.text(_CALL + _V1_MARK).bindparams(*_BINDS)
"""The statement for a database still on V1: the function does the INSERTs; the UNION adds the mark."""


@dataclass(frozen=True)
class FunctionCall:
    """One call to ``discord_roles_enqueue_order``, which does both INSERTs."""

    call: DriverStatement
    v1_call: DriverStatement
    # Per engine: does its function return the mark itself (V2 or later)? Asked on its first checkout.
    _marks: weakref.WeakKeyDictionary[sa.Engine, bool] = field(
        default_factory=weakref.WeakKeyDictionary, compare=False
    )

    def run(self, connection: sa.Connection, values: Mapping[str, Any]) -> list[Created]:
        statement = self.call if self._function_marks(connection) else self.v1_call
        return [(kind, row_id, bool(due)) for kind, row_id, due in statement.execute(connection, values)]

    def _function_marks(self, connection: sa.Connection) -> bool:
        engine = connection.engine
        marks = self._marks.get(engine)
        if marks is None:
            # Threads racing on a new engine may both ask: they get the same answer.
            marks = bool(connection.exec_driver_sql(ENQUEUE_ORDER_MARKS_LINKED_ROLES).scalar())
            self._marks[engine] = marks
        return marks


def function_call(dialect: Dialect) -> FunctionCall:
    return FunctionCall(
        DriverStatement.compile(ENQUEUE_ORDER_CALL, dialect, parameters=PARAMETER_NAMES),
        DriverStatement.compile(ENQUEUE_ORDER_V1_CALL, dialect, parameters=PARAMETER_NAMES),
    )
