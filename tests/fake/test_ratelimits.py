"""Rate-limit headers, 429s and injected faults look and behave like Discord's."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import pytest
import requests

from flask_discord_roles.testing.ratelimits import bucket_hash
from tests.fake.helpers import Store

RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Bucket",
)


def test_every_bot_response_carries_bucket_headers(store: Store) -> None:
    store.fake.set_route_limit("member_role", 3, 5.0)
    ok = store.api.put(store.role_url())
    error = store.api.put(store.role_url("123456789012345678"))
    for response in (ok, error):
        assert all(name in response.headers for name in RATE_LIMIT_HEADERS)
        assert response.headers["X-RateLimit-Bucket"] == bucket_hash("member_role")
        assert response.headers["X-RateLimit-Limit"] == "3"
    assert ok.headers["X-RateLimit-Remaining"] == "2"
    assert error.headers["X-RateLimit-Remaining"] == "1"
    reset_after = float(ok.headers["X-RateLimit-Reset-After"])
    assert 4.5 < reset_after <= 5.0
    assert len(ok.headers["X-RateLimit-Reset-After"].split(".")[1]) == 3
    assert abs(float(ok.headers["X-RateLimit-Reset"]) - (time.time() + reset_after)) < 1.0


def test_exhausted_bucket_answers_429_and_applies_nothing(store: Store) -> None:
    store.fake.set_route_limit("member_role", 2, 0.4)
    assert store.api.put(store.role_url()).status_code == 204
    assert store.api.delete(store.role_url()).status_code == 204
    limited = store.api.put(store.role_url())
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Scope"] == "user"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Global" not in limited.headers
    assert int(limited.headers["Retry-After"]) == 1
    body = limited.json()
    assert body["message"] == "You are being rate limited."
    assert body["global"] is False
    assert 0 < body["retry_after"] <= 0.4
    assert store.fake.member_roles(store.guild.id, store.buyer.id) == set()
    [hit] = store.fake.rate_limit_hits
    assert (hit.scope, hit.bucket, hit.major) == ("user", bucket_hash("member_role"), store.guild.id)
    time.sleep(body["retry_after"] + 0.05)
    assert store.api.put(store.role_url()).status_code == 204
    assert store.fake.stats()["by_status"] == {204: 3, 429: 1}
    assert store.fake.invalid_requests == 1


def test_buckets_are_per_guild(store: Store) -> None:
    store.fake.set_route_limit("member_role", 1, 5.0)
    second = store.fake.create_guild("Second shop")
    role = store.fake.create_role(second.id, "VIP")
    store.fake.add_bot_to_guild(store.bot, second.id)
    store.fake.add_member(second.id, store.buyer.id)
    assert store.api.put(store.role_url()).status_code == 204
    other_url = store.url(f"/guilds/{second.id}/members/{store.buyer.id}/roles/{role.id}")
    assert store.api.put(other_url).status_code == 204
    assert store.api.put(store.role_url()).status_code == 429
    assert store.api.put(other_url).status_code == 429


def test_buckets_are_per_token(store: Store, session_factory: Callable[..., requests.Session]) -> None:
    store.fake.set_route_limit("guild", 1, 5.0)
    other = store.fake.create_bot("Other")
    store.fake.add_bot_to_guild(other, store.guild.id)
    other_api = session_factory(f"Bot {other.token}")
    url = store.url(f"/guilds/{store.guild.id}")
    assert store.api.get(url).status_code == 200
    assert other_api.get(url).status_code == 200
    assert store.api.get(url).status_code == 429


def _wait_for_next_window(length: float) -> None:
    """Sleep until just after the fake's clock starts a new global window (they are clock-aligned)."""
    now = time.time()
    time.sleep(math.floor(now / length + 1) * length - now + 0.01)


def test_global_limit_per_bot(store: Store) -> None:
    store.fake.set_global_limit(3, 0.3)
    url = store.url(f"/guilds/{store.guild.id}/roles")
    _wait_for_next_window(0.3)
    assert [store.api.get(url).status_code for _ in range(3)] == [200, 200, 200]
    limited = store.api.get(url)
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Global"] == "true"
    assert limited.headers["X-RateLimit-Scope"] == "global"
    assert limited.json()["global"] is True
    assert store.fake.rate_limit_hits[-1].scope == "global"
    time.sleep(limited.json()["retry_after"] + 0.05)
    assert store.api.get(url).status_code == 200
    store.fake.set_global_limit(None)
    assert all(store.api.get(url).status_code == 200 for _ in range(6))


def _statuses(store: Store, seed: int) -> list[int]:
    store.fake.set_faults(error_rate=0.3, rate_limit_rate=0.2, seed=seed)
    url = store.url(f"/guilds/{store.guild.id}")
    return [store.api.get(url).status_code for _ in range(20)]


