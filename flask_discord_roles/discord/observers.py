"""What the REST client tells an observer about each request it sent, for metrics that live elsewhere.

The client knows nothing of who listens (the metrics layer registers a callable when metrics are on);
the record holds the route's template, never its ids or tokens, so it is safe to label a metric with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RequestObserver", "SentRequest"]


@dataclass(frozen=True)
class SentRequest:
    """One request that left for Discord, and how it ended."""

    route: str
    """The route's key, ``METHOD /template/{param}``: what Discord keeps a rate-limit bucket for."""
    status: int | None
    """Discord's HTTP status, or None when no answer came (a timeout, a dropped connection)."""
    seconds: float
    rate_limit_scope: str | None = None
    """For a 429: ``global``, else Discord's ``X-RateLimit-Scope`` (``user``, ``shared``) or ``route``."""

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


RequestObserver = Callable[[SentRequest], None]
"""Called once per request sent, from the thread that sent it; it must be quick and must not raise."""
