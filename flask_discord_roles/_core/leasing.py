"""Claiming due rows of a queue table under a lease: one statement, safe for concurrent runners.

Deliveries and purchase notifications are both queues with ``status``, ``next_attempt_at``, ``attempts``,
``leased_by`` and ``lease_expires_at``. One UPDATE marks up to N due rows as a runner's until the lease
runs out; on PostgreSQL the candidates are picked ``FOR UPDATE SKIP LOCKED`` so concurrent runners never
pick the same row, and on SQLite the single statement is atomic.

Jobs (backfills, reconcile runs) are leased the same way, by status rather than by due time
(:func:`lease_running_jobs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._runtime.models import PENDING, utcnow

if TYPE_CHECKING:
    from flask_discord_roles._runtime.state import DiscordRolesState


def claim_statement(
    model: Any,
    *,
    runner_id: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    only_ids: Iterable[int] | None = None,
) -> Any:
    """The UPDATE … RETURNING id that leases up to ``limit`` due rows of ``model`` (None: nothing to do)."""
    candidates = sa.select(model.id).where(
        model.status == PENDING,
        model.next_attempt_at <= now,
        sa.or_(model.lease_expires_at.is_(None), model.lease_expires_at < now),
    )
    if only_ids is not None:
        ids = list(only_ids)
        if not ids:
            return None
        candidates = candidates.where(model.id.in_(ids))
    candidates = (
        candidates.order_by(model.next_attempt_at, model.id).limit(limit).with_for_update(skip_locked=True)
    )
    return (
        sa.update(model)
        .where(model.id.in_(candidates.scalar_subquery()))
        .values(
            leased_by=runner_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            # Counted when claimed, so a row that keeps killing its runner still runs out of attempts.
            attempts=model.attempts + 1,
        )
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )


@survives_transient_db_errors
def lease_running_jobs(
    engine: sa.Engine,
    model: Any,
    running: StrEnum,
    *,
    runner_id: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    among: Iterable[int] | None = None,
) -> list[int]:
    """Lease up to ``limit`` jobs of ``model`` (backfills, reconcile runs) in status ``running`` that no
    live lease holds, oldest first (``among``: only those ids); their ids, sorted.

    Jobs are stepped a page at a time by whichever worker leases them, and the lease is given back after
    each step; one that runs out (a killed worker) lets the next worker go on.
    """
    free = [
        # Written into the SQL so PostgreSQL's plan can use the partial index of running jobs.
        model.status == sa.literal_column(f"'{running.value}'", sa.String),
        sa.or_(model.lease_expires_at.is_(None), model.lease_expires_at < now),
    ]
    if among is not None:
        free.append(model.id.in_(list(among)))
    with engine.begin() as connection:
        # Read first: most passes find no job, and on SQLite an UPDATE would take the write lock.
        if connection.scalar(sa.select(model.id).where(*free).limit(1)) is None:
            return []
        chosen = sa.select(model.id).where(*free).order_by(model.id).limit(limit)
        return sorted(
            connection.scalars(
                sa.update(model)
                .where(model.id.in_(chosen.with_for_update(skip_locked=True).scalar_subquery()))
                .values(leased_by=runner_id, lease_expires_at=now + timedelta(seconds=lease_seconds))
                .returning(model.id)
            )
        )


@survives_transient_db_errors
def claim_due(engine: sa.Engine, statement: Any) -> list[int]:
    """Run a :func:`claim_statement` in one transaction; the ids of the rows it leased."""
    with engine.begin() as connection:
        return sorted(connection.scalars(statement))


class LeasedQueue:
    """What runs one queue table: claims its due rows under a lease, in its runner's name.

    Subclasses name their table's model in :attr:`model` and run what they claimed.
    """

    def __init__(
        self,
        state: DiscordRolesState,
        engine: sa.Engine,
        runner_id: str,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.state = state
        self.runner_id = runner_id
        self._engine = engine
        self._clock = clock

    @property
    def model(self) -> Any:
        raise NotImplementedError

    def claim(self, limit: int, *, only_ids: Iterable[int] | None = None) -> list[int]:
        """Lease up to ``limit`` due rows (optionally only among ``only_ids``); their ids."""
        statement = claim_statement(
            self.model,
            runner_id=self.runner_id,
            now=self._clock(),
            lease_seconds=self.state.settings.lease_seconds,
            limit=limit,
            only_ids=only_ids,
        )
        return [] if statement is None else claim_due(self._engine, statement)

    @survives_transient_db_errors
    def next_due_at(self) -> datetime | None:
        """When the earliest scheduled row comes due (None when nothing is scheduled)."""
        model = self.model
        with self._engine.connect() as connection:
            due: datetime | None = connection.scalar(
                sa.select(sa.func.min(model.next_attempt_at)).where(
                    model.status == PENDING, model.next_attempt_at.is_not(None)
                )
            )
            return due
