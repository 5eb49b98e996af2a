"""A unit of our database work is run again after a transient database error, and only then.

These drive the decorator with the errors SQLAlchemy raises; tests/engine/test_stale_connections.py shows
the closed-connection case against a real PostgreSQL, and test_delivery_resilience's five hundred deliveries
on SQLite (sixteen runner threads writing at once) the locked one.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from flask_discord_roles._core import reconnect
from flask_discord_roles._core.reconnect import LOCKED_RETRY_DELAYS, survives_transient_db_errors


def locked() -> OperationalError:
    return OperationalError(
        "UPDATE discord_roles_deliveries …", {}, sqlite3.OperationalError("database is locked")
    )


def closed_connection() -> OperationalError:
    return OperationalError(
        "SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True
    )


class Flaky:
    """Raises the given errors in turn, then answers "done"; counts its runs."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.runs = 0
        self.__qualname__ = "a unit of work"  # the name the decorator logs, as a function has

    def __call__(self) -> str:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(reconnect.time, "sleep", slept.append)
    return slept


def test_a_locked_sqlite_database_is_tried_again_a_little_later_each_time(no_sleeping: list[float]) -> None:
    work = Flaky(locked(), locked(), locked())
    assert survives_transient_db_errors(work)() == "done"
    assert work.runs == 4, "three refusals, then the run that found the lock free"
    assert no_sleeping == list(LOCKED_RETRY_DELAYS[:3]), "each pause longer than the last"


def test_a_database_that_stays_locked_raises_after_the_last_pause(no_sleeping: list[float]) -> None:
    work = Flaky(*(locked() for _ in range(len(LOCKED_RETRY_DELAYS) + 1)))
    with pytest.raises(OperationalError, match="database is locked"):
        survives_transient_db_errors(work)()
    assert work.runs == len(LOCKED_RETRY_DELAYS) + 1, "one first run, then one run after each pause"


def test_a_closed_connection_is_tried_once_more_and_no_more() -> None:
    assert survives_transient_db_errors(Flaky(closed_connection()))() == "done"
    twice = Flaky(closed_connection(), closed_connection())
    with pytest.raises(OperationalError):
        survives_transient_db_errors(twice)()
    assert twice.runs == 2, "a second closed connection is not a stale pool: it is raised"


def test_other_database_errors_are_raised_at_once(no_sleeping: list[float]) -> None:
    other = OperationalError("INSERT …", {}, sqlite3.OperationalError("no such table: discord_roles_bots"))
    work = Flaky(other)
    with pytest.raises(OperationalError, match="no such table"):
        survives_transient_db_errors(work)()
    assert (work.runs, no_sleeping) == (1, []), "an error that will not pass is not waited on"
