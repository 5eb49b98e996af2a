"""What the extension reports while it works, for operator metrics: off (dropped) unless switched on.

Every app state has one :class:`Telemetry`. The code that does the work reports to it (the REST client
about each request, the runner about each outcome, the webhook about each answer) without knowing
whether anyone listens; ``flask_discord_roles._metrics`` switches it on with a :class:`Recorder`
(Prometheus), once metrics are asked for. A recorder that raises never fails the work it reports on.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from flask_discord_roles.discord.observers import SentRequest

logger = logging.getLogger("flask_discord_roles.metrics")


class Recorder(Protocol):
    """Where reports go when metrics are on (see ``flask_discord_roles._metrics.instruments``)."""

    def discord_request(self, request: SentRequest) -> None: ...

    def delivery_outcome(self, status: str, reason_code: str | None, count: int = 1) -> None: ...

    def delivery_latency(self, action: str, seconds: float) -> None: ...

    def interaction_answered(self, kind: str, seconds: float) -> None: ...


class Telemetry:
    """The reports of one app; each method does nothing until :attr:`recorder` is set."""

    def __init__(self) -> None:
        self.recorder: Recorder | None = None

    def __repr__(self) -> str:
        return f"<Telemetry {'on' if self.recorder is not None else 'off'}>"

    @property
    def enabled(self) -> bool:
        return self.recorder is not None

    def discord_request(self, request: SentRequest) -> None:
        """A request went to Discord (the REST client's observer)."""
        if self.recorder is not None:
            try:
                self.recorder.discord_request(request)
            except Exception:
                logger.exception("recording a Discord request failed")

    def delivery_finished(
        self,
        *,
        status: str,
        reason_code: str | None,
        action: str,
        created_at: datetime,
        completed_at: datetime | None,
    ) -> None:
        """A runner recorded a delivery's outcome: its status now, and (completed) how long it took."""
        if self.recorder is None:
            return
        try:
            self.recorder.delivery_outcome(status, reason_code)
            if completed_at is not None:
                self.recorder.delivery_latency(action, max((completed_at - created_at).total_seconds(), 0.0))
        except Exception:
            logger.exception("recording a delivery outcome failed")

    def deliveries_settled(self, status: str, reason_code: str | None, count: int) -> None:
        """Many rows settled in one statement (the expiry sweep)."""
        if self.recorder is not None and count:
            try:
                self.recorder.delivery_outcome(status, reason_code, count)
            except Exception:
                logger.exception("recording settled deliveries failed")

    def interaction_answered(self, kind: str, seconds: float) -> None:
        """The webhook answered a signed interaction of ``kind`` (a command's name, ping, component…)."""
        if self.recorder is not None:
            try:
                self.recorder.interaction_answered(kind, seconds)
            except Exception:
                logger.exception("recording an interaction failed")
