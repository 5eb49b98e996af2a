"""The numbers an operator watches, as plain values: what the metrics endpoint's gauges report.

``snapshot()`` reads them from the database (it needs no prometheus-client), for one store or all::

    from flask_discord_roles import metrics

    numbers = metrics.snapshot(store_id="store-1")
    numbers.queue_depth["due"], numbers.oldest_due_seconds, numbers.drift["role_missing"]

Serving them to Prometheus is a setting (``DISCORD_ROLES_METRICS_PATH``) or ``flask discord-roles worker
--metrics-port``: see the docs' *Metrics* page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_discord_roles._core.queue_stats import read_queue_numbers
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state

__all__ = ["MetricsSnapshot", "snapshot"]


@dataclass(frozen=True)
class MetricsSnapshot:
    """The queue and the reconciler's drift at one moment."""

    queue_depth: dict[str, int]
    """Pending deliveries by state: ``due`` (a runner takes it next), ``scheduled`` (a retry, or paced
    behind a rate limit) and ``waiting`` (for the customer to link Discord or run /claim)."""
    oldest_due_seconds: float
    """How long the longest-waiting due delivery has been due; 0 when none is."""
    drift: dict[str, int]
    """What the latest finished reconciliation of each server found, summed by kind (``role_missing``,
    ``role_not_ended``, ``member_absent``)."""


def snapshot(store_id: str | None = None, *, now: datetime | None = None) -> MetricsSnapshot:
    """The current app's queue and drift numbers, for ``store_id`` or (None) every store."""
    state = get_state()
    with state.db.engine.connect() as connection:
        numbers = read_queue_numbers(state.models, connection, now or utcnow(), store_id)
    return MetricsSnapshot(
        queue_depth={str(key): value for key, value in numbers.depth.items()},
        oldest_due_seconds=numbers.oldest_due_seconds,
        drift={str(key): value for key, value in numbers.drift.items()},
    )
