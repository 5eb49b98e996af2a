"""One scrape: our counters and histograms (this process's, or every process's in multiprocess mode)
and the queue gauges read from the database, cached for a few seconds so a busy scraper costs little.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.queue_stats import QueueNumbers, read_queue_numbers
from flask_discord_roles._metrics.instruments import MULTIPROCESS_ENV, PREFIX, instruments, require_prometheus
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import DiscordRolesState

logger = logging.getLogger("flask_discord_roles.metrics")

GAUGE_CACHE_SECONDS = 5.0
"""How long one database reading of the queue gauges is reused by the scrapes of one process."""


class _CachedReading:
    """The last :class:`QueueNumbers` read and when; read again once it is older than the cache time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.numbers: QueueNumbers | None = None
        self.read_at = float("-inf")


_readings: weakref.WeakKeyDictionary[DiscordRolesState, _CachedReading] = weakref.WeakKeyDictionary()
_readings_lock = threading.Lock()


def queue_numbers(
    state: DiscordRolesState,
    engine: sa.Engine,
    *,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = utcnow,
) -> QueueNumbers:
    """The app's queue gauges, from the database at most once per :data:`GAUGE_CACHE_SECONDS`."""
    with _readings_lock:
        cached = _readings.setdefault(state, _CachedReading())
    with cached.lock:
        if cached.numbers is None or clock() - cached.read_at >= GAUGE_CACHE_SECONDS:
            with engine.connect() as connection:
                cached.numbers = read_queue_numbers(state.models, connection, now())
            cached.read_at = clock()
        return cached.numbers


class _QueueCollector:
    """The gauges read from the database at scrape time; if the database fails, it says so instead."""

    def __init__(self, state: DiscordRolesState, engine: sa.Engine) -> None:
        self._state = state
        self._engine = engine

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 when the queue gauges could be read.")
        try:
            numbers = queue_numbers(self._state, self._engine)
        except sa.exc.SQLAlchemyError:
            logger.exception("metrics: reading the queue gauges failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            f"{PREFIX}_queue_depth",
            "Pending deliveries, by state (due, scheduled, waiting).",
            labels=["state"],
        )
        for state, count in numbers.depth.items():
            depth.add_metric([str(state)], count)
        yield depth
        yield GaugeMetricFamily(
            f"{PREFIX}_oldest_due_delivery_seconds",
            "How long the longest-waiting due delivery has been due (0: none).",
            value=numbers.oldest_due_seconds,
        )
        drift = GaugeMetricFamily(
            f"{PREFIX}_reconcile_drift",
            "Drift found by each server's latest finished reconciliation, summed by kind.",
            labels=["kind"],
        )
        for kind, count in numbers.drift.items():
            drift.add_metric([str(kind)], count)
        yield drift


class _Instruments:
    """This process's counters and histograms, as one collector."""

    def collect(self) -> Iterator[Any]:
        for metric in instruments().all():
            yield from metric.collect()


def multiprocess() -> bool:
    """True when prometheus-client keeps values in files shared by the processes (gunicorn)."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def render(state: DiscordRolesState, engine: sa.Engine) -> tuple[bytes, str]:
    """The scrape's body and content type: counters added up over processes when in multiprocess mode."""
    prometheus = require_prometheus()
    from prometheus_client import multiprocess as shared

    registry = prometheus.CollectorRegistry()
    if multiprocess():
        shared.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Instruments())
    registry.register(_QueueCollector(state, engine))
    return prometheus.generate_latest(registry), prometheus.CONTENT_TYPE_LATEST
