"""`flask discord-roles worker` stops cleanly on SIGTERM: calls in flight finish, claimed rows go back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._engine.worker import Worker
from flask_discord_roles.testing import FakeDiscord
from tests.shop import open_shop
from tests.worker_host import worker_environment

pytestmark = [pytest.mark.serial, pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="worker")]


def test_sigterm_finishes_calls_in_flight_and_hands_back_the_rest(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, database_url: str
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    buyers = [shop.member(f"user{n}") for n in range(30)]
    for n, buyer in enumerate(buyers):
        shop.buy(f"order-{n}", "vip", buyer=buyer, customer=f"c{n}")
    # One guild: lift its member and role buckets (10 per 10 s each) so only the SIGTERM is under test.
    fake_discord.set_route_limit("member_role", 1000, 1.0)
    fake_discord.set_route_limit("guild_member", 1000, 1.0)
    fake_discord.set_faults(slow_seconds=0.2)  # slow enough that SIGTERM finds work in flight

    env = {
        **os.environ,
        **worker_environment(
            database_url, fake_discord.api_base_url, app.config["DISCORD_ROLES_ENCRYPTION_KEYS"]
        ),
    }
    command = [
        sys.executable,
        "-m",
        "flask",
        "--app",
        "tests.worker_host:create_app",
        "discord-roles",
        "worker",
    ]
    worker = subprocess.Popen(
        [*command, "-c", "2", "--batch-size", "2"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not any(row.status == "completed" for row in shop.deliveries()):
            assert time.monotonic() < deadline, "the worker never completed a delivery"
            assert worker.poll() is None, f"the worker died: {worker.stderr.read() if worker.stderr else ''}"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert worker.returncode == 0, f"a SIGTERM'd worker exits cleanly; stderr:\n{stderr}"
    assert "SIGTERM received" in stderr, stderr
    rows = shop.deliveries()
    leased = [row.id for row in rows if row.leased_by is not None]
    assert leased == [], f"rows still leased by the stopped worker: {leased}\n{stderr}"
    statuses = {row.status for row in rows}
    assert statuses <= {"completed", "pending"}, f"nothing may fail on shutdown: {shop.statuses()}"
    assert "pending" in statuses, "the test meant to stop the worker with work left"

    fake_discord.set_faults(slow_seconds=0.0)
    # Until nothing is scheduled: on a busy machine a call may still be rescheduled for a rate limit.
    worker = Worker(app, poll_interval=0.05)
    deadline = time.monotonic() + 30
    try:
        while any(row.next_attempt_at is not None for row in shop.deliveries(status="pending")):
            assert time.monotonic() < deadline, f"the next worker never finished: {shop.statuses()}"
            worker.run_pass()
            time.sleep(0.05)
    finally:
        worker.drainer.close()
    missing = [buyer for buyer in buyers if shop.roles_of(buyer) != {"VIP"}]
    assert missing == [], f"the next worker delivers the rest: {shop.statuses()}"
