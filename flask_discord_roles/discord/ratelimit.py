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
  A reply that provably comes from Discord's next window (it left after our reset bound minus its own
  Reset-After) moves us to that window, with what it says is left less whatever could still be counted
  there after it; a later reset that could still be the old window's only postpones ours.
- A 429 pauses its bucket (or, if global, every request) for its ``retry_after``, separately from the
  window bookkeeping: a "shared" 429 says nothing about how much of our own window is left.
- The global limit (50 per second per bot) is not announced in headers, and Discord counts it per second
  of its own clock. Replies' ``Date`` headers tell where those seconds begin; each request is counted
  against every second it could have landed in, so every second is filled and none overfilled. Until a
  ``Date`` is seen, each request holds its slot until one period after its response, which is safe
  wherever the windows are (see :class:`GlobalLimiter`: the rule, the proof, and what hikari and
  twilight do).
- A bucket's window opens when Discord counts the first request after the previous one ended, which
  we know only to within the round trip, and the reset a reply announces is when that window ends.
  Refilling at our receipt of it plus ``Reset-After`` is, to within the reply's trip back, the earliest
  that is never before Discord's reset; the next request's trip there adds the rest of a round trip.
  A window of ``W`` seconds so costs ``W + R`` at a round trip of ``R``: 0.99 of the limit for
  Discord's 10 s role buckets at 100 ms, and no client that is safe whatever the latency does better.

Every wait is a ``threading.Condition`` wait with a timeout, woken early by whatever could end it.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import insort
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "Bucket",
    "BucketKey",
    "BucketManager",
    "Clock",
    "GlobalLimiter",
    "GlobalTicket",
    "RateLimitHeaders",
    "WaitTooLong",
]

Clock = Callable[[], float]

# Seconds of reply times a bucket remembers (a request out longer than half of this learns nothing
# from the rule that needs them), and how far Discord's Reset-After may be rounded.
_REPLY_MEMORY = 120.0
_HEADER_ROUNDING = 0.002

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
        # When recent requests were done with: one Discord counted after another may be done before
        # it (see ``_opened_next_window``).
        self._answered: deque[float] = deque()
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

    def release(self, window: int, headers: RateLimitHeaders | None, *, sent: float | None = None) -> None:
        """The request taken in ``window`` is done (answered or not); learn what its response said.

        ``sent``: when the request left (no later), which lets a reply from Discord's next window be
        recognised as one.
        """
        with self._cond:
            now = self._clock()
            # Refill first, while this request still counts as out: it may have opened Discord's new
            # window, and the refill must leave room for it.
            self._refill(now)
            self.in_flight -= 1
            current = headers is not None and window == self.window
            if current and headers and not self._opened_next_window(headers, sent, now):
                self.learn(headers)
            # Every request done, answered or not: one that failed may still have been counted.
            self._answered.append(now)
            while self._answered[0] < now - _REPLY_MEMORY:
                self._answered.popleft()
            self._cond.notify_all()

    def _opened_next_window(self, headers: RateLimitHeaders, sent: float | None, now: float) -> bool:
        """Adopt Discord's next window if this reply provably comes from it; False if not provably.

        Discord counted the request no earlier than ``sent``, so its window ends no earlier than
        ``sent + reset_after``; if that is past ``reset_at`` (no earlier than the end of the window we
        count down), the request opened a later one. Taking only the later reset, as :meth:`learn`
        does, would keep the old window's count for the whole new window: a window at half speed.
        What the reply says is left must still make room for every request that could be counted
        there after this one: those still out, and those answered since this one left (a request
        counted after this one may be answered before it).
        """
        if (
            sent is None
            or not self.known
            or self.reset_at is None
            or headers.limit is None
            or headers.remaining is None
            or headers.reset_after is None
            or now - sent > _REPLY_MEMORY / 2
            or sent + headers.reset_after <= self.reset_at + _HEADER_ROUNDING
        ):
            return False
        answered_since = sum(1 for moment in self._answered if moment > sent)
        self.limit = max(headers.limit, 1)
        self.remaining = max(headers.remaining - self.in_flight - answered_since, 0)
        self.reset_at = now + headers.reset_after
        # Replies to requests taken before describe the old window or were just counted above.
        self.window += 1
        return True

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


@dataclass(eq=False)
class GlobalTicket:
    """One request's place in the global limit, from :meth:`GlobalLimiter.acquire` to its ``release``.

    ``sent`` and ``answered`` are on our clock (``answered`` stays None while the request is out);
    ``second`` is the Discord second its reply's ``Date`` header named, if it had one.
    """

    sent: float
    answered: float | None = None
    second: float | None = None


