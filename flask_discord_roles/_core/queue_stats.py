"""The numbers an operator watches that live in the database: the queue, and the reconciler's drift.

Read at scrape time (not counted in process memory), so every process of a deployment reports the same
values. Each query is cheap on the indexes the queue already has: the scheduled rows are the ``due``
partial index (``next_attempt_at`` is its leading column), the rows waiting for their customer the
``expiry`` one; the drift is the latest finished run of each server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa

from flask_discord_roles._runtime.models import PENDING, Models
from flask_discord_roles.codes import DriftKind, ReconcileStatus


class QueueState(StrEnum):
    """Where a pending delivery stands, as the queue-depth metric splits it."""

    DUE = "due"
    """Scheduled for now or earlier: a runner will take it on its next look."""
    SCHEDULED = "scheduled"
    """Scheduled for later: a retry after a failure, or paced behind a rate limit."""
    WAITING = "waiting"
    """A grant waiting for its customer to link Discord or run /claim (it expires after the claim window)."""


@dataclass(frozen=True)
class QueueNumbers:
    """The queue and the drift at one moment, as plain values."""

    depth: dict[QueueState, int]
    oldest_due_seconds: float
    """How long the longest-waiting due delivery has been due; 0 when none is."""
    drift: dict[DriftKind, int] = field(default_factory=dict)
    """Drift found by the latest finished reconciliation of each server, summed by kind."""


def read_queue_numbers(
    models: Models, connection: sa.Connection, now: datetime, store_id: str | None = None
) -> QueueNumbers:
    """The queue depth by state, the oldest due delivery's age and the drift (all stores, or one)."""
    delivery = models.Delivery
    scheduled = [delivery.status == PENDING, delivery.next_attempt_at.is_not(None)]
    # Exactly the expiry index's predicate (models.WAITING), so the count reads that index.
    waiting = [
        delivery.status == PENDING,
        delivery.next_attempt_at.is_(None),
        delivery.expires_at.is_not(None),
    ]
    if store_id is not None:
        scheduled.append(delivery.store_id == store_id)
        waiting.append(delivery.store_id == store_id)
    due_now = delivery.next_attempt_at <= now
    total, due, oldest = connection.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((due_now, 1), else_=0)), 0),
            sa.func.min(delivery.next_attempt_at),
        ).where(*scheduled)
    ).one()
    waiting_count = connection.scalar(sa.select(sa.func.count()).select_from(delivery).where(*waiting))
    oldest_due = 0.0
    if oldest is not None:
        oldest = _aware(oldest)
        oldest_due = max((now - oldest).total_seconds(), 0.0)
    return QueueNumbers(
        depth={
            QueueState.DUE: int(due),
            QueueState.SCHEDULED: int(total) - int(due),
            QueueState.WAITING: int(waiting_count or 0),
        },
        oldest_due_seconds=oldest_due,
        drift=read_drift(models, connection, store_id),
    )


def read_drift(
    models: Models, connection: sa.Connection, store_id: str | None = None
) -> dict[DriftKind, int]:
    """Each server's latest finished reconciliation's drift, summed by kind (every kind, 0 if none)."""
    run = models.ReconcileRun
    latest = sa.select(sa.func.max(run.id)).where(run.status == ReconcileStatus.COMPLETED)
    if store_id is not None:
        latest = latest.where(run.store_id == store_id)
    latest = latest.group_by(run.store_id, run.guild_id)
    totals = dict.fromkeys(DriftKind, 0)
    for (drift,) in connection.execute(sa.select(run.drift).where(run.id.in_(latest))):
        for kind, count in (drift or {}).items():
            if kind in totals and isinstance(count, int):
                totals[DriftKind(kind)] += count
    return totals


def _aware(moment: datetime | str) -> datetime:
    # An aggregate may not keep the column's type on every driver: naive UTC, or SQLite's text.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
