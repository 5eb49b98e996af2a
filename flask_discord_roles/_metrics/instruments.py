"""The counters and histograms, made once per process, and the recorder that feeds them.

Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client writes each process's values to
files in that directory and a scrape adds them up (see :mod:`.exposition`); nothing here changes.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from flask_discord_roles.discord.observers import SentRequest
from flask_discord_roles.errors import ConfigurationError

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "discord_roles"

# Seconds: from a few milliseconds (an inline delivery) to a day (a customer who linked Discord late).
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
# Discord gives an interaction 3 seconds for its first answer.
INTERACTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5)


def require_prometheus() -> Any:
    """The prometheus_client module, or a :class:`ConfigurationError` naming the extra to install."""
    try:
        import prometheus_client
    except ImportError:
        raise ConfigurationError(
            "metrics need prometheus-client: pip install 'flask-discord-roles[metrics]'"
        ) from None
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory and not os.path.isdir(directory):
        raise ConfigurationError(
            f"{MULTIPROCESS_ENV} is {directory!r}, which is not a directory: create it (empty) before the "
            "processes start"
        )
    from prometheus_client import values

    # prometheus-client picks where values live when first imported: a variable set later is not seen,
    # and each process would then report only its own counts while the scrape read the files.
    if bool(directory) != (values.ValueClass.__name__ == "MmapedValue"):
        raise ConfigurationError(
            f"{MULTIPROCESS_ENV} was set (or unset) after prometheus_client was imported: set it in the "
            "environment the processes start with"
        )
    return prometheus_client


class Instruments:
    """Our metrics, registered nowhere: the scrape collects them itself (:mod:`.exposition`)."""

    def __init__(self) -> None:
        prometheus = require_prometheus()
        counter, histogram = prometheus.Counter, prometheus.Histogram
        self.delivery_outcomes = counter(
            f"{PREFIX}_delivery_outcomes",
            "Delivery attempts recorded, by the row's status after it and its reason code.",
            ["status", "reason_code"],
            registry=None,
        )
        self.delivery_latency = histogram(
            f"{PREFIX}_delivery_latency_seconds",
            "From a delivery's queueing (the order) to its completion (the role change).",
            ["action"],
            buckets=DELIVERY_BUCKETS,
            registry=None,
        )
        self.discord_requests = counter(
            f"{PREFIX}_discord_requests",
            "Requests sent to Discord, by route (its rate-limit bucket's template) and HTTP status.",
            ["route", "status"],
            registry=None,
        )
        self.discord_rate_limited = counter(
            f"{PREFIX}_discord_rate_limited",
            "429 answers from Discord, by route and scope (route, global, shared, user).",
            ["route", "scope"],
            registry=None,
        )
        self.interaction_latency = histogram(
            f"{PREFIX}_interaction_latency_seconds",
            "Time to answer a signed interaction, by kind (command name, ping, component).",
            ["kind"],
            buckets=INTERACTION_BUCKETS,
            registry=None,
        )

    def all(self) -> list[Any]:
        return [
            self.delivery_outcomes,
            self.delivery_latency,
            self.discord_requests,
            self.discord_rate_limited,
            self.interaction_latency,
        ]


_lock = threading.Lock()
_instruments: Instruments | None = None


def instruments() -> Instruments:
    """This process's instruments, made on first use (prometheus-client refuses a name made twice)."""
    global _instruments
    with _lock:
        if _instruments is None:
            _instruments = Instruments()
        return _instruments


class PrometheusRecorder:
    """The telemetry's recorder when metrics are on: each report moves one instrument."""

    def __init__(self) -> None:
        require_prometheus()  # each time: the instruments may exist while the settings are wrong
        self._metrics = instruments()

    def discord_request(self, request: SentRequest) -> None:
        status = "none" if request.status is None else str(request.status)
        self._metrics.discord_requests.labels(request.route, status).inc()
        if request.rate_limited:
            scope = request.rate_limit_scope or "route"
            self._metrics.discord_rate_limited.labels(request.route, scope).inc()

    def delivery_outcome(self, status: str, reason_code: str | None, count: int = 1) -> None:
        self._metrics.delivery_outcomes.labels(str(status), str(reason_code or "")).inc(count)

    def delivery_latency(self, action: str, seconds: float) -> None:
        self._metrics.delivery_latency.labels(str(action)).observe(seconds)

    def interaction_answered(self, kind: str, seconds: float) -> None:
        self._metrics.interaction_latency.labels(kind).observe(seconds)
