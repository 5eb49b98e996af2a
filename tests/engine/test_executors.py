"""Each executor delivers an order after commit; the worker command runs once or until told to stop."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import deliveries
from flask_discord_roles._engine.executors import ThreadExecutor
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from tests.shop import FAST_QUEUE, open_shop

# Committed rows wait for the worker command, as they would behind a web process.
pytestmark = pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="worker")


def _wait_for(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("mode", ["automatic", "claim"])
@pytest.mark.parametrize("executor", ["inline", "thread", "worker"])
def test_every_executor_delivers_a_paid_order(
    make_app: Any, database_url: str, fake_discord: FakeDiscord, executor: str, mode: str
) -> None:
    from flask_discord_roles._engine.worker import Worker

    config = {**FAST_QUEUE, "DISCORD_ROLES_EXECUTOR": executor}
    app, db, _ = make_app(database_url, DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url, **config)
    with app.app_context():
        db.create_all()
        try:
            shop = open_shop(app, db, fake_discord)
            shop.settings(delivery_mode=mode)
            shop.map("vip", "VIP")
            buyer = shop.member("alice")
            shop.buy("order-1", "vip", buyer=buyer)
            if mode == "claim":
                (row,) = shop.deliveries()
                assert row.next_attempt_at is None, "claim mode waits for the customer"
                assert shop.roles_of(buyer) == set()
                deliveries.claim(shop.store_id, guild_id=shop.guild_id, discord_user_id=buyer)  # /claim
                db.session.commit()
            if executor == "worker":
                assert shop.roles_of(buyer) == set(), "with the worker executor the web process sends nothing"
                Worker(app).run(once=True)
            assert _wait_for(lambda: shop.roles_of(buyer) == {"VIP"}), f"{executor}: role never arrived"
            assert _wait_for(lambda: shop.statuses() == [("add", "completed", None)]), shop.statuses()
        finally:
            get_state(app).executor.shutdown()
            db.session.remove()
            db.engine.dispose()


def test_the_thread_executor_starts_lazily_and_again_in_a_forked_child(app: Flask) -> None:
    executor = ThreadExecutor(get_state(app).settings)
    assert "running=False" in repr(executor), "nothing starts before it is needed"
    try:
        executor.ensure_started(app)
        first, first_stop = executor._thread, executor._stop
        assert first is not None, "ensure_started starts the loop"
        assert first.is_alive()
        executor.ensure_started(app)
        assert executor._thread is first, "one loop per process"

        executor._pid = os.getpid() + 1  # what a gunicorn worker sees after fork: not its parent's pid
        executor.ensure_started(app)
        assert executor._thread is not first, "a forked child starts its own loop"
    finally:
        executor.shutdown()
        # A real fork leaves the parent's thread behind in the parent; here it shares our process.
        first_stop.set()
        first.join(timeout=10)
        assert not first.is_alive(), "the first loop stops when told to"


def test_the_worker_command_runs_once_and_reports_what_it_did(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    buyers = [shop.member(f"user{n}") for n in range(3)]
    for n, buyer in enumerate(buyers):
        shop.buy(f"order-{n}", "vip", buyer=buyer)
    shop.buy("order-x", "vip", buyer=shop.fake.create_user("stranger").id)

    with caplog.at_level(logging.INFO, logger="flask_discord_roles"):
        result = app.test_cli_runner().invoke(args=["discord-roles", "worker", "--once", "-c", "2"])

    assert result.exit_code == 0, result.output
    assert "3 completed, 0 retried, 1 failed" in result.output, result.output
    batch_lines = [r.getMessage() for r in caplog.records if "batch:" in r.getMessage()]
    assert batch_lines, "one log line per batch"
    assert "3 done, 0 retried, 1 failed" in batch_lines[0]
    assert "queue depth 0" in batch_lines[-1]
    assert all(shop.roles_of(buyer) == {"VIP"} for buyer in buyers)
