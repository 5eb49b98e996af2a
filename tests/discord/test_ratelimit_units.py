"""The bucket and global-limit bookkeeping, on a clock the test moves by hand."""

from __future__ import annotations

import pytest

from flask_discord_roles.discord.ratelimit import Bucket, BucketManager, GlobalLimiter, RateLimitHeaders


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(remaining: int, reset_after: float, limit: int = 5, bucket: str = "abc") -> RateLimitHeaders:
    return RateLimitHeaders(bucket=bucket, limit=limit, remaining=remaining, reset_after=reset_after)


def test_unknown_bucket_lets_one_request_out_until_a_reply_names_its_limits() -> None:
    clock = Clock()
    bucket = Bucket(clock)
    assert bucket.acquire(deadline=clock.now + 10)
    with pytest.raises(TimeoutError):
        bucket.acquire(deadline=clock.now)  # a second probe must wait
    bucket.release(headers(remaining=4, reset_after=1.0))
    assert bucket.known
    for _ in range(4):
        assert bucket.acquire(deadline=clock.now)
    with pytest.raises(TimeoutError):
        bucket.acquire(deadline=clock.now)


def test_replies_only_lower_what_is_left_and_the_window_refills_after_reset() -> None:
    clock = Clock()
    bucket = Bucket(clock)
    bucket.acquire(clock.now + 1)
    bucket.release(headers(remaining=4, reset_after=1.0))
    bucket.acquire(clock.now)
    bucket.acquire(clock.now)  # two in flight: 2 left locally
    bucket.release(headers(remaining=3, reset_after=0.9))  # a reply that does not know the second one yet
    assert bucket.remaining == 2, "a reply must never raise what we counted ourselves"
    clock.now += 1.01
    assert bucket.acquire(clock.now)
    assert bucket.remaining == 4, "after the reset the bucket is full again (minus this request)"


def test_a_late_reply_from_the_previous_window_is_ignored() -> None:
    clock = Clock()
    bucket = Bucket(clock)
    bucket.acquire(clock.now + 1)
    bucket.release(headers(remaining=4, reset_after=1.0))
    for _ in range(4):
        bucket.acquire(clock.now)
    clock.now += 1.05  # our window ends; Discord's already did
    assert bucket.acquire(clock.now)  # the new window's first request
    bucket.release(headers(remaining=0, reset_after=0.01))  # a straggler from the old window
    assert bucket.remaining == 4, "a stale reply must not empty (and soon over-fill) the new window"


def test_routes_sharing_a_bucket_hash_share_one_bucket_per_major_parameter() -> None:
    clock = Clock()
    manager = BucketManager(clock)
    provisional = manager.bucket_for("PUT /a", ("1",))
    provisional.acquire(clock.now + 1)
    manager.learn_hash("PUT /a", ("1",), headers(4, 1.0, bucket="shared"))
    assert provisional.moved, "waiters on the provisional bucket must look again"
    manager.learn_hash("DELETE /a", ("1",), headers(3, 1.0, bucket="shared"))
    assert manager.bucket_for("PUT /a", ("1",)) is manager.bucket_for("DELETE /a", ("1",))
    assert manager.bucket_for("PUT /a", ("1",)) is not manager.bucket_for("PUT /a", ("2",))


def test_global_slots_free_one_period_after_the_reply_not_after_sending() -> None:
    clock = Clock()
    limiter = GlobalLimiter(2, 1.0, clock=clock)
    limiter.acquire(clock.now)
    limiter.acquire(clock.now)
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now)
    clock.now += 0.5
    limiter.release()  # replied at t+0.5: frees at t+1.5
    clock.now += 0.6
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now)
    clock.now += 0.41
    limiter.acquire(clock.now)


def test_a_global_429_pauses_everyone() -> None:
    clock = Clock()
    limiter = GlobalLimiter(10, 1.0, clock=clock)
    limiter.pause(2.0)
    with pytest.raises(TimeoutError):
        limiter.acquire(clock.now + 1.0)
    clock.now += 2.0
    limiter.acquire(clock.now)
