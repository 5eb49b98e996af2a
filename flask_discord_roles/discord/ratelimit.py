"""Client-side rate limiting: per-bucket limits learned from Discord's headers, and the global limit.

The aim is that Discord never has to tell us "429": after a bucket's first response we know its limit,
what is left and when it resets, and requests queue (block) instead of being sent to be refused.

- A route we have not seen sends one request at a time until a response names its bucket.
- A bucket is (Discord's bucket hash, major parameters), so routes sharing a hash share it and each guild
  or channel has its own. We count down locally as requests leave, only ever *lower* what is left from a
  response (responses arrive out of order), and refill when our own reset time passes. Our reset time is
  taken on receipt, so it is never earlier than Discord's; a request still in flight when we refill may
  land in Discord's next window, so it is counted against that window too, and replies to requests
  sent before a refill are ignored (they describe Discord's old window, or were already counted).
  A reply announcing a later reset than ours (Discord opened its next window first) postpones ours.
- A 429 pauses its bucket (or, if global, every request) for its ``retry_after``, separately from the
  window bookkeeping: a "shared" 429 says nothing about how much of our own window is left.
- The global limit (50 per second per bot) is not announced in headers; it is enforced here by counting
  each request from when it leaves until one period after its response (see :class:`GlobalLimiter`).

Every wait is a ``threading.Condition`` wait with a timeout, woken early by whatever could end it.
"""

from __future__ import annotations

import threading
import time
from bisect import insort
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "Bucket",
    "BucketKey",
    "BucketManager",
    "Clock",
    "GlobalLimiter",
    "RateLimitHeaders",
    "WaitTooLong",
]

Clock = Callable[[], float]

# How long a waiter sleeps when nothing it can compute will wake it (it is also notified on every
# response): a safety net against a lost notification, not a poll interval that matters.
_IDLE_WAIT = 1.0


