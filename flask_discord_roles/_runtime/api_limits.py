"""The tenant API's rate limit, per token, kept by the ``limits`` library.

Its own limiter and its own keys (``discord_roles/api/…``), so a host's Flask-Limiter never counts our
requests and ours never counts the host's. With ``redis://`` storage every process and every app
instance sharing that Redis shares the count.

Every answer of the tenant API reports the count in the headers well-known APIs use (GitHub, Discord):
``X-RateLimit-Limit`` (requests allowed per window), ``X-RateLimit-Remaining`` (left in it) and
``X-RateLimit-Reset`` (when a request is next freed, in whole Unix seconds, UTC).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

logger = logging.getLogger("flask_discord_roles.api")


@dataclass(frozen=True)
class Verdict:
    """One count's outcome for the tightest configured rate (the one with the fewest requests left)."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Seconds until a request is freed."""
    known: bool = True
    """False when the storage could not be read: the request was let through uncounted."""

    def headers(self, now: float | None = None) -> dict[str, str]:
        """The ``X-RateLimit-*`` headers; none when the count is not known (we would be guessing)."""
        if not self.known:
            return {}
        now = time.time() if now is None else now
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(math.ceil(now + self.reset_after)),
        }


UNKNOWN = Verdict(True, 0, 0, 0.0, known=False)


class ApiRateLimiter:
    """``hit(key)`` counts one request for ``key`` against every configured rate."""

    def __init__(self, rates: str, storage_uri: str) -> None:
        self.items: list[RateLimitItem] = parse_many(rates)
        self.storage_uri = storage_uri
        self._storage: Storage | None = None
        self._limiter: MovingWindowRateLimiter | None = None

    def __repr__(self) -> str:
        # The storage URI may hold a Redis password.
        return f"<ApiRateLimiter {', '.join(str(item) for item in self.items)}>"

    def _strategy(self) -> MovingWindowRateLimiter:
        # Made on first use, in the process that uses it (a Redis connection must not cross a fork).
        if self._limiter is None:
            storage = storage_from_string(self.storage_uri)
            assert isinstance(storage, Storage), "a synchronous storage (memory:// or redis://)"
            self._storage = storage
            self._limiter = MovingWindowRateLimiter(storage)
        return self._limiter

    def hit(self, key: str) -> Verdict:
        """Count a request. If the storage is down the request is let through (and logged): the limit
        protects the API, it must not take it down with Redis."""
        return self._verdict(key, count=True)

    def peek(self, key: str) -> Verdict:
        """Where ``key`` stands, without counting a request (for answers that are not counted)."""
        return self._verdict(key, count=False)

    def _verdict(self, key: str, *, count: bool) -> Verdict:
        try:
            limiter = self._strategy()
            tightest: Verdict | None = None
            for item in self.items:
                allowed = limiter.hit(item, "discord_roles/api", key) if count else True
                stats = limiter.get_window_stats(item, "discord_roles/api", key)
                verdict = Verdict(
                    allowed, item.amount, stats.remaining, max(0.0, stats.reset_time - time.time())
                )
                if not allowed:
                    return verdict
                if tightest is None or verdict.remaining < tightest.remaining:
                    tightest = verdict
        except Exception as error:  # any storage failure means "cannot count"
            logger.warning(
                "tenant API rate limit storage unavailable (%s); request let through", type(error).__name__
            )
            return UNKNOWN
        assert tightest is not None
        return tightest

    def reset(self) -> None:
        """Forget every count (tests)."""
        if self._storage is not None:
            self._storage.reset()