def test_faults_are_deterministic_with_a_seed(store: Store) -> None:
    store.fake.set_route_limit("guild", 100, 10.0)
    first = _statuses(store, seed=7)
    assert first == _statuses(store, seed=7)
    assert {200, 429} <= set(first)
    assert set(first) & {500, 502, 503}
    shared = [c for c in store.fake.calls if c.rate_limit_scope == "shared"]
    assert shared
    assert all(c.status == 429 for c in shared)


def test_error_faults_apply_nothing_and_count_toward_the_bucket(store: Store) -> None:
    store.fake.set_route_limit("member_role", 5, 5.0)
    store.fake.set_faults(error_rate=1.0, seed=1)
    response = store.api.put(store.role_url())
    assert response.status_code in (500, 502, 503)
    assert response.headers["X-RateLimit-Remaining"] == "4"
    assert store.fake.member_roles(store.guild.id, store.buyer.id) == set()
    store.fake.set_faults(rate_limit_rate=1.0, rate_limit_retry_after=0.25)
    shared = store.api.put(store.role_url())
    assert shared.status_code == 429
    assert shared.headers["X-RateLimit-Scope"] == "shared"
    assert shared.json() == {
        "message": "You are being rate limited.",
        "retry_after": 0.25,
        "global": False,
    }
    assert store.fake.invalid_requests == 0  # shared 429s do not count against the IP


def test_bad_gateway_is_cloudflare_html(store: Store) -> None:
    for seed in range(50):
        store.fake.set_faults(error_rate=1.0, seed=seed)
        response = store.api.get(store.url("/users/@me"))
        if response.status_code == 502:
            assert response.headers["Content-Type"].startswith("text/html")
            return
    pytest.fail("no 502 drawn")


def test_timeouts_hang_then_apply(store: Store) -> None:
    store.fake.set_faults(timeout_rate=1.0, timeout_seconds=0.5, routes=["member_role"])
    with pytest.raises(requests.exceptions.ReadTimeout):
        store.api.put(store.role_url(), timeout=0.1)
    deadline = time.monotonic() + 3
    while not store.fake.calls_to("PUT", "/roles/") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.fake.member_roles(store.guild.id, store.buyer.id) == {store.role.id}
    assert store.api.get(store.url("/users/@me"), timeout=0.4).status_code == 200


def test_slow_seconds_delays_every_request(store: Store) -> None:
    store.fake.set_faults(slow_seconds=0.2)
    started = time.monotonic()
    assert store.api.get(store.url("/users/@me")).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_global_windows_are_seconds_of_the_fakes_clock_not_opened_by_the_first_request(
    store: Store,
) -> None:
    store.fake.set_global_limit(2, 0.5)
    url = store.url("/users/@me")
    _wait_for_next_window(0.5)
    time.sleep(0.3)  # well into a window: it still closes at its clock boundary, not 0.5 s from now
    assert [store.api.get(url).status_code for _ in range(3)] == [200, 200, 429]
    retry_after = store.api.get(url).json()["retry_after"]
    assert retry_after < 0.25, f"the window should end at the next half second, not in {retry_after}s"
    windows = {math.floor(call.discord_time / 0.5) for call in store.fake.calls}
    assert len(windows) == 1, "all four requests fell in one clock-aligned window"


def test_every_answer_carries_one_date_header_stamped_when_the_request_was_counted(store: Store) -> None:
    store.fake.set_latency(0.2)
    answers = [store.api.get(store.url("/users/@me")), store.api.put(store.role_url())]
    for answer, call in zip(answers, store.fake.calls, strict=True):
        assert answer.raw.headers.getlist("Date") == [answer.headers["Date"]], "exactly one Date"
        assert answer.headers["Date"].endswith(" GMT")
        stamped = parsedate_to_datetime(answer.headers["Date"]).timestamp()
        assert stamped == math.floor(call.discord_time), "Date is the second the request was counted in"


def test_latency_delays_both_legs_and_each_request_travels_on_its_own(store: Store) -> None:
    store.fake.set_latency(0.3, jitter=0.1, seed=4)
    store.fake.set_route_limit("users_me", 100, 5.0)
    url = store.url("/users/@me")
    sent: dict[int, float] = {}
    answered: dict[int, float] = {}
    lock = threading.Lock()

    def call(number: int) -> int:
        session = requests.Session()
        session.headers["Authorization"] = store.api.headers["Authorization"]
        with lock:
            sent[number] = time.monotonic()
        status = session.get(url, headers={"User-Agent": f"n{number}"}).status_code
        with lock:
            answered[number] = time.monotonic()
        session.close()
        return status

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(call, range(8))) == [200] * 8
    for recorded in store.fake.calls:
        number = int(recorded.headers["User-Agent"][1:])
        inbound, outbound = recorded.time - sent[number], answered[number] - recorded.time
        assert inbound >= 0.1, f"request {number} was seen {inbound:.3f}s after it left (>= 0.15 - 0.05)"
        assert outbound >= 0.1, f"answer {number} came back {outbound:.3f}s after it was counted"
    arrivals = sorted(recorded.time for recorded in store.fake.calls)
    assert arrivals[-1] - arrivals[0] < 0.3, "eight requests at once must travel side by side"
