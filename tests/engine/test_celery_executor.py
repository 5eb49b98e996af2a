"""The Celery executor: one task per commit, run by a real worker; beat's process_due finds lost rows.

The broker is the suite's Redis (``tests.services``: the one on 127.0.0.1:6379, else a throwaway one it
starts; ``DISCORD_ROLES_TEST_REDIS_URL`` to choose another); like PostgreSQL, these tests fail rather than
skip without it. Each test sends to
a queue of its own, so parallel runs never take each other's tasks.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import ConfigurationError, order_completed
from flask_discord_roles._engine.celery_tasks import celery_app_of
from flask_discord_roles._engine.executors import WorkerExecutor
from flask_discord_roles._runtime.executor import Work
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.celery import PROCESS_DUE, RUN_DELIVERIES, START_RECONCILE, register_tasks
from flask_discord_roles.testing import FakeDiscord
from tests.celery_host import celery_config, celery_environment
from tests.services import REDIS
from tests.shop import Shop, open_shop

REDIS_URL = REDIS.url
ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20.0  # for a task to be done, once the worker is up
STARTUP_DEADLINE = 60.0  # for `celery worker` to start: imports alone take seconds on a loaded machine


pytestmark = [pytest.mark.serial, pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="celery")]


@pytest.fixture
def broker(redis_client: redis.Redis) -> redis.Redis:
    return redis_client


@pytest.fixture
def queue(broker: redis.Redis) -> Iterator[str]:
    """A queue name for this test alone; its Redis keys are deleted afterwards."""
    name = f"discord-roles-test-{uuid.uuid4().hex[:12]}"
    yield name
    # The queue, and kombu's routing tables for the exchange Celery names after it.
    broker.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    broker.zrem("_kombu.binding_deadlines", name)


@pytest.fixture
def web_celery(app: Flask, queue: str) -> Iterator[Celery]:
    """The web process's Celery app, at app.extensions["celery"], sending to this test's queue."""
    celery_app = Celery("web", set_as_current=False)
    celery_app.conf.update(celery_config(REDIS_URL, queue))
    app.extensions["celery"] = celery_app
    yield celery_app
    celery_app.close()


def _wait_for(condition: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# -- no broker needed ----------------------------------------------------------------------------------


def test_without_a_celery_app_the_error_says_what_to_do() -> None:
    from flask_discord_roles._engine.celery_tasks import CeleryExecutor

    app = Flask("no_celery")
    with pytest.raises(ConfigurationError, match=r"app\.extensions\['celery'\].*register_tasks"):
        celery_app_of(app)
    with pytest.raises(ConfigurationError, match=r"app\.extensions\['celery'\]"):
        CeleryExecutor().submit(app, Work(delivery_ids={1}))


def test_registering_twice_registers_once_and_a_second_flask_app_is_refused() -> None:
    celery_app = Celery("registry", set_as_current=False)
    app = Flask("host_app")
    register_tasks(celery_app, app)
    register_tasks(celery_app, app)  # a duplicate would warn, and warnings are errors in this suite
    ours = sorted(name for name in celery_app.tasks if name.startswith("flask_discord_roles."))
    assert ours == [PROCESS_DUE, RUN_DELIVERIES, START_RECONCILE]
    with pytest.raises(ConfigurationError, match="its own Celery app"):
        register_tasks(celery_app, Flask("another_app"))
    other = Celery("other", set_as_current=False)
    assert RUN_DELIVERIES not in other.tasks, "our tasks are not shared with every Celery app"
    celery_app.close()
    other.close()


# -- eager mode ----------------------------------------------------------------------------------------


@pytest.fixture
def eager_celery(app: Flask) -> Iterator[Celery]:
    """A Celery app that runs our tasks in the committing thread, registered for ``app``."""
    celery_app = Celery("eager", set_as_current=False)
    celery_app.conf.update(task_always_eager=True, task_eager_propagates=True, broker_url="memory://")
    register_tasks(celery_app, app)
    app.extensions["celery"] = celery_app
    yield celery_app
    celery_app.close()


@pytest.mark.usefixtures("eager_celery")
def test_in_eager_mode_the_commit_delivers_the_role(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    buyer = shop.member("alice")
    order_completed.send(
        app, store_id="store-1", order_id="order-1", package_ids=["vip"], discord_user_id=buyer
    )
    assert shop.roles_of(buyer) == set(), "nothing may run before the host commits"
    db.session.commit()

    assert fake_discord.member_roles(shop.guild_id, buyer) == {shop.roles["VIP"]}, (
        "the eager run_deliveries task should have given the role during the commit"
    )
    assert shop.statuses() == [("add", "completed", None)]


def test_beat_starts_reconciling_and_process_due_repairs_a_role_removed_by_hand(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, eager_celery: Celery
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    buyer = shop.member("alice")
    shop.buy("order-1", "vip", buyer=buyer)
    with fake_discord.world.lock:
        fake_discord.world.member(shop.guild_id, buyer).roles.clear()  # a moderator's hand
    assert eager_celery.tasks[START_RECONCILE].apply().get() == {"runs": 0}, "mode off: skipped"
    shop.settings(reconcile_mode="repair")

    assert eager_celery.tasks[START_RECONCILE].apply().get() == {"runs": 1}
    eager_celery.tasks[PROCESS_DUE].apply()

    assert shop.roles_of(buyer) == {"VIP"}, "process_due stepped the run and ran its repair"


@pytest.mark.usefixtures("eager_celery")
def test_in_eager_mode_a_claim_is_delivered_and_its_deferred_answer_edited(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.settings(delivery_mode="claim")
    shop.map("vip", "VIP")
    buyer = shop.member("alice")
    shop.buy("order-1", "vip", buyer=buyer)
    payload = fake_discord.command_payload(shop.bot, shop.guild_id, buyer, "claim")

    answer = fake_discord.send_interaction(
        "/webhook/discord/interactions/store-1", shop.bot, payload, client=app.test_client()
    )

    assert answer.json()["type"] == 5, "the webhook defers; the task answers"
    assert shop.roles_of(buyer) == {"VIP"}
    responses = fake_discord.interaction_responses[payload["token"]]
    assert [(r["kind"], r["status"]) for r in responses] == [("initial", 200), ("edit_original", 200)], (
        "an eager task runs at once: the answer's edit must still wait until Discord has the deferral"
    )
    edits = [r for r in responses if r["kind"] == "edit_original"]
    assert "✅ **VIP**" in edits[0]["data"]["embeds"][0]["description"]


# -- the broker ----------------------------------------------------------------------------------------


def _queued_tasks(broker: redis.Redis, queue: str) -> list[tuple[str, dict[str, Any]]]:
    """(task name, kwargs) of every message waiting in ``queue`` (kombu's Redis layout, protocol 2)."""
    tasks = []
    for raw in broker.lrange(queue, 0, -1):
        message = json.loads(raw)
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _args, kwargs, _embed = json.loads(body)
        tasks.append((message["headers"]["task"], kwargs))
    return tasks


def test_a_rolled_back_order_sends_no_task_and_a_committed_one_sends_one(
    app: Flask,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    broker: redis.Redis,
    queue: str,
    web_celery: Celery,
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    shop.map("vip", "Supporter")
    buyer = shop.member("alice")
    order = {"store_id": "store-1", "order_id": "order-1", "package_ids": ["vip"], "discord_user_id": buyer}

    order_completed.send(app, **order)
    db.session.rollback()
    assert shop.deliveries() == []
    assert _queued_tasks(broker, queue) == [], "a rolled-back transaction must send no task"

    order_completed.send(app, **order)
    db.session.commit()
    ids = [row.id for row in shop.deliveries()]
    assert len(ids) == 2
    assert _queued_tasks(broker, queue) == [
        (RUN_DELIVERIES, {"delivery_ids": sorted(ids), "notification_ids": []})
    ], "one task per commit, naming the committed rows"


# -- a real worker -------------------------------------------------------------------------------------


class CeleryWorker:
    """``celery worker`` in a subprocess, its output in a file the failure messages quote."""

    def __init__(self, env: dict[str, str], queue: str, log_path: Path) -> None:
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.celery_host:celery_app",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=INFO",
        ]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def explain(self, what: str) -> str:
        state = "running" if self.process.poll() is None else f"exited with {self.process.returncode}"
        return f"{what}\n--- celery worker ({state}) output ---\n{self.log()}"

    def wait_until_ready(self, timeout: float) -> None:
        """Until Celery logs ``<node> ready.``: starting may take long on a busy machine; tasks must not."""
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            self.alive()
            assert time.monotonic() < deadline, self.explain(
                f"the celery worker was not ready in {timeout:g}s"
            )
            time.sleep(0.05)

    def alive(self) -> None:
        assert self.process.poll() is None, self.explain("the celery worker died")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (Celery's warm shutdown), then SIGKILL if it has not exited after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def celery_worker(
    app: Flask, database_url: str, fake_discord: FakeDiscord, queue: str, tmp_path: Path
) -> Iterator[CeleryWorker]:
    env = {
        **os.environ,
        **celery_environment(
            database_url,
            fake_discord.api_base_url,
            app.config["DISCORD_ROLES_ENCRYPTION_KEYS"],
            REDIS_URL,
            queue,
        ),
    }
    worker = CeleryWorker(env, queue, tmp_path / "celery-worker.log")
    try:
        worker.wait_until_ready(STARTUP_DEADLINE)
        yield worker
    finally:
        worker.stop()


def _wait_until_delivered(shop: Shop, worker: CeleryWorker, buyer: str, what: str) -> None:
    def delivered() -> bool:
        worker.alive()
        rows = shop.deliveries(discord_user_id=buyer)
        return bool(rows) and all(row.status == "completed" for row in rows)

    assert _wait_for(delivered), worker.explain(
        f"{what}: no completed delivery within {DEADLINE:g}s; rows: {shop.statuses()}"
    )
    assert shop.roles_of(buyer) == {"VIP"}, worker.explain(
        f"{what}: the row is completed but the fake guild says the buyer has {shop.roles_of(buyer)}"
    )


def test_a_celery_worker_delivers_committed_orders_and_process_due_finds_lost_ones(
    app: Flask,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    web_celery: Celery,
    celery_worker: CeleryWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    alice, bob = shop.member("alice"), shop.member("bob")

    shop.buy("order-1", "vip", buyer=alice)  # the commit sends run_deliveries
    _wait_until_delivered(shop, celery_worker, alice, "run_deliveries after commit")

    # A dispatch lost between commit and broker: the row is committed and due, but no task was sent.
    monkeypatch.setattr(get_state(app), "executor", WorkerExecutor())
    shop.buy("order-2", "vip", buyer=bob)
    (row,) = shop.deliveries(discord_user_id=bob)
    assert row.status == "pending"
    web_celery.send_task(PROCESS_DUE)  # what beat sends every 30 s
    _wait_until_delivered(shop, celery_worker, bob, "process_due after a lost dispatch")

    assert shop.statuses() == [("add", "completed", None)] * 2
    returncode = celery_worker.stop()
    assert returncode == 0, celery_worker.explain(f"a SIGTERM'd worker exits cleanly, not {returncode}")
    log = celery_worker.log()
    for task in (RUN_DELIVERIES, PROCESS_DUE):
        assert f"Task {task}[" in log, celery_worker.explain(f"the worker's log shows no {task} task")
    assert app.config["DISCORD_ROLES_ENCRYPTION_KEYS"][0] not in log, "the worker logged the key"
    assert shop.bot.token not in log, "the worker logged the bot token"
