"""``flask discord-roles worker --metrics-port N``: ``/metrics`` and ``/healthz`` on the worker's own port.

A tiny ``http.server`` on a daemon thread, so an orchestrator can probe the worker and Prometheus can
scrape it without any web app. ``/healthz`` answers 200 while the worker keeps making progress (a pass
finished, or a delivery of a long pass did, within :func:`stale_after`) and the database answers; else
503 with a JSON reason.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._metrics.exposition import render
from flask_discord_roles._runtime.state import DiscordRolesState

logger = logging.getLogger("flask_discord_roles.worker")

HEALTHY_WITHIN_POLLS = 3
"""The worker is alive while it made progress within this many poll intervals (or a lease: see below)."""


def stale_after(poll_interval: float, lease_seconds: float) -> float:
    """Seconds without progress after which the worker counts as stuck: three poll intervals, but never
    less than a lease, since one slow Discord call (timeouts and retries) may hold a pass that long."""
    return max(HEALTHY_WITHIN_POLLS * poll_interval, lease_seconds)


class WorkerHealth:
    """Answers "is this worker alive?" from its heartbeat and a ``SELECT 1``."""

    def __init__(
        self,
        heartbeat: Callable[[], float],
        engine: sa.Engine,
        *,
        stale_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._heartbeat = heartbeat
        self._engine = engine
        self.stale_after = stale_after
        self._clock = clock

    def check(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, body)``: the body says why not, as ``reason`` (a code) and ``message``."""
        quiet = self._clock() - self._heartbeat()
        if quiet > self.stale_after:
            return False, {
                "ok": False,
                "reason": "worker_stalled",
                "message": f"no pass or delivery finished for {quiet:.1f}s (limit {self.stale_after:g}s)",
            }
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as error:
            # The class only: a driver's message may hold the database URL.
            return False, {
                "ok": False,
                "reason": "database_unreachable",
                "message": f"the database did not answer ({type(error).__name__})",
            }
        return True, {"ok": True, "seconds_since_progress": round(quiet, 3)}


def serve_worker_metrics(
    state: DiscordRolesState,
    engine: sa.Engine,
    health: WorkerHealth,
    *,
    host: str,
    port: int,
    token: str | None,
) -> ThreadingHTTPServer:
    """Start serving on a daemon thread; ``server.shutdown()`` stops it. Port 0 picks a free one."""
    expected = f"Bearer {token}".encode() if token else None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                healthy, body = health.check()
                self._send(200 if healthy else 503, json.dumps(body).encode(), "application/json")
            elif path == "/metrics":
                given = (self.headers.get("Authorization") or "").encode()
                if expected is not None and not hmac.compare_digest(given, expected):
                    self._send(401, b"a bearer token is required\n", "text/plain; charset=utf-8")
                    return
                payload, content_type = render(state, engine)
                self._send(200, payload, content_type)
            else:
                self._send(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Probes come every few seconds: not worth a log line each.
            logger.debug("metrics server: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="discord-roles-metrics", daemon=True).start()
    return server
