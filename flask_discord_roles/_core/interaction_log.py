"""The record of interactions: each id remembered once per store (Discord may deliver one twice), each
counted once.

Statements are built once per set of models: building the expression costs more than sending it, and
the compiled form is then found in SQLAlchemy's cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from flask_discord_roles._core.driver_sql import DriverStatement
from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._runtime.dialects import supported_insert
from flask_discord_roles._runtime.models import Models, utcnow

INTERACTION_MEMORY = timedelta(days=1)
"""How long an interaction id is remembered; Discord redelivers within seconds, never a day later."""


def remember(
    connection: sa.Connection, models: Models, interaction_id: str, store_id: str, now: datetime
) -> bool:
    """Record ``interaction_id`` for ``store_id``; False if that store recorded it before (a redelivery)."""
    row = {"interaction_id": interaction_id, "interaction_store_id": store_id, "received_at": now}
    return bool(connection.execute(_remember_statement(models, connection.dialect.name), row).first())


def count(connection: sa.Connection, models: Models, bot_id: int, now: datetime) -> None:
    """One more interaction on the bot's counters, and its time as the last one."""
    connection.execute(_count_statement(models), {"bot_id": bot_id, "now": now})


def remember_and_count(
    connection: sa.Connection, models: Models, interaction_id: str, store_id: str, bot_id: int, now: datetime
) -> bool:
    """:func:`remember`, then :func:`count` if it was new: one statement (one round trip) on PostgreSQL.

    For interactions that changed nothing else. On PostgreSQL ``connection`` must be in autocommit:
    the statement then commits itself, without waiting for the disk (see the statement's comment).
    """
    if connection.dialect.name != "postgresql":
        first = remember(connection, models, interaction_id, store_id, now)
        if first:
            count(connection, models, bot_id, now)
        return first
    row = {
        "interaction_id": interaction_id,
        "interaction_store_id": store_id,
        "received_at": now,
        "bot_id": bot_id,
        "now": now,
    }
    return bool(connection.scalar(_remember_and_count_statement(models), row))


@survives_transient_db_errors
def forget_old_interactions(models: Models, engine: sa.Engine, *, now: datetime | None = None) -> int:
    """Delete remembered interaction ids older than :data:`INTERACTION_MEMORY`; returns how many."""
    table = models.ProcessedInteraction.__table__  # type: ignore[attr-defined]
    cutoff = (now or utcnow()) - INTERACTION_MEMORY
    with engine.begin() as connection:
        result = connection.execute(sa.delete(table).where(table.c.received_at < cutoff))
        return int(result.rowcount)


@cache
def _remember_statement(models: Models, dialect: str) -> Any:
    table = models.ProcessedInteraction.__table__  # type: ignore[attr-defined]
    insert = supported_insert(dialect)
    return (
        insert(table)
        .values(
            interaction_id=sa.bindparam("interaction_id"),
            # Not "store_id": in the combined statement the bots UPDATE would take that as a new value.
            store_id=sa.bindparam("interaction_store_id"),
            received_at=sa.bindparam("received_at"),
        )
        .on_conflict_do_nothing(index_elements=["interaction_id", "store_id"])
        .returning(table.c.interaction_id)
    )


@cache
def _count_statement(models: Models) -> sa.Update:
    bot = models.StoreBot
    return (
        sa.update(bot)
        .where(bot.id == sa.bindparam("bot_id"))
        # updated_at is the bot's settings' time: a command run by a customer leaves it alone.
        .values(
            total_interactions=bot.total_interactions + 1,
            last_interaction_at=sa.bindparam("now"),
            updated_at=bot.updated_at,
        )
    )


