"""The fake's rate limiter: fixed windows per (token, bucket hash, major parameter) and per bot token.

A route bucket's window opens at the first request after the previous one ended and lasts ``window``
seconds (its replies announce when it resets). The global limit has no such announcement: Discord counts
it per second of its own clock, so its windows are ``[k * window, (k + 1) * window)`` of the fake's clock
(the wall clock, which the ``Date`` header states), wherever requests fall. Once ``limit`` requests have
been let through in a window, everything else in it gets a 429 and is not applied.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_GLOBAL_LIMIT",
    "DEFAULT_ROUTE_LIMITS",
    "RateLimitHit",
    "RateLimiter",
    "Verdict",
    "bucket_hash",
    "limited",
]

# (limit, window seconds). member_role is what Discord is observed to give; the rest are ballpark.
DEFAULT_ROUTE_LIMITS: dict[str, tuple[int, float]] = {
    "member_role": (10, 10.0),
    "guild_member": (10, 10.0),
    "guild_members": (10, 10.0),
    "guild": (10, 10.0),
    "messages": (5, 5.0),
    "dm_channel": (10, 10.0),
    "commands": (10, 20.0),
    "users_me": (5, 5.0),
    "webhook": (5, 2.0),
    "interaction_callback": (5, 1.0),
    "oauth_token": (200, 10.0),
    "default": (10, 10.0),
}
DEFAULT_GLOBAL_LIMIT = (50, 1.0)


def bucket_hash(family: str) -> str:
    """A stable, opaque hash per route family, like the ones Discord sends in X-RateLimit-Bucket."""
    return hashlib.blake2s(family.encode(), digest_size=16).hexdigest()


@dataclass
class _Window:
    limit: int
    length: float
    used: int = 0
    resets_at: float = 0.0

    def roll(self, now: float) -> None:
        if now >= self.resets_at:
            self.used = 0
            self.resets_at = now + self.length

    def roll_aligned(self, now: float) -> None:
        """Move to the clock-aligned window holding ``now`` (the global limit's kind)."""
        if now >= self.resets_at:
            self.used = 0
            self.resets_at = (math.floor(now / self.length) + 1) * self.length


@dataclass(frozen=True)
class RateLimitHit:
    """One 429 the fake sent: ``scope`` is user (route bucket), global or shared (fault)."""

    scope: str
    token_suffix: str
    bucket: str
    major: str
    time: float


@dataclass
class Verdict:
    """What the limiter decided, with the headers Discord would send either way."""

    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0
    scope: str = "user"
    body: dict[str, Any] = field(default_factory=dict)


def _reset_headers(limit: int, remaining: int, reset_after: float, bucket: str) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": bucket,
    }


def limited(retry_after: float, *, is_global: bool) -> dict[str, Any]:
    """The 429 body Discord sends, whatever the scope."""
    return {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
    }


class RateLimiter:
    """Route buckets and per-token global windows; thread-safe, resettable, shrinkable by tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._routes: dict[str, tuple[int, float]] = dict(DEFAULT_ROUTE_LIMITS)
            self._global: tuple[int, float] | None = DEFAULT_GLOBAL_LIMIT
            self._buckets: dict[tuple[str, str, str], _Window] = {}
            self._globals: dict[str, _Window] = {}
            self.hits: list[RateLimitHit] = []

    def set_route_limit(self, family: str, limit: int, window: float) -> None:
        with self._lock:
            self._routes[family] = (limit, window)
            self._buckets = {k: w for k, w in self._buckets.items() if k[1] != bucket_hash(family)}

    def set_global_limit(self, limit: int | None, window: float) -> None:
        with self._lock:
            self._global = (limit, window) if limit else None
            self._globals.clear()

    def check_global(self, token: str, now: float) -> Verdict:
        """Count a request against its bot's global limit; ``now`` is Discord's clock (epoch seconds)."""
        with self._lock:
            if self._global is None:
                return Verdict(True, {})
            limit, length = self._global
            window = self._globals.setdefault(token, _Window(limit, length))
            window.roll_aligned(now)
            if window.used < window.limit:
                window.used += 1
                return Verdict(True, {})
            retry_after = window.resets_at - now
            self.hits.append(RateLimitHit("global", token[-6:], "global", "", now))
            headers = {
                "X-RateLimit-Global": "true",
                "X-RateLimit-Scope": "global",
                "Retry-After": str(math.ceil(retry_after)),
            }
            body = limited(retry_after, is_global=True)
            return Verdict(False, headers, retry_after, "global", body)

    def check_route(self, token: str, family: str, major: str, now: float) -> Verdict:
        with self._lock:
            limit, length = self._routes.get(family, self._routes["default"])
            bucket = bucket_hash(family)
            window = self._buckets.setdefault((token, bucket, major), _Window(limit, length))
            window.roll(now)
            reset_after = max(window.resets_at - now, 0.0)
            if window.used < window.limit:
                window.used += 1
                headers = _reset_headers(limit, limit - window.used, reset_after, bucket)
                return Verdict(True, headers)
            self.hits.append(RateLimitHit("user", token[-6:], bucket, major, now))
            headers = _reset_headers(limit, 0, reset_after, bucket)
            headers["X-RateLimit-Scope"] = "user"
            headers["Retry-After"] = str(math.ceil(reset_after))
            body = limited(reset_after, is_global=False)
            return Verdict(False, headers, reset_after, "user", body)

    def record_shared(self, token: str, family: str, major: str, now: float) -> None:
        with self._lock:
            self.hits.append(RateLimitHit("shared", token[-6:], bucket_hash(family), major, now))
