"""Statements compiled once to the driver's own SQL, for the few that run on every request.

SQLAlchemy works out a cache key and the bind values of a statement each time it runs; for a small,
hot statement that is a good part of what the call costs (a checkout, an interaction). A
:class:`DriverStatement` is compiled once for a dialect, and values are bound as SQLAlchemy itself would
bind them.

It is sent on the DBAPI cursor of the SQLAlchemy connection, in its transaction, when nothing listens
to that connection: no engine events (the host's SQL logging, tracing, Flask-SQLAlchemy's query
recording) and no ``echo``. Then SQLAlchemy's result machinery, which would cost the checkout as much
as the INSERT itself, is skipped. When anything listens, it goes through ``exec_driver_sql``, so the
host sees every statement we run. Driver errors come out as SQLAlchemy's exceptions either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class DriverStatement:
    """A statement compiled once, for one dialect, to the driver's SQL; run with :meth:`execute`."""

    sql: str
    names: tuple[str, ...]
    """The values the driver takes, in its order (positional paramstyles repeat a name per use)."""
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool
    literals: Mapping[str, Any]
    """Values written into the statement itself (``status == "pending"``), bound like the others."""
    returns_rows: bool
    """A SELECT, or a change with RETURNING: known when compiled, so no call asks the cursor (psycopg
    builds a column description object per column each time it is asked)."""

    @classmethod
    def compile(
        cls, statement: sa.ClauseElement, dialect: Dialect, *, parameters: Collection[str]
    ) -> DriverStatement:
        """Compile ``statement``; every bind must be one of ``parameters`` or hold a literal value."""
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        # By the name each bind has in the SQL (an anonymous bind is also filed under its anonymous key,
        # which the SQL never names: it would be converted, and sent, for nothing).
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        literals = {}
        for name, bind in binds.items():
            if name in parameters:
                continue
            if bind.required or bind.callable is not None:
                # Its value would be missing at every call.
                raise TypeError(f"statement binds {name!r}, which is not among its parameters")
            literals[name] = bind.value
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(binds)
        # The dialect's own implementation of each type, as SQLAlchemy itself would bind it.
        processors = tuple(binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
        changes = compiled.isinsert or compiled.isupdate or compiled.isdelete
        returns_rows = not changes or bool(compiled.effective_returning)
        return cls(str(compiled), names, processors, compiled.positional, literals, returns_rows)

    def execute(self, connection: sa.Connection, values: Mapping[str, Any]) -> list[Any]:
        """Run with ``values`` (by parameter name); the rows, as the driver returned them."""
        bound = {}
        # Each value is converted once, however often a positional statement repeats it.
        for name, process in self._conversions:
            value = values[name] if name in values else self.literals[name]
            bound[name] = process(value) if process is not None else value
        parameters: Any = tuple(bound[name] for name in self.names) if self.positional else bound
        if _observed(connection):
            return list(connection.exec_driver_sql(self.sql, parameters))
        return _run_on_cursor(connection, self.sql, parameters, fetch=self.returns_rows)

    @cached_property
    def _conversions(self) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
        return tuple(dict(zip(self.names, self.processors, strict=True)).items())


def _observed(connection: sa.Connection) -> bool:
    """Whether anything listens to statements on ``connection``: engine events, or ``echo``."""
    # SQLAlchemy's own test before each event point; private, so a missing attribute counts as "yes".
    return bool(
        getattr(connection, "_has_events", True)
        or getattr(connection.engine, "_has_events", True)
        or getattr(connection, "_echo", True)
    )


def _run_on_cursor(connection: sa.Connection, sql: str, parameters: Any, *, fetch: bool) -> list[Any]:
    """``sql`` on a DBAPI cursor of ``connection`` (in its transaction); driver errors wrapped as
    SQLAlchemy's, and a connection the error shows is dead is invalidated, as SQLAlchemy would."""
    dialect = connection.dialect
    dbapi_connection = connection.connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql, parameters)
        rows = list(cursor.fetchall()) if fetch else []
        cursor.close()
        return rows
    except dialect.loaded_dbapi.Error as error:
        dead = dialect.is_disconnect(error, dbapi_connection, cursor)
        with contextlib.suppress(dialect.loaded_dbapi.Error):
            cursor.close()  # the error to report is the first one
        if dead:
            connection.invalidate(error)
        raise sa.exc.DBAPIError.instance(
            sql,
            parameters,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dead,
            dialect=dialect,
        ) from error
