"""The bucket and global-limit bookkeeping, on a clock the test moves by hand."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Callable

import pytest

from flask_discord_roles.discord.ratelimit import (
    Bucket,
    BucketManager,
    GlobalLimiter,
    GlobalTicket,
    RateLimitHeaders,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(remaining: int, reset_after: float, limit: int = 5, bucket: str = "abc") -> RateLimitHeaders:
    return RateLimitHeaders(bucket=bucket, limit=limit, remaining=remaining, reset_after=reset_after)


def known_bucket(clock: Clock, limit: int = 5, reset_after: float = 1.0) -> Bucket:
    """A bucket whose first reply said: ``limit`` per window, one used, resets in ``reset_after``."""
    bucket = Bucket(clock)
    window = bucket.acquire(clock.now + 1)
    assert window is not None
    bucket.release(window, headers(remaining=limit - 1, reset_after=reset_after, limit=limit))
    return bucket


def take(bucket: Bucket, clock: Clock) -> int | None:
    """A slot if one is free right now, else None."""
    try:
        return bucket.acquire(deadline=clock.now)
    except TimeoutError:
        return None


def can_acquire(bucket: Bucket, clock: Clock) -> bool:
    return take(bucket, clock) is not None


def test_headers_are_parsed_and_garbage_is_ignored() -> None:
    parsed = RateLimitHeaders.parse(
        {
            "X-RateLimit-Bucket": "h",
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "9",
            "X-RateLimit-Reset-After": "0.25",
        }
    )
    assert parsed == RateLimitHeaders(bucket="h", limit=10, remaining=9, reset_after=0.25)
    assert RateLimitHeaders.parse({"X-RateLimit-Limit": "many"}).limit is None


def test_unknown_bucket_lets_one_request_out_until_a_reply_names_its_limits() -> None:
    clock = Clock()
    bucket = Bucket(clock)
    window = bucket.acquire(deadline=clock.now + 10)
    assert window is not None
    assert not can_acquire(bucket, clock), "a second request must wait for the first reply"
    bucket.release(window, headers(remaining=4, reset_after=1.0))
    assert bucket.known
    for number in range(4):
        assert can_acquire(bucket, clock), f"request {number + 2} of 5 should have been let out"
    assert not can_acquire(bucket, clock), "a sixth request in a window of five must wait"


def test_replies_only_lower_what_is_left_and_the_window_refills_after_reset() -> None:
    clock = Clock()
    bucket = known_bucket(clock)
    first, second = take(bucket, clock), take(bucket, clock)  # two in flight: 2 left locally
    assert first is not None
    assert second is not None
    bucket.release(first, headers(remaining=3, reset_after=0.9))  # Discord has not seen the second yet
    assert bucket.remaining == 2, "a reply must never raise what we counted ourselves"
    bucket.release(second, headers(remaining=2, reset_after=0.9))
    clock.now += 1.01
    assert can_acquire(bucket, clock)
    assert bucket.remaining == 4, "after the reset the bucket is full again (minus this request)"


def test_requests_in_flight_at_the_refill_count_against_the_new_window() -> None:
    clock = Clock()
    bucket = known_bucket(clock)
    for _ in range(3):
        take(bucket, clock)  # sent late in the window, still unanswered at our reset
    clock.now += 1.01
    assert can_acquire(bucket, clock)
    assert bucket.remaining == 1, "3 may land in Discord's next window: 5 - 3 - this one = 1 left"


def test_replies_to_requests_sent_before_the_refill_are_ignored() -> None:
    clock = Clock()
    bucket = known_bucket(clock)
    old = [take(bucket, clock) for _ in range(2)]
    clock.now += 1.05  # our window ends (Discord's already did)
    new = take(bucket, clock)
    assert new is not None
    assert bucket.remaining == 2, "5 - the 2 still out - this one"
    # A straggler from the old window: a small reset_after that would make us refill far too early,
    # and a "remaining" about a window that is over.
    assert old[0] is not None
    bucket.release(old[0], headers(remaining=0, reset_after=0.15))
    assert (bucket.remaining, bucket.reset_at) == (2, None), "a stale reply must change nothing"
    bucket.release(new, headers(remaining=3, reset_after=0.95))
    assert bucket.reset_at == pytest.approx(clock.now + 0.95), "a reply from this window sets the reset"
    assert bucket.remaining == 2


def test_a_request_answered_just_after_our_reset_still_counts_in_the_new_window() -> None:
    clock = Clock()
    bucket = known_bucket(clock)
    late = take(bucket, clock)  # sent just before our reset; it opens Discord's next window
    assert late is not None
    clock.now += 1.01
    bucket.release(late, headers(remaining=4, reset_after=1.0))  # its answer is the first thing we see
    left = sum(can_acquire(bucket, clock) for _ in range(5))
    assert left == 4, f"Discord's new window already holds that request: 4 may follow, not {left}"


def test_a_reply_from_discords_next_window_postpones_our_refill() -> None:
    clock = Clock()
    bucket = known_bucket(clock)
    window = take(bucket, clock)
    assert window is not None
    clock.now += 0.99
    # Discord's window ended before ours and this request opened its next one.
    bucket.release(window, headers(remaining=4, reset_after=1.0))
    clock.now += 0.05
    assert bucket.reset_at is not None
    assert bucket.reset_at > clock.now, "we must not refill while Discord's new window is running"


@pytest.mark.parametrize("others_out", [0, 2])
def test_a_reply_from_discords_next_window_just_before_our_reset_moves_us_to_that_window(
    others_out: int,
) -> None:
    clock = Clock()
    bucket = known_bucket(clock, limit=10, reset_after=10.0)  # our reset: 1010.0
    clock.now = 1009.5
    late = take(bucket, clock)  # reaches Discord after its window ended: it opens the next one
    for _ in range(others_out):
        take(bucket, clock)  # may be counted in that next window after it
    assert late is not None
    clock.now = 1009.99  # its answer is back just before our reset
    bucket.release(late, headers(remaining=9, reset_after=9.9, limit=10), sent=1009.5)
    assert bucket.reset_at == pytest.approx(1019.89), "the new window's reset is adopted"
    left = sum(can_acquire(bucket, clock) for _ in range(10))
    assert left == 9 - others_out, f"Discord's new window has {9 - others_out} left for us, not {left}"


def test_a_later_reset_that_could_be_the_same_window_only_postpones_ours() -> None:
    clock = Clock()
    bucket = known_bucket(clock, limit=10, reset_after=1.0)  # our reset: 1001.0
    window = take(bucket, clock)
    assert window is not None
    clock.now = 1000.3  # a slow trip back: its reset (1001.02) is later than ours, its window maybe not
    bucket.release(window, headers(remaining=8, reset_after=0.72, limit=10), sent=1000.0)
    assert bucket.reset_at == pytest.approx(1001.02)
    assert bucket.remaining == 8, "still counting down the same window"


def test_a_429_pauses_for_retry_after_not_for_the_rest_of_the_window() -> None:
    clock = Clock()
    bucket = known_bucket(clock, limit=100, reset_after=10.0)
    bucket.pause(0.5)  # a "shared" 429: our own window still has 99 left
    assert not can_acquire(bucket, clock), "nothing may leave during retry_after"
    clock.now += 0.5
    assert can_acquire(bucket, clock), "after retry_after requests flow again, long before the reset"


def test_zero_left_without_a_reset_time_probes_one_at_a_time_instead_of_hanging() -> None:
    clock = Clock()
    bucket = Bucket(clock)
    window = bucket.acquire(clock.now + 1)
    assert window is not None
    bucket.release(window, RateLimitHeaders(bucket="h", limit=5, remaining=0, reset_after=None))
    assert can_acquire(bucket, clock), "with no reset time known, one request must still be let out"
    assert not can_acquire(bucket, clock)


def test_routes_sharing_a_bucket_hash_share_one_bucket_per_major_parameter() -> None:
    clock = Clock()
    manager = BucketManager(clock)
    provisional = manager.bucket_for("PUT /a", ("1",))
    provisional.acquire(clock.now + 1)
    manager.learn_hash("PUT /a", ("1",), headers(4, 1.0, bucket="shared"))
    assert provisional.moved, "waiters on the provisional bucket must look again"
    assert provisional.acquire(clock.now + 1) is None, "a moved bucket sends its callers to look again"
    manager.learn_hash("DELETE /a", ("1",), headers(3, 1.0, bucket="shared"))
    assert manager.bucket_for("PUT /a", ("1",)) is manager.bucket_for("DELETE /a", ("1",))
    assert manager.bucket_for("PUT /a", ("1",)) is not manager.bucket_for("PUT /a", ("2",))
    learned = manager.bucket_for("PUT /a", ("1",))
    assert learned.known
    assert learned.remaining == 4, "the named bucket starts from what the probe's reply said"


def test_a_probe_still_out_keeps_its_route_on_the_provisional_bucket() -> None:
    clock = Clock()
    manager = BucketManager(clock)
    guild_a = manager.bucket_for("PUT /roles", ("A",))
    guild_b = manager.bucket_for("PUT /roles", ("B",))
    guild_a.acquire(clock.now + 1)
    guild_b.acquire(clock.now + 1)
    manager.learn_hash("PUT /roles", ("A",), headers(9, 1.0, limit=10, bucket="h"))
    # Guild B's probe is still out: a second probe from a fresh named bucket would go uncounted.
    assert manager.bucket_for("PUT /roles", ("B",)) is guild_b
    assert not can_acquire(guild_b, clock), "still one request at a time for guild B"
    manager.learn_hash("PUT /roles", ("B",), headers(9, 1.0, limit=10, bucket="h"))
    named_b = manager.bucket_for("PUT /roles", ("B",))
    assert named_b is not guild_b
    assert named_b.remaining == 9, "guild B's named bucket knows about the probe"


def test_idle_buckets_are_forgotten_when_the_table_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BucketManager, "SWEEP_AT", 4)
    clock = Clock()
    manager = BucketManager(clock)
    busy = manager.bucket_for("PUT /a", ("busy",))
    busy.acquire(clock.now + 1)
    idle = [manager.bucket_for("PUT /a", (str(n),)) for n in range(3)]
    manager.bucket_for("PUT /a", ("new",))  # the fifth bucket triggers a sweep
    assert len(manager) == 2, "the three idle buckets should have been dropped"
    assert all(bucket.moved for bucket in idle), "anyone holding a dropped bucket must look again"
    assert manager.bucket_for("PUT /a", ("busy",)) is busy, "a bucket with a request out is kept"


def test_global_slots_free_one_period_after_the_reply_not_after_sending() -> None:
    clock = Clock()
    limiter = GlobalLimiter(2, 1.0, clock=clock)
    first = limiter.acquire(clock.now)
    limiter.acquire(clock.now)
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now)
    clock.now += 0.5
    limiter.release(first)  # replied at t+0.5 without a Date: frees at t+1.5
    clock.now += 0.6
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now)
    clock.now += 0.41
    limiter.acquire(clock.now)


def test_a_request_we_gave_up_on_holds_its_global_slot_one_period_longer() -> None:
    clock = Clock()
    limiter = GlobalLimiter(1, 1.0, clock=clock)
    limiter.release(limiter.acquire(clock.now), unanswered=True)
    clock.now += 1.5
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now)
    clock.now += 0.5
    limiter.acquire(clock.now)


def test_a_global_429_pauses_everyone() -> None:
    clock = Clock()
    limiter = GlobalLimiter(10, 1.0, clock=clock)
    limiter.pause(2.0)
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now + 1.0)
    clock.now += 2.0
    limiter.acquire(clock.now)


THETA = 1_796_000_000.25  # Discord's clock minus ours, in these tests: its seconds begin at .75 of ours


def test_once_dates_say_where_discords_seconds_begin_each_second_is_used_in_full() -> None:
    clock = Clock()  # our 1000.0 is Discord's ...1000.25: its seconds begin at .75 of ours
    limiter = GlobalLimiter(2, 1.0, clock=clock)
    early = limiter.acquire(clock.now)
    clock.now = 1000.1
    limiter.release(early, date=math.floor(1000.05 + THETA))
    clock.now = 1000.7
    late = limiter.acquire(clock.now)  # counted at 1000.76, just after Discord's next second began
    clock.now = 1000.8
    limiter.release(late, date=math.floor(1000.76 + THETA))
    # Those two replies place Discord's seconds to within 0.05 s: the second "late" was counted in
    # has room for one more now, where the latency-proof rule would wait until 1001.1.
    limiter.release(limiter.acquire(clock.now), date=math.floor(1000.8 + THETA))
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now)
    clock.now = 1001.8  # Discord's next second began at 1001.75: both slots, at once
    limiter.acquire(clock.now)
    limiter.acquire(clock.now)
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now)


def test_a_request_still_out_counts_in_every_second_it_could_reach() -> None:
    clock = Clock()
    limiter = GlobalLimiter(2, 1.0, clock=clock)
    pinned = limiter.acquire(clock.now)
    clock.now += 0.1
    limiter.release(pinned, date=math.floor(1000.05 + THETA))
    clock.now = 1001.2
    straggler = limiter.acquire(clock.now)  # out, and it may stay out for long
    limiter.acquire(clock.now)
    clock.now = 1003.2  # Discord's seconds have moved on, wherever in 0.35 s they begin
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now)  # both could still land in this second
    limiter.release(straggler, date=math.floor(1002.6 + THETA))  # it was counted in the last one
    limiter.acquire(clock.now)


def test_a_date_that_contradicts_the_others_falls_back_to_the_latency_proof_rule() -> None:
    clock = Clock()
    limiter = GlobalLimiter(2, 1.0, clock=clock)
    first, second = limiter.acquire(clock.now), limiter.acquire(clock.now)
    clock.now += 0.1
    limiter.release(first, date=math.floor(1000.05 + THETA))
    limiter.release(second, date=math.floor(1000.05 + THETA) + 5)  # Discord's clock jumped 5 s
    clock.now = 1000.9
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now)  # no known offset: both slots free one period after their replies
    clock.now = 1001.1
    limiter.acquire(clock.now)


def _simulate(
    seed: int,
    *,
    limit: int,
    period: float,
    leg: Callable[[random.Random], float],
    dates: bool,
    give_ups: float = 0.02,
    seconds: float = 12.0,
) -> tuple[list[float], float]:
    """A busy client against Discord: returns when each request was counted, on Discord's clock.

    Discord's clock is ours plus a random offset; its ``Date`` is stamped at some instant between
    counting the request and the reply leaving (or missing when ``dates`` is false). A share
    ``give_ups`` of requests is given up on before its reply, having reached Discord at any moment up
    to one period later.
    """
    rng = random.Random(seed)
    clock = Clock()
    theta = rng.uniform(0, 10_000)
    limiter = GlobalLimiter(limit, period, clock=clock)
    counted: list[float] = []
    replies: list[tuple[float, int, GlobalTicket, float | None, bool]] = []  # heap
    number = 0
    start = clock.now
    while clock.now < start + seconds:
        while replies and replies[0][0] <= clock.now:
            _, _, ticket, date, gave_up = heapq.heappop(replies)
            limiter.release(ticket, date=date, unanswered=gave_up)
        if len(replies) < 4 * limit:  # a pool of threads, not infinitely many
            try:
                ticket = limiter.acquire(deadline=clock.now)
            except TimeoutError:
                ticket = None
            if ticket is not None:
                number += 1
                if rng.random() < give_ups:
                    give_up = clock.now + 0.35
                    counted.append(rng.uniform(clock.now, give_up + period * 0.999) + theta)
                    heapq.heappush(replies, (give_up, number, ticket, None, True))
                    continue
                arrival = clock.now + leg(rng)
                back = leg(rng)
                stamp = arrival + rng.uniform(0, back)
                date = float(math.floor(stamp + theta)) if dates else None
                counted.append(arrival + theta)
                heapq.heappush(replies, (arrival + back, number, ticket, date, False))
                continue
        clock.now = min(clock.now + 0.002, replies[0][0]) if replies else clock.now + 0.002
    return sorted(counted), theta


def _round_trip_100ms_with_jitter(rng: random.Random) -> float:
    return 0.05 + rng.uniform(-0.01, 0.01)


def _skewed(rng: random.Random) -> float:
    """Sometimes instant, sometimes slow: legs of one trip rarely match."""
    return rng.choice((0.0, 0.001, rng.uniform(0, 0.3)))


@pytest.mark.parametrize("leg", [_round_trip_100ms_with_jitter, _skewed], ids=["100ms-jitter", "skewed"])
@pytest.mark.parametrize("period", [1.0, 0.5], ids=["1s", "half-second"])
@pytest.mark.parametrize("seed", range(2))
def test_no_window_on_discords_clock_ever_sees_more_than_the_limit_whatever_the_latency(
    seed: int, period: float, leg: Callable[[random.Random], float]
) -> None:
    """Simulate a busy client with random latencies against Discord's clock-aligned windows (the
    half-second ones, finer than the Date header, are how tests shrink the limit)."""
    limit = 5
    counted, _ = _simulate(seed, limit=limit, period=period, leg=leg, dates=True)
    assert len(counted) > 40, "the simulation should have kept the limiter busy"
    per_window = Counter(math.floor(moment / period) for moment in counted)
    crowded = {window: n for window, n in per_window.items() if n > limit}
    assert not crowded, f"Discord windows that saw more than {limit}: {crowded}"


@pytest.mark.parametrize("seed", range(3))
def test_at_a_100ms_round_trip_every_one_of_discords_seconds_is_used_in_full(seed: int) -> None:
    limit = 5
    counted, _ = _simulate(
        seed, limit=limit, period=1.0, leg=_round_trip_100ms_with_jitter, dates=True, give_ups=0.0
    )
    per_second = Counter(math.floor(moment) for moment in counted)
    whole = range(min(per_second) + 1, max(per_second))
    used = sum(per_second[second] for second in whole) / (len(whole) * limit)
    # The latency-proof rule alone would use 1 / 1.1 = 0.91 of them at best.
    assert used >= 0.99, f"only {used:.3f} of Discord's seconds were used"


@pytest.mark.parametrize("seed", range(3))
def test_without_dates_no_window_of_one_period_ever_sees_more_than_the_limit_whatever_the_latency(
    seed: int,
) -> None:
    """With no Date to go by, the latency-proof rule holds under sliding windows too."""
    limit, period = 5, 1.0
    counted, _ = _simulate(seed, limit=limit, period=period, leg=_skewed, dates=False)
    assert len(counted) > 40, "the simulation should have kept the limiter busy"
    for index, first in enumerate(counted):
        in_window = sum(1 for moment in counted[index:] if moment < first + period)
        assert in_window <= limit, f"{in_window} requests reached Discord within {period}s of {first}"


@pytest.mark.parametrize(("limit", "gap"), [(5, 0.5), (1_000_000, 0.01)])
def test_a_client_that_never_fills_the_global_limit_does_not_keep_every_ticket(
    limit: int, gap: float
) -> None:
    """Whatever the limit (a large bot's is raised, and a test's may be huge), only the last few
    seconds' tickets are kept: the rule reads no older ones."""
    clock = Clock()
    limiter = GlobalLimiter(limit, 1.0, clock=clock)
    for _ in range(20_000):
        limiter.release(limiter.acquire(clock.now), date=math.floor(clock.now + THETA))
        clock.now += gap
    remembered = len(limiter._tickets)
    # Forgotten every RETAIN seconds, keeping what was answered in the last RETAIN + period.
    seconds = 2 * GlobalLimiter.RETAIN + limiter.period
    most = min(4 * limit, seconds / gap) + 1
    assert remembered <= most, (
        f"{remembered} tickets kept for a client sending one every {gap} s under a limit of {limit}: "
        f"more than the last {seconds} s of them"
    )