@cache
def _remember_and_count_statement(models: Models) -> sa.Select[Any]:
    # WITH seen AS (INSERT … ON CONFLICT DO NOTHING RETURNING id),
    #      counted AS (UPDATE bots … WHERE id = :bot_id AND EXISTS (SELECT FROM seen))
    # SELECT count(*), set_config('synchronous_commit', 'off', true) FROM seen
    #
    # The statement is its own transaction (the connection is in autocommit), and set_config(…, true)
    # is SET LOCAL for it: this commit does not wait for the WAL to reach the disk. Only the record of
    # a query is written this way: a database crash may forget the last moment of /check counts, never
    # anything about a delivery.
    seen = _remember_statement(models, "postgresql").cte("seen")
    count_if_new = _count_statement(models).where(sa.exists(sa.select(seen.c.interaction_id)))
    counted = count_if_new.returning(models.StoreBot.id).cte("counted")
    no_flush_wait = sa.func.set_config("synchronous_commit", "off", sa.true())
    return sa.select(sa.func.count(), no_flush_wait).select_from(seen).add_cte(counted)


RECORD_PARAMETERS = ("interaction_id", "interaction_store_id", "received_at", "bot_id", "now")


class QueryRecorder:
    """The reads of a query (/check, /help), with the interaction recorded and counted alongside.

    On PostgreSQL the first :meth:`read` carries the record: one statement and one round trip for
    the whole interaction, committed without waiting for the disk (see
    :func:`_remember_and_count_statement`). Elsewhere reads run as given, and :meth:`finish` records.
    ``connection`` must be in autocommit on PostgreSQL; elsewhere the caller commits.
    """

    def __init__(
        self,
        connection: sa.Connection,
        models: Models,
        *,
        interaction_id: str,
        store_id: str,
        bot_id: int,
        now: datetime,
    ) -> None:
        self.connection = connection
        self.models = models
        self.interaction_id, self.store_id, self.bot_id, self.now = interaction_id, store_id, bot_id, now
        self._first: bool | None = None

    def read(self, query: sa.Select[Any], values: Mapping[str, Any]) -> list[Any]:
        """The rows of ``query`` (whose first column is never NULL), in no particular order."""
        if self._first is not None or self.connection.dialect.name != "postgresql":
            return list(self.connection.execute(query, values))
        statement = _recorded_read(self.models, query, self.connection.dialect)
        record = {
            "interaction_id": self.interaction_id,
            "interaction_store_id": self.store_id,
            "received_at": self.now,
            "bot_id": self.bot_id,
            "now": self.now,
        }
        rows = statement.execute(self.connection, {**values, **record})
        self._first = bool(rows[0][0])
        return [row[1:] for row in rows if row[1] is not None]

    def finish(self) -> bool:
        """Record the interaction if no read did; False when Discord had delivered it before."""
        if self._first is None:
            self._first = remember_and_count(
                self.connection, self.models, self.interaction_id, self.store_id, self.bot_id, self.now
            )
        return self._first


@cache
def _recorded_read(models: Models, query: sa.Select[Any], dialect: Dialect) -> DriverStatement:
    # WITH seen AS (…), counted AS (…)                        -- as in _remember_and_count_statement
    # SELECT head.first, rows.* FROM (SELECT count(*) AS first, set_config(…) FROM seen) AS head
    #   LEFT OUTER JOIN LATERAL (<query>) AS rows ON true    -- one row even when the query has none
    record = _remember_and_count_statement(models)
    head = record.subquery("head")
    rows = query.subquery("rows").lateral()
    fused = sa.select(head.c[0], *rows.c).select_from(head.outerjoin(rows, sa.true()))
    query_binds = query.compile(dialect=dialect).binds
    clash = set(query_binds) & set(RECORD_PARAMETERS)
    if clash:
        raise TypeError(f"a recorded query may not bind {sorted(clash)}: the record uses those names")
    parameters = {*RECORD_PARAMETERS, *(name for name, bind in query_binds.items() if bind.required)}
    # Compiled to driver SQL: SQLAlchemy would otherwise read a value named like a bots column as
    # one more column for the UPDATE to set.
    return DriverStatement.compile(fused, dialect, parameters=parameters)