class _ClockOffset:
    """What Discord's clock reads minus what ours reads, known to lie in ``[low, high]``.

    Every reply with a ``Date`` narrows it: Discord stamped that second ``D`` at some instant between
    our sending and our receiving, so ``D <= instant + offset < D + 1``. The bounds are widened by
    ``drift`` per second since they were last narrowed, as the two clocks may run at slightly different
    rates; bounds that contradict each other (Discord's clock jumped) are forgotten.
    """

    def __init__(self, drift: float) -> None:
        self.drift = drift
        self.low = -math.inf
        self.high = math.inf
        self.at = 0.0

    def bounds(self, now: float) -> tuple[float, float]:
        slack = self.drift * max(now - self.at, 0.0)
        return self.low - slack, self.high + slack

    def narrow(self, second: float, sent: float, answered: float) -> bool:
        """Learn from one reply; False if it contradicts what we knew (the bounds are then reset)."""
        low, high = self.bounds(answered)
        low, high = max(low, second - answered), min(high, second + 1 - sent)
        if low > high:
            self.low, self.high = -math.inf, math.inf
            return False
        self.low, self.high, self.at = low, high, answered
        return True


class GlobalLimiter:
    """At most ``limit`` requests per ``period`` per bot, in every window Discord counts them in.

    Discord counts the global limit per second of its own clock, and every reply's ``Date`` header
    names the second it was stamped in, after the request was counted and before we got the reply. A
    request is let out when either of two rules allows it. Each is safe on its own whatever the other
    let out, because each checks every request sent before it, however that one was let out: take the
    last request to land in some window; the rule that let it out saw every earlier one.

    - **Windows on Discord's clock** (once a reply carried a ``Date``). Replies bound the offset between
      Discord's clock and ours (see :class:`_ClockOffset`), so each request can be given the windows it
      could have been counted in: from the earliest its send time allows, to the latest its reply's time
      and ``Date`` allow (the window holding the end of that second, at most), or with no end while it
      is out. A request leaves only if every window it could land in still has room. With Discord's
      one-second windows a reply pins its request to one window, and the client sends each second's
      ``limit`` as soon as that second can have begun: every window is used in full, at any round trip
      shorter than a second.
    - **Latency-proof** (the only one before the first ``Date``, or when replies carry none): a request
      holds its slot while in flight and for one full ``period`` after its reply. Two requests sharing a
      slot reach Discord at least ``period`` apart, so no window of ``period`` seconds, fixed or sliding,
      can see more than ``limit`` of ours. It costs one round trip per period: ``limit / (1 + R)`` per
      second at a round trip of R seconds (0.91 of the limit at 100 ms).

    What others do: twilight (``twilight-http-ratelimiting``) counts ``limit`` permits from the first
    request it lets out and refills them one period later on its own clock; hikari waits only after a
    global 429 (its ``ManualRateLimiter``). Neither knows where Discord's seconds begin, so a request
    sent late in one of their windows can reach Discord in the same second as the next window's first
    ones, and a 429 follows. Not knowing where Discord's windows sit, nothing beats the latency-proof
    rule (a request's arrival is only known to lie between sending it and the reply); knowing it is
    what lets a client fill every second and still prove it never overfills one.

    What the Discord-clock rule assumes: Discord stamps ``Date`` no earlier than it counts the request,
    from the clock its windows follow, and that clock runs at our clock's rate to within :attr:`DRIFT`.
    A reply contradicting the offset learned so far (a jump) resets it, and the latency-proof rule alone
    decides until replies have pinned it again. A global 429 pauses everyone for its ``retry_after``.
    """

    #: How far Discord's clock and ours may drift apart, in seconds per second (1000 ppm: twice what
    #: NTP may slew a clock by).
    DRIFT = 1e-3
    #: Seconds an answered request is remembered beyond one period. The offset must be known to within
    #: half of this for the Discord-clock rule to be used, so that the rule sees every request that
    #: could share a window with the next (one reply pins it to within a second and a round trip).
    RETAIN = 4.0

    def __init__(self, limit: int, period: float, *, clock: Clock = time.monotonic) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("the global limit needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._cond = threading.Condition()
        # The latency-proof rule's books: requests out, and when each recent one's slot frees.
        self._in_flight = 0
        self._finished: deque[float] = deque()
        # The Discord-clock rule's books: every request that could still share a window with the next.
        self._offset = _ClockOffset(self.DRIFT)
        self._tickets: list[GlobalTicket] = []
        self._forget_at = clock() + self.RETAIN
        self._paused_until = 0.0

    def acquire(self, deadline: float) -> GlobalTicket:
        """Block until a request may leave; raises :class:`WaitTooLong` if that is after ``deadline``.

        The ticket goes back to :meth:`release` once the request is answered (or given up on).
        """
        with self._cond:
            while True:
                now = self._clock()
                paused = now < self._paused_until
                if paused:
                    ready_at: float | None = self._paused_until
                    look_again = self._paused_until
                else:
                    ready_at, look_again = self._ready_at(now)
                    if ready_at is not None and ready_at <= now:
                        ticket = GlobalTicket(now)
                        self._tickets.append(ticket)
                        self._in_flight += 1
                        return ticket
                if ready_at is not None and ready_at > deadline:
                    raise WaitTooLong(
                        "the global limit frees a slot after the deadline", ready_at - now, after_429=paused
                    )
                if now >= deadline:
                    raise WaitTooLong("gave up waiting for the global limit", look_again - now)
                # Replies notify too: one may open a window before ``look_again``.
                self._cond.wait(max(min(look_again, deadline) - now, 0.001))

    def _ready_at(self, now: float) -> tuple[float | None, float]:
        """When the first of the two rules lets a request out if nothing else happens (None: not before
        a reply), and when to look again at the latest."""
        while self._finished and self._finished[0] + self.period <= now:
            self._finished.popleft()
        if self._in_flight + len(self._finished) < self.limit:
            return now, now
        # Every slot in flight frees one period after its reply, at the earliest.
        proof = self._finished[0] + self.period if self._finished else now + self.period
        usable, on_clock = self._window_opens_at(now)
        if not usable:
            return proof, proof
        if on_clock is None:
            return None, proof
        return min(proof, on_clock), min(proof, on_clock)

    def _window_opens_at(self, now: float) -> tuple[bool, float | None]:
        """By Discord's clock, when a request sent then could land only in windows with room (None: not
        before a reply); first, whether the offset is known well enough to use this rule at all.

        A request sent at ``now`` could be counted in any window from ``first`` on. Each ticket occupies
        a range of windows; if every window after ``k`` has room, a request may leave once window
        ``k + 1`` can have begun, at ``(k + 1) * period - low`` on our clock.
        """
        period, drift = self.period, self.DRIFT
        # Old tickets go below (none of them can reach a window still to come) and in release().
        low, high = self._offset.bounds(now)
        if high - low > self.RETAIN / 2:
            return False, None
        first = math.floor((now + low) / period)
        changes: Counter[int] = Counter()  # +1 where a ticket's windows start, -1 after they end
        open_ended = 0
        kept = []
        for ticket in self._tickets:
            # The offset when the ticket was counted may differ from now's by the drift since.
            slack = drift * (now - ticket.sent)
            start = max(math.floor((ticket.sent + low - slack) / period), first)
            if ticket.answered is None:
                open_ended += 1
                kept.append(ticket)
                changes[start] += 1
                continue
            end = math.floor((ticket.answered + high + slack) / period)
            if ticket.second is not None:
                # Counted no later than stamped: before the end of the second its Date names.
                end = min(end, math.ceil((ticket.second + 1) / period) - 1)
            if end < first - 1:
                continue  # behind every window a request sent from now on could reach: forget it
            kept.append(ticket)
            if end >= start:
                changes[start] += 1
                changes[end + 1] -= 1
        self._tickets = kept
        if open_ended >= self.limit:
            return True, None  # every window from some point on is full until a reply pins one down
        busy, last_full = 0, None
        for window in sorted(changes):
            busy += changes[window]
            if busy >= self.limit:
                last_full = window
        if last_full is None:
            return True, now
        return True, max(now, (last_full + 1) * period - low)

    def _forget_old_tickets(self, now: float) -> None:
        self._forget_at = now + self.RETAIN
        forget_before = now - self.RETAIN - self.period
        self._tickets = [t for t in self._tickets if t.answered is None or t.answered > forget_before]

    def release(self, ticket: GlobalTicket, *, date: float | None = None, unanswered: bool = False) -> None:
        """The request holding ``ticket`` got its answer (``date``: its ``Date`` header, epoch seconds).

        ``unanswered`` (we stopped waiting for a request that was sent) holds its slot one period more:
        with no answer, nothing proves the request reached Discord before now.
        """
        with self._cond:
            now = self._clock()
            done = now + (self.period if unanswered else 0.0)
            self._in_flight -= 1
            # Kept sorted: popping from the left must free the earliest slot first.
            insort(self._finished, done)
            ticket.answered = done
            if len(self._tickets) > 4 * self.limit or now >= self._forget_at:
                # A client that never fills the limit never consults its tickets: forget old ones here,
                # when there are many, or every RETAIN seconds (under a large limit, "many" is never).
                self._forget_old_tickets(now)
            if date is not None and not unanswered:
                if self._offset.narrow(date, ticket.sent, now):
                    ticket.second = date
                else:
                    # Discord's clock jumped: Dates stamped before say nothing about its windows now.
                    for other in self._tickets:
                        other.second = None
            self._cond.notify_all()

    def pause(self, retry_after: float) -> None:
        """A global 429: no request leaves until ``retry_after`` has passed."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + retry_after)
            self._cond.notify_all()
