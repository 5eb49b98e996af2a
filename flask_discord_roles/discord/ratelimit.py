"""Client-side rate limiting: per-bucket limits learned from Discord's headers, and the global limit.

The aim is that Discord never has to tell us "429": after a bucket's first response we know its limit,
what is left and when it resets, and requests queue (block) instead of being sent to be refused.

- A route we have not seen sends one request at a time until a response names its bucket.
- A bucket is (Discord's bucket hash, major parameters), so routes sharing a hash share it and each guild
  or channel has its own. We count down locally as requests leave, only ever *lower* what is left from a
  response (responses arrive out of order), and refill when our own reset time passes. Our reset time is
  taken on receipt, so it is never earlier than Discord's.
- The global limit (50 per second per bot) is not announced in headers; it is enforced here by counting
  each request from when it leaves until one period after its response (see :class:`GlobalLimiter`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class RateLimitHeaders:
    """What a response said about its bucket."""

    bucket: str | None
    limit: int | None
    remaining: int | None
    reset_after: float | None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        def number(name: str, kind: type[int] | type[float]) -> float | None:
            raw = headers.get(name)
            if raw is None:
                return None
            try:
                return kind(float(raw)) if kind is int else float(raw)
            except ValueError:
                return None

        limit = number("X-RateLimit-Limit", int)
        remaining = number("X-RateLimit-Remaining", int)
        return cls(
            bucket=headers.get("X-RateLimit-Bucket"),
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else int(remaining),
            reset_after=number("X-RateLimit-Reset-After", float),
        )


class Bucket:
    """One rate-limit bucket. ``acquire`` blocks until a request may leave; ``update`` learns from replies."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self.known = False
        self.limit = 1
        self.remaining = 1
        self.reset_at: float | None = None
        self.in_flight = 0
        # When our current window began (local refill), and the longest window Discord has described:
        # together they tell a late reply from the previous window apart from one about this window.
        self.window_started: float | None = None
        self.window_length = 0.0
        # Set when the route turned out to belong to a named bucket: waiters must look again.
        self.moved = False

    def _refill(self, now: float) -> None:
        if self.reset_at is not None and now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = None
            self.window_started = now

    def acquire(self, deadline: float) -> bool:
        """Take a slot; False if the bucket was moved (look it up again). Raises TimeoutError at deadline."""
        with self._cond:
            while True:
                if self.moved:
                    return False
                now = self._clock()
                self._refill(now)
                if not self.known:
                    # Until a response names the limits, one request at a time.
                    if self.in_flight == 0:
                        self.in_flight += 1
                        return True
                    wait = None
                elif self.remaining > 0:
                    self.remaining -= 1
                    self.in_flight += 1
                    return True
                else:
                    # Exhausted: wait for the reset, or for a response to tell us when it is.
                    wait = None if self.reset_at is None else self.reset_at - now
                if now >= deadline:
                    raise TimeoutError("gave up waiting for a rate-limit bucket")
                remaining_time = deadline - now
                self._cond.wait(remaining_time if wait is None else max(min(wait, remaining_time), 0.001))

    def release(self, headers: RateLimitHeaders | None) -> None:
        """The request is done; learn what its response said."""
        with self._cond:
            self.in_flight -= 1
            if headers is not None:
                self.learn(headers)
            self._cond.notify_all()

    def learn(self, headers: RateLimitHeaders) -> None:
        """Adopt a response's view, never raising what is left above what we counted.

        The caller holds the lock, or the bucket is not shared yet.
        """
        if headers.limit is None or headers.remaining is None:
            return
        now = self._clock()
        self._refill(now)
        if headers.reset_after is not None:
            self.window_length = max(self.window_length, headers.reset_after)
            stale = (
                self.window_started is not None
                and now + headers.reset_after < self.window_started + self.window_length / 2
            )
            if stale:
                # Describes the window before our refill; its "remaining" says nothing about this one.
                return
        self.limit = max(headers.limit, 1)
        if not self.known:
            self.known = True
            self.remaining = headers.remaining
        else:
            self.remaining = min(self.remaining, headers.remaining)
        if headers.reset_after is not None:
            reset_at = now + headers.reset_after
            if self.reset_at is None or reset_at > self.reset_at:
                self.reset_at = reset_at

    def pause(self, retry_after: float) -> None:
        """A 429 for this bucket: nothing leaves until ``retry_after`` has passed."""
        with self._cond:
            self.remaining = 0
            self.reset_at = max(self.reset_at or 0.0, self._clock() + retry_after)
            self.known = True
            self._cond.notify_all()

    def move(self) -> None:
        with self._cond:
            self.moved = True
            self._cond.notify_all()


class BucketManager:
    """Finds the bucket for a route, learning route → bucket-hash mappings from responses."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._hash_for_route: dict[str, str] = {}
        self._buckets: dict[tuple[str, tuple[str, ...]], Bucket] = {}

    def bucket_for(self, route_key: str, major: tuple[str, ...]) -> Bucket:
        with self._lock:
            name = self._hash_for_route.get(route_key, f"route:{route_key}")
            bucket = self._buckets.get((name, major))
            if bucket is None:
                bucket = self._buckets[(name, major)] = Bucket(self._clock)
            return bucket

    def learn_hash(self, route_key: str, major: tuple[str, ...], headers: RateLimitHeaders) -> None:
        """A response named the route's bucket: from now on the route shares that bucket.

        The provisional per-route bucket for these major parameters (if any) is retired, so two buckets
        never count the same Discord bucket.
        """
        if headers.bucket is None:
            return
        with self._lock:
            self._hash_for_route[route_key] = headers.bucket
            provisional = self._buckets.pop((f"route:{route_key}", major), None)
            key = (headers.bucket, major)
            if key not in self._buckets:
                bucket = Bucket(self._clock)
                bucket.learn(headers)
                self._buckets[key] = bucket
        if provisional is not None:
            provisional.move()

    def __len__(self) -> int:
        return len(self._buckets)


class GlobalLimiter:
    """At most ``limit`` requests per ``period`` per bot, however long the network takes.

    A request holds its slot while in flight and for one full ``period`` after its response. A response
    comes after the request reached Discord, so counting from it can never let more than ``limit``
    requests land in one of Discord's windows, whatever the latency: no margin to guess. A global 429
    pauses everyone for its ``retry_after``.
    """

    def __init__(self, limit: int, period: float, *, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.period = period
        self._clock = clock
        self._cond = threading.Condition()
        self._in_flight = 0
        self._finished: deque[float] = deque()  # completion times, in order
        self._paused_until = 0.0

    def acquire(self, deadline: float) -> None:
        """Block until a request may leave; raises TimeoutError when that would be after ``deadline``."""
        with self._cond:
            while True:
                now = self._clock()
                while self._finished and self._finished[0] <= now - self.period:
                    self._finished.popleft()
                busy = self._in_flight + len(self._finished)
                if now >= self._paused_until and busy < self.limit:
                    self._in_flight += 1
                    return
                if now < self._paused_until:
                    ready_at = self._paused_until
                elif self._finished:
                    ready_at = self._finished[0] + self.period
                else:
                    # Every slot is in flight; none frees before one period after its reply.
                    ready_at = now + self.period
                if ready_at > deadline:
                    raise TimeoutError("gave up waiting for the global rate limit")
                self._cond.wait(max(ready_at - now, 0.001))

    def release(self) -> None:
        """The request got its answer (or gave up): its slot frees one period from now."""
        with self._cond:
            self._in_flight -= 1
            self._finished.append(self._clock())
            self._cond.notify()

    def pause(self, retry_after: float) -> None:
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + retry_after)
            self._cond.notify_all()
