"""Our own database work survives a transient database error, without asking hosts to configure their
engine for us.

Two such errors, each retried by running the whole unit of work again:

- a connection the server closed (a restart, a failover, an idle timeout). SQLAlchemy notices it on the
  first statement sent over it, invalidates that connection and every other one the pool opened before,
  and raises with ``connection_invalidated`` set; one more run goes over a fresh connection;
- SQLite's "database is locked": another connection held the write lock past the busy timeout, or two
  transactions that both read first wanted to write at once (SQLite then fails one at once, rather than
  deadlock). A few more runs, a little later each, find the lock free.

Running again is safe because the failed run's transaction never committed (at worst it committed just
as the connection dropped, and the next run finds its work done: every unit here is guarded by its lease
or its WHERE clause). Decorate only units that do nothing but database work in one transaction, so a
second run repeats no call to Discord.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError

logger = logging.getLogger("flask_discord_roles.database")

P = ParamSpec("P")
T = TypeVar("T")

LOCKED_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
"""Pauses before each new run of a unit SQLite refused with "database is locked" (3.15 s in all, on top
of the driver's own busy timeout); then the error is raised."""


def is_sqlite_locked(error: DBAPIError) -> bool:
    """Whether ``error`` is SQLite refusing a write because another connection holds the lock."""
    return isinstance(error.orig, sqlite3.OperationalError) and "database is locked" in str(error.orig)


def survives_transient_db_errors(work: Callable[P, T]) -> Callable[P, T]:
    """Run ``work`` again after a connection the server had closed, or while SQLite's database is locked."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        delays = iter(LOCKED_RETRY_DELAYS)
        reconnected = False
        while True:
            try:
                return work(*args, **kwargs)
            except DBAPIError as error:
                if error.connection_invalidated and not reconnected:
                    reconnected = True
                    logger.warning(
                        "the database had closed a pooled connection; running %s again on a new one",
                        work.__qualname__,
                    )
                    continue
                delay = next(delays, None) if is_sqlite_locked(error) else None
                if delay is None:
                    raise
                logger.info(
                    "SQLite's database is locked; running %s again in %.2fs", work.__qualname__, delay
                )
                time.sleep(delay)

    return run