def _number(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


class WaitTooLong(TimeoutError):
    """Waiting for a slot would pass the caller's deadline; ``retry_after`` says when to come back.

    ``after_429`` tells whose word the wait is: True when a 429 from Discord paused the bucket (or every
    request); False when it is our own pacing (the window we learned from headers is used up), Discord
    having refused nothing.
    """

    def __init__(self, message: str, retry_after: float, *, after_429: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.after_429 = after_429


@dataclass(frozen=True)
class RateLimitHeaders:
    """What a response said about its bucket (all ``None`` when it said nothing)."""

    bucket: str | None
    limit: int | None
    remaining: int | None
    reset_after: float | None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        limit = _number(headers, "X-RateLimit-Limit")
        remaining = _number(headers, "X-RateLimit-Remaining")
        return cls(
            bucket=headers.get("X-RateLimit-Bucket"),
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else int(remaining),
            reset_after=_number(headers, "X-RateLimit-Reset-After"),
        )


class Bucket:
    """One rate-limit bucket. ``acquire`` blocks until a request may leave; ``release`` learns from replies.

    Every ``acquire`` that returns a window number must be paired with exactly one ``release`` given
    that number back.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self.known = False
        self.limit = 1
        self.remaining = 1
        self.reset_at: float | None = None
        self.paused_until = 0.0
        self.in_flight = 0
        # Our local windows, counted. A reply to a request that left in an earlier one is ignored: it
        # was either counted in Discord's old window (says nothing about this one) or already deducted
        # from this one at the refill.
        self.window = 1
        # Set when the route turned out to belong to a named bucket: waiters must look again.
        self.moved = False

    def _refill(self, now: float) -> None:
        if self.reset_at is not None and now >= self.reset_at:
            # Requests still in flight left in the old window but may reach Discord in the new one.
            self.remaining = max(self.limit - self.in_flight, 0)
            self.reset_at = None
            self.window += 1

    def acquire(self, deadline: float) -> int | None:
        """Take a slot and return the local window it was taken in; None if the bucket was moved (look
        the route up again). Raises :class:`WaitTooLong` at once if the slot is known to free only
        after ``deadline``, or at ``deadline`` if nobody could say when.
        """
        with self._cond:
            while True:
                if self.moved:
                    return None
                now = self._clock()
                self._refill(now)
                wait: float | None
                if now < self.paused_until:
                    wait = self.paused_until - now
                elif not self.known or (self.remaining <= 0 and self.reset_at is None):
                    # Limits unknown (or a reply left us at zero without saying when it resets): one
                    # request at a time until a response tells us more.
                    if self.in_flight == 0:
                        self.in_flight += 1
                        self.remaining = max(self.remaining - 1, 0)
                        return self.window
                    wait = None
                elif self.remaining > 0:
                    self.remaining -= 1
                    self.in_flight += 1
                    return self.window
                else:
                    # Exhausted: wait for the reset (a response may move it, and will notify us).
                    wait = None if self.reset_at is None else self.reset_at - now
                paused = now < self.paused_until
                if wait is not None and now + wait > deadline:
                    raise WaitTooLong(
                        "the rate-limit bucket frees after the deadline", wait, after_429=paused
                    )
                if now >= deadline:
                    raise WaitTooLong("gave up waiting for a rate-limit bucket", 0.0, after_429=paused)
                timeout = min(_IDLE_WAIT if wait is None else wait, deadline - now)
                self._cond.wait(max(timeout, 0.001))

    def release(self, window: int, headers: RateLimitHeaders | None) -> None:
        """The request taken in ``window`` is done (answered or not); learn what its response said."""
        with self._cond:
            # Refill first, while this request still counts as out: it may have opened Discord's new
            # window, and the refill must leave room for it.
            self._refill(self._clock())
            self.in_flight -= 1
            if headers is not None and window == self.window:
                self.learn(headers)
            self._cond.notify_all()

    def learn(self, headers: RateLimitHeaders) -> None:
        """Adopt a current response's view, never raising what is left above what we counted.

        The caller holds the lock, or the bucket is not shared yet.
        """
        if headers.limit is None or headers.remaining is None:
            return
        now = self._clock()
        self.limit = max(headers.limit, 1)
        if self.known:
            self.remaining = min(self.remaining, headers.remaining)
        else:
            # The first answer. Anything still out (a probe of this bucket, when the answer came to a
            # provisional bucket's probe) may not be in Discord's count yet.
            self.known = True
            self.remaining = max(headers.remaining - self.in_flight, 0)
        if headers.reset_after is not None:
            reset_at = now + headers.reset_after
            # A later reset means Discord already opened its next window: keep the later one, so we
            # never refill before Discord does.
            if self.reset_at is None or reset_at > self.reset_at:
                self.reset_at = reset_at

    def adopt(self, headers: RateLimitHeaders) -> None:
        """Learn from a reply to a request another bucket sent (the probe of a provisional bucket)."""
        with self._cond:
            self._refill(self._clock())
            self.learn(headers)
            self._cond.notify_all()

    def pause(self, retry_after: float) -> None:
        """A 429 for this bucket: nothing leaves until ``retry_after`` has passed."""
        with self._cond:
            self.paused_until = max(self.paused_until, self._clock() + retry_after)
            self._cond.notify_all()

    def move(self) -> None:
        """Retire this bucket: anyone waiting on it (or about to) looks the route up again."""
        with self._cond:
            self.moved = True
            self._cond.notify_all()

    def is_idle(self, now: float) -> bool:
        """Nothing out, nothing paused, window over: forgetting it loses nothing but one re-probe."""
        with self._cond:
            return (
                self.in_flight == 0
                and now >= self.paused_until
                and (self.reset_at is None or now >= self.reset_at)
            )


BucketKey = tuple[str, tuple[str, ...]]


class BucketManager:
    """Finds the bucket for a route, learning route → bucket-hash mappings from responses."""

    # Buckets are per guild, channel and interaction token, so a long-lived client keeps meeting new
    # ones; idle ones are forgotten whenever the table doubles past this size.
    SWEEP_AT = 1024

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._hash_for_route: dict[str, str] = {}
        self._buckets: dict[BucketKey, Bucket] = {}
        self._sweep_at = self.SWEEP_AT

    def bucket_for(self, route_key: str, major: tuple[str, ...]) -> Bucket:
        """The bucket a request on this route (with these major parameters) must take a slot from."""
        with self._lock:
            # A provisional bucket stays in use until its probe is answered, even if another major
            # parameter's answer has named the hash meanwhile: a second probe next to it would go out
            # uncounted by the named bucket.
            key = (f"route:{route_key}", major)
            bucket = self._buckets.get(key)
            if bucket is not None:
                return bucket
            name = self._hash_for_route.get(route_key)
            if name is not None:
                key = (name, major)  # otherwise a new provisional ("unknown") bucket for this route
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._sweep_at:
                    self._sweep()
                bucket = self._buckets[key] = Bucket(self._clock)
            return bucket

    def _sweep(self) -> None:
        """Drop idle buckets (the caller holds the lock). A thread holding one re-looks it up."""
        now = self._clock()
        for key, bucket in list(self._buckets.items()):
            if bucket.is_idle(now):
                del self._buckets[key]
                bucket.move()
        self._sweep_at = max(self.SWEEP_AT, 2 * len(self._buckets))

    def learn_hash(self, route_key: str, major: tuple[str, ...], headers: RateLimitHeaders) -> None:
        """A response named the route's bucket: from now on the route shares that bucket.

        The provisional per-route bucket for these major parameters (if any) is retired, so two buckets
        never count the same Discord bucket; its waiters are woken to look the route up again.
        """
        if headers.bucket is None:
            return
        with self._lock:
            self._hash_for_route[route_key] = headers.bucket
            provisional = self._buckets.pop((f"route:{route_key}", major), None)
            key = (headers.bucket, major)
            named = self._buckets.get(key)
            if named is None:
                named = self._buckets[key] = Bucket(self._clock)
        if provisional is not None:
            provisional.move()
            # The probe counted in Discord's bucket: the named bucket must know it.
            named.adopt(headers)

    def __len__(self) -> int:
        return len(self._buckets)


class GlobalLimiter:
    """At most ``limit`` requests per ``period`` per bot, however long the network takes.

    A request holds its slot while in flight and for one full ``period`` after its response. Discord saw
    the request at some moment between sending and the response, so two requests that use the same slot
    one after the other reach Discord at least ``period`` apart: no window of ``period`` seconds, fixed
    or sliding, wherever it starts, can see more than ``limit`` of ours, whatever the latency. The price
    is one round trip per period (about 1% on a fast link, ~5-10% at 50-100 ms), paid instead of a
    guessed safety margin that a slow request could exceed. A global 429 pauses everyone for its
    ``retry_after``.
    """

    def __init__(self, limit: int, period: float, *, clock: Clock = time.monotonic) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("the global limit needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._cond = threading.Condition()
        self._in_flight = 0
        self._finished: deque[float] = deque()  # when each recent request got its answer, in order
        self._paused_until = 0.0

    def acquire(self, deadline: float) -> None:
        """Block until a request may leave; raises :class:`WaitTooLong` if that is after ``deadline``."""
        with self._cond:
            while True:
                now = self._clock()
                while self._finished and self._finished[0] + self.period <= now:
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
                    raise WaitTooLong(
                        "the global limit frees a slot after the deadline",
                        ready_at - now,
                        after_429=now < self._paused_until,
                    )
                self._cond.wait(max(ready_at - now, 0.001))

    def release(self, *, unanswered: bool = False) -> None:
        """The request got its answer: its slot frees one period from now.

        ``unanswered`` (we stopped waiting for a request that was sent) holds the slot one period more:
        with no answer, nothing proves the request reached Discord before now.
        """
        with self._cond:
            self._in_flight -= 1
            # Kept sorted: popping from the left must free the earliest slot first.
            insort(self._finished, self._clock() + (self.period if unanswered else 0.0))
            # Nobody can use this slot yet; waiters time out when the oldest one frees.

    def pause(self, retry_after: float) -> None:
        """A global 429: no request leaves until ``retry_after`` has passed."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + retry_after)
            self._cond.notify_all()
