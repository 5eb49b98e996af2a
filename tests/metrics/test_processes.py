"""Metrics across processes: the host app under gunicorn with two workers sharing PROMETHEUS_MULTIPROC_DIR
answers every scrape with the same totals, whichever worker serves it; `flask discord-roles worker
--metrics-port` serves /metrics and /healthz; and the health check's verdicts."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._metrics.worker_server import WorkerHealth, stale_after
from flask_discord_roles.testing import FakeDiscord
from tests.metrics.conftest import Scrape
from tests.shop import open_shop
from tests.worker_host import worker_environment

pytestmark = pytest.mark.serial  # subprocess start-up
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextmanager
def _running(
    command: list[str], env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    """The process, and its stderr's lines as they come (read on a thread, so a wait never blocks)."""
    process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield process, lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        assert process.stderr is not None
        process.stderr.close()


def _drain(lines: queue.Queue[str]) -> str:
    seen = []
    while not lines.empty():
        seen.append(lines.get())
    return "".join(seen)


def test_two_gunicorn_workers_report_the_same_aggregated_counts(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, database_url: str, tmp_path: Path
) -> None:
    shop = open_shop(app, db, fake_discord)
    member = shop.member("ann")
    shared = tmp_path / "prometheus"
    shared.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        **worker_environment(
            database_url,
            fake_discord.api_base_url,
            app.config["DISCORD_ROLES_ENCRYPTION_KEYS"],
            DISCORD_ROLES_METRICS_PATH="/metrics",
        ),
    }
    command = [
        sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}", "tests.worker_host:create_app()",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with _running(command, env) as (server, lines):
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, f"gunicorn died:\n{_drain(lines)}"
            assert time.monotonic() < deadline, f"gunicorn never answered:\n{_drain(lines)}"
            try:
                if _get(f"{base}/metrics", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)

        url = f"{base}/webhook/discord/interactions/store-1"

        def send(n: int) -> int:
            if n % 4 == 0:
                payload = fake_discord.command_payload(shop.bot, shop.guild_id, member, "help")
            else:
                payload = fake_discord.ping_payload(shop.bot)
            return fake_discord.send_interaction(url, shop.bot, payload).status_code

        # Concurrent requests, so both sync workers (one request at a time each) take some; until the
        # shared directory holds the interaction histograms of two processes.
        sent = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(10):
                statuses = list(pool.map(send, range(sent, sent + 16)))
                assert statuses == [200] * len(statuses), statuses
                sent += len(statuses)
                writers = {path.name for path in shared.glob("histogram_*.db")}
                if len(writers) >= 2:
                    break
        assert len(writers) >= 2, f"one worker answered every request: {writers}"

        totals = []
        for _ in range(6):  # each scrape may be served by either worker
            status, text = _get(f"{base}/metrics")
            assert status == 200, text
            totals.append(Scrape(text).value("discord_roles_interaction_latency_seconds_count"))
        assert totals == [sent] * 6, f"sent {sent} interactions; scrapes counted {totals}"
        assert Scrape(text).value("discord_roles_interaction_latency_seconds_count", kind="help") == sent // 4


@pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="worker")  # the worker delivers, not this process
def test_the_worker_serves_metrics_and_a_health_check(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, database_url: str
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **worker_environment(
            database_url, fake_discord.api_base_url, app.config["DISCORD_ROLES_ENCRYPTION_KEYS"]
        ),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable, "-m", "flask", "--app", "tests.worker_host:create_app", "discord-roles", "worker",
        "--metrics-port", "0", "--metrics-host", "127.0.0.1",
    ]  # fmt: skip
    with _running(command, env) as (worker, lines):
        deadline = time.monotonic() + 30
        seen = ""
        while "metrics on http://" not in seen:
            assert worker.poll() is None, f"the worker died:\n{seen}{_drain(lines)}"
            assert time.monotonic() < deadline, f"the worker never said where its metrics are:\n{seen}"
            try:
                seen += lines.get(timeout=0.5)
            except queue.Empty:
                continue
        base = seen.split("metrics on ", 1)[1].split("/metrics", 1)[0]

        status, body = _get(f"{base}/healthz")
        assert status == 200, body
        assert json.loads(body)["ok"] is True

        shop.buy("order-1", "vip", buyer=shop.member("ann"))
        while shop.roles_of(shop.deliveries()[0].discord_user_id) != {"VIP"}:
            assert time.monotonic() < deadline, f"the worker never delivered: {shop.statuses()}"
            time.sleep(0.05)
        # The role is at Discord a moment before the worker records the outcome: scrape until it has.
        while True:
            status, text = _get(f"{base}/metrics")
            assert status == 200, text
            scraped = Scrape(text)
            if scraped.value("discord_roles_delivery_outcomes_total", status="completed") == 1:
                break
            assert time.monotonic() < deadline, f"the worker's metrics never counted the delivery:\n{text}"
            time.sleep(0.05)
        assert scraped.value("discord_roles_database_up") == 1
        assert _get(f"{base}/nothing")[0] == 404


def test_the_health_check_fails_when_the_worker_stalls_or_the_database_is_gone(tmp_path: Path) -> None:
    now = [100.0]
    beat = [100.0]
    alive = sa.create_engine(f"sqlite:///{tmp_path / 'alive.sqlite'}")
    health = WorkerHealth(lambda: beat[0], alive, stale_after=15.0, clock=lambda: now[0])
    assert health.check() == (True, {"ok": True, "seconds_since_progress": 0.0})

    now[0] = 116.0
    healthy, body = health.check()
    assert (healthy, body["reason"]) == (False, "worker_stalled"), body
    beat[0] = 115.0  # a delivery finished
    assert health.check()[0] is True

    gone = sa.create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite'}")
    healthy, body = WorkerHealth(lambda: beat[0], gone, stale_after=15.0, clock=lambda: now[0]).check()
    assert (healthy, body["reason"]) == (False, "database_unreachable"), body
    assert "no-such-dir" not in body["message"], "no database URL in the answer"
    alive.dispose()


def test_a_worker_counts_as_stalled_after_three_polls_but_never_sooner_than_a_lease() -> None:
    assert stale_after(poll_interval=5.0, lease_seconds=12.0) == 15.0
    assert stale_after(poll_interval=0.1, lease_seconds=12.0) == 12.0
