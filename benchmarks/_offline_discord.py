"""The worker's host app with a Discord that answers inside its own process, for ``worker_memory.py``.

    flask --app benchmarks._offline_discord:create_app discord-roles worker --concurrency 8

The app is :func:`benchmarks._bench_host.create_app`'s (the same environment variables), and every HTTP
request the process sends through ``requests`` is answered here, at once, by :func:`answer`: no socket,
no server. FakeDiscord over HTTP would spend two requests' handling per delivery on the same two
cores that the worker and PostgreSQL already fill (a 100,000-delivery run takes half an hour as it
is). Everything of ours still runs as in production: the worker loop, the claims and leases, the
runner, the Discord client with its rate-limit buckets (each answer carries Discord's headers, a
bucket per route per guild) and the signals. The answers keep no state, so they add nothing that
grows to the process being measured.

Only the two calls a delivery makes are answered as Discord would: GET a member (holding no roles),
PUT a member's role (204). Anything else is a 404, so a change of the runner's calls shows up as failed
deliveries rather than as a quietly different measurement.

``BENCH_TRACEMALLOC`` (optional): a file path. Then the worker traces its allocations
(:mod:`tracemalloc`, one frame each) and writes a snapshot there on ``SIGUSR1``, for finding what grows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import tracemalloc
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from benchmarks._bench_host import create_app as create_host_app

TRACEMALLOC = "BENCH_TRACEMALLOC"

MEMBER = re.compile(r"/guilds/(\d+)/members/(\d+)$")
MEMBER_ROLE = re.compile(r"/guilds/(\d+)/members/(\d+)/roles/(\d+)$")


def answer(request: requests.PreparedRequest) -> requests.Response:
    """Discord's answer to ``request``, as FakeDiscord would give it with its limits far away."""
    path = urlsplit(request.url or "").path
    if request.method == "GET" and (found := MEMBER.search(path)):
        user_id = found.group(2)
        member = {
            "user": {"id": user_id, "username": f"member{user_id[-6:]}", "discriminator": "0"},
            "roles": [],
            "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
        return _response(request, 200, member, bucket="guild_member")
    if request.method == "PUT" and MEMBER_ROLE.search(path):
        return _response(request, 204, None, bucket="member_role")
    return _response(request, 404, {"message": "Unknown route", "code": 0}, bucket=None)


def _response(
    request: requests.PreparedRequest, status: int, body: Any, *, bucket: str | None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.request = request
    response.url = request.url or ""
    response.encoding = "utf-8"
    response._content = b"" if body is None else json.dumps(body).encode()
    headers: dict[str, str] = {"Content-Type": "application/json"} if body is not None else {}
    if bucket is not None:
        # A bucket per route and guild, far from empty: the client learns and keeps them as it would.
        headers.update(
            {
                "X-RateLimit-Bucket": bucket,
                "X-RateLimit-Limit": "10000",
                "X-RateLimit-Remaining": "9999",
                "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
                "X-RateLimit-Reset-After": "1.000",
            }
        )
    response.headers = CaseInsensitiveDict(headers)
    return response


def _send(
    self: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any
) -> requests.Response:
    return answer(request)


def _snapshot_on_signal(path: str) -> None:
    tracemalloc.start(1)  # one frame: enough to name the line, and the worker stays usable

    def dump(*_: object) -> None:
        tracemalloc.take_snapshot().dump(path)

    signal.signal(signal.SIGUSR1, dump)


def create_app() -> Flask:
    """The benchmark host's app, in a process whose HTTP requests :func:`answer` answers."""
    HTTPAdapter.send = _send  # type: ignore[method-assign]
    if os.environ.get(TRACEMALLOC):
        _snapshot_on_signal(os.environ[TRACEMALLOC])
    return create_host_app()
