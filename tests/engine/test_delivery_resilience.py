"""The queue under stress: Discord failing a third of the time, a worker killed mid-batch, four workers
draining the same rows. Every paid role ends up delivered, exactly once.

The shop here is one store whose bot is in many guilds; each guild sells its own VIP role as a package
and each buyer, a member of that guild, buys it once. Orders arrive through ``order_completed`` with the
host committing, and with ``DISCORD_ROLES_EXECUTOR = "worker"`` nothing runs at commit: only the workers
(in process, or ``flask discord-roles worker`` subprocesses) deliver.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import order_completed
from flask_discord_roles._core.bots import save_bot
from flask_discord_roles._engine.worker import Worker, WorkerTotals
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from tests.shop import FAST_QUEUE
from tests.worker_host import worker_environment

STORE = "store-1"
ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+$"
ROLE_PUT_PARTS = re.compile(r"/guilds/(\d+)/members/(\d+)/roles/(\d+)$")
REPO_ROOT = Path(__file__).resolve().parents[2]

HTTP_TIMEOUT = 0.5
"""Short, so an injected hang costs a thread half a second; the fake hangs a little longer than this."""

RESILIENCE_SETTINGS: dict[str, Any] = {
    **FAST_QUEUE,
    "DISCORD_ROLES_EXECUTOR": "worker",  # commits only write rows; the workers deliver
    "DISCORD_ROLES_HTTP_TIMEOUT": HTTP_TIMEOUT,
    "DISCORD_ROLES_RATE_LIMIT_WAIT": 0.5,
    "DISCORD_ROLES_LEASE_SECONDS": 10.0,  # >= 3 * (timeout + rate-limit wait); nobody is killed here
    # 30% faults per call and two calls per delivery: 20 attempts cannot all fail (p ~ 1e-8 per row).
    "DISCORD_ROLES_MAX_ATTEMPTS": 20,
    # The fake's limits are raised below; the client's own global limiter must not be the bottleneck.
    "DISCORD_ROLES_GLOBAL_RATE_LIMIT": 100_000,
    # A pool, as a real host has: with conftest's NullPool every runner transaction would cost PostgreSQL
    # a new backend process, and that, not the queue, would set the pace. Disposed at teardown.
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 20, "max_overflow": 20},
}

PATIENCE = 120.0
"""Seconds before a wait gives up. A net for a hung run on a loaded CI machine, not a timing assertion:
on an idle machine each wait below is over in a few seconds to half a minute."""

LIFTED_LIMIT = (100_000, 1.0)
"""Route and global limits high enough that Discord's real ones do not set the pace of these tests."""


pytestmark = [pytest.mark.serial, pytest.mark.app_settings(RESILIENCE_SETTINGS)]


# -- the shop ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purchase:
    """One paid order of one package that grants one role in one guild."""

    order_id: str
    customer_id: str
    package_id: str
    guild_id: str
    user_id: str
    role_id: str


def open_guilds(
    app: Flask, db: SQLAlchemy, fake: FakeDiscord, *, guilds: int, buyers_per_guild: int
) -> list[Purchase]:
    """A store whose bot is in ``guilds`` guilds, each selling a VIP role, and the orders to come.

    Every buyer is a member of their guild. The purchases are interleaved guild after guild, as a stream
    of checkouts would be. The fake's rate limits are lifted (its injected faults are set by each test).
    """
    state = get_state(app)
    bot = fake.create_bot("Shop Bot")
    save_bot(state, STORE, application_id=bot.application_id, public_key=bot.public_key, bot_token=bot.token)
    db.session.commit()
    mappings: list[dict[str, Any]] = []
    by_guild: list[list[Purchase]] = []
    for number in range(guilds):
        guild = fake.create_guild(f"Guild {number}")
        fake.add_bot_to_guild(bot, guild.id)
        role = fake.create_role(guild.id, f"VIP {number}")
        package = f"vip-{number}"
        mappings.append(
            {
                "store_id": STORE,
                "package_id": package,
                "guild_id": guild.id,
                "role_id": role.id,
                "role_name": role.name,
            }
        )
        purchases = []
        for index in range(buyers_per_guild):
            user = fake.create_user(f"buyer-{number}-{index}")
            fake.add_member(guild.id, user.id)
            purchases.append(
                Purchase(
                    f"order-{number}-{index}",
                    f"customer-{number}-{index}",
                    package,
                    guild.id,
                    user.id,
                    role.id,
                )
            )
        by_guild.append(purchases)
    # Every server is linked to the store, as one must be before its roles can be mapped.
    links = [{"store_id": STORE, "guild_id": mapping["guild_id"]} for mapping in mappings]
    db.session.execute(sa.insert(state.models.LinkedGuild), links)
    db.session.execute(sa.insert(state.models.RoleMapping), mappings)
    db.session.commit()
    fake.set_global_limit(*LIFTED_LIMIT)
    for family in ("member_role", "guild_member"):
        fake.set_route_limit(family, *LIFTED_LIMIT)
    fake.clear_calls()
    return [purchase for round_ in zip(*by_guild, strict=True) for purchase in round_]


def check_out(app: Flask, db: SQLAlchemy, purchases: list[Purchase], *, per_commit: int = 100) -> None:
    """The host's checkouts: ``order_completed`` in its transaction, one commit per ``per_commit`` orders."""
    for start in range(0, len(purchases), per_commit):
        for purchase in purchases[start : start + per_commit]:
            order_completed.send(
                app,
                store_id=STORE,
                order_id=purchase.order_id,
                customer_id=purchase.customer_id,
                package_ids=[purchase.package_id],
                discord_user_id=purchase.user_id,
            )
        db.session.commit()


# -- reading the queue ------------------------------------------------------------------------------------


def delivery_rows(app: Flask) -> list[Any]:
    """Every delivery row, read on a connection of its own (no transaction left open on SQLite)."""
    state = get_state(app)
    delivery = state.models.Delivery
    with state.db.engine.connect() as connection:
        columns = (
            delivery.id,
            delivery.order_id,
            delivery.guild_id,
            delivery.role_id,
            delivery.discord_user_id,
            delivery.status,
            delivery.reason_code,
            delivery.reason,
            delivery.attempts,
            delivery.leased_by,
            delivery.lease_expires_at,
            delivery.role_was_present,
        )
        return list(connection.execute(sa.select(*columns).order_by(delivery.id)))


def queue_counts(app: Flask) -> Counter[str]:
    """Rows per status, plus ``leased``: pending rows some runner holds right now."""
    state = get_state(app)
    delivery = state.models.Delivery
    with state.db.engine.connect() as connection:
        counts: Counter[str] = Counter(
            dict(
                connection.execute(
                    sa.select(delivery.status, sa.func.count()).group_by(delivery.status)
                ).all()
            )
        )
        counts["leased"] = int(
            connection.scalar(
                sa.select(sa.func.count())
                .select_from(delivery)
                .where(delivery.status == "pending", delivery.leased_by.is_not(None))
            )
            or 0
        )
    return counts


def describe(rows: list[Any], limit: int = 5) -> str:
    shown = [
        f"  id={row.id} order={row.order_id} guild={row.guild_id} user={row.discord_user_id} "
        f"status={row.status} reason_code={row.reason_code} attempts={row.attempts} "
        f"leased_by={row.leased_by} reason={row.reason!r}"
        for row in rows[:limit]
    ]
    more = f"\n  ... and {len(rows) - limit} more" if len(rows) > limit else ""
    return "\n".join(shown) + more


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    context: Callable[[], str] = str,
    guard: Callable[[], None] | None = None,
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds, saying what never happened.

    ``guard`` runs before each look and may fail sooner (a worker process that died).
    """
    deadline = time.monotonic() + timeout
    while True:
        if guard is not None:
            guard()
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g}s waiting for {what}\n{context()}")
        time.sleep(0.05)


def assert_each_role_delivered_once(
    app: Flask, fake: FakeDiscord, purchases: list[Purchase], context: str = ""
) -> list[Any]:
    """None lost, none duplicated, every row completed and every buyer holding their role in Discord."""
    rows = delivery_rows(app)
    by_key: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for row in rows:
        by_key[(row.order_id, row.guild_id, row.role_id)].append(row)
    expected = {(p.order_id, p.guild_id, p.role_id) for p in purchases}
    suffix = f"\n{context}" if context else ""

    lost = sorted(expected - by_key.keys())
    assert not lost, f"{len(lost)} paid order-roles have no delivery row, e.g. {lost[:5]}{suffix}"
    extra = sorted(by_key.keys() - expected)
    assert not extra, f"{len(extra)} delivery rows match no paid order-role, e.g. {extra[:5]}{suffix}"
    duplicated = [row for group in by_key.values() if len(group) > 1 for row in group]
    assert not duplicated, f"order-roles queued more than once:\n{describe(duplicated)}{suffix}"
    assert len(rows) == len(purchases), f"{len(rows)} delivery rows for {len(purchases)} purchases{suffix}"
    unfinished = [row for row in rows if row.status != "completed"]
    assert not unfinished, (
        f"{len(unfinished)} of {len(rows)} deliveries did not complete "
        f"({dict(Counter(row.status for row in unfinished))}):\n{describe(unfinished)}{suffix}"
    )
    still_leased = [row for row in rows if row.leased_by is not None or row.lease_expires_at is not None]
    assert not still_leased, f"completed rows still carry a lease:\n{describe(still_leased)}{suffix}"
    # No buyer held the role before: every grant is ours, even one whose PUT timed out yet landed, or
    # whose runner was killed after sending it. (Otherwise a refund would leave the role in place.)
    not_ours = [row for row in rows if row.role_was_present is not False]
    assert not not_ours, f"grants not recorded as ours (role_was_present):\n{describe(not_ours)}{suffix}"
    missing = [p for p in purchases if p.role_id not in fake.member_roles(p.guild_id, p.user_id)]
    assert not missing, (
        f"{len(missing)} buyers do not hold the role their completed delivery gave them in Discord, "
        f"e.g. {missing[:3]}{suffix}"
    )
    return rows


# -- worker processes -------------------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """One ``flask discord-roles worker`` subprocess, its output in files (a full pipe would block it)."""

    name: str
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    killed: bool = False

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def started(self) -> bool:
        return re.search(r"worker \S+ started", self.stderr()) is not None

    def describe(self, lines: int = 30) -> str:
        tail = "\n".join(self.stderr().splitlines()[-lines:])
        return (
            f"--- {self.name} (pid {self.process.pid}, exit {self.process.poll()}) stdout ---\n"
            f"{self.stdout().strip()}\n--- {self.name} stderr, last {lines} lines ---\n{tail}"
        )

    def sigkill(self) -> None:
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator stops a worker: it finishes its calls in flight and exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 20.0) -> int:
        """The exit code; fails with the worker's output if it does not exit in time."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not exit within {timeout:g}s of SIGTERM\n{self.describe()}"
            ) from None

    def completed(self) -> int:
        """What the worker said it completed, in its ``worker done: …`` line (after :meth:`stop`)."""
        found = re.search(r"worker done: (\d+) completed", self.stdout())
        if found is None:
            raise AssertionError(f"{self.name} printed no 'worker done' line\n{self.describe()}")
        return int(found.group(1))


class WorkerPool:
    """Starts worker subprocesses against the test's database and fake; whatever still runs is killed."""

    def __init__(self, app: Flask, fake: FakeDiscord, database_url: str, directory: Path) -> None:
        self._database_url = database_url
        self._api_base_url = fake.api_base_url
        self._keys = app.config["DISCORD_ROLES_ENCRYPTION_KEYS"]
        self._directory = directory
        self.workers: list[WorkerProcess] = []

    def start(self, name: str, *options: str, **settings: Any) -> WorkerProcess:
        """``flask discord-roles worker *options`` with ``settings`` over the host's FAST_QUEUE ones."""
        environment = {
            **os.environ,
            **worker_environment(self._database_url, self._api_base_url, self._keys, **settings),
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "tests.worker_host:create_app",
            "discord-roles",
            "worker",
            *options,
        ]
        stdout_path = self._directory / f"{name}.stdout"
        stderr_path = self._directory / f"{name}.stderr"
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=stdout, stderr=stderr)
        worker = WorkerProcess(name, process, stdout_path, stderr_path)
        self.workers.append(worker)
        return worker

    def describe(self) -> str:
        return "\n".join(worker.describe() for worker in self.workers)

    def check_alive(self) -> None:
        """Fail at once, with its output, if a worker died that the test did not kill."""
        for worker in self.workers:
            if not worker.killed and worker.process.poll() is not None:
                raise AssertionError(f"{worker.name} exited unexpectedly\n{worker.describe()}")

    def kill_all(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait(timeout=10)  # a SIGKILLed process always exits


@pytest.fixture
def worker_pool(
    app: Flask, fake_discord: FakeDiscord, database_url: str, tmp_path: Path
) -> Iterator[WorkerPool]:
    """Worker subprocesses for one test: gone before the fake is reset and the database dropped."""
    pool = WorkerPool(app, fake_discord, database_url, tmp_path)
    try:
        yield pool
    finally:
        pool.kill_all()


# -- 1. a third of Discord's answers are faults -----------------------------------------------------------


def test_five_hundred_deliveries_through_a_third_of_faults_all_complete_exactly_once(
    app: Flask,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Five hundred rows over ten servers: enough for every fault kind to hit hundreds of calls (the
    # assertions below prove each was injected) while the suite stays inside its time budget.
    purchases = open_guilds(app, db, fake_discord, guilds=10, buyers_per_guild=50)
    check_out(app, db, purchases)
    assert queue_counts(app)["pending"] == 500, "the worker executor runs nothing at commit"
    fake_discord.set_faults(
        error_rate=0.1,  # 500/502/503
        timeout_rate=0.1,  # hangs past the client's timeout, then applies the request anyway
        timeout_seconds=HTTP_TIMEOUT + 0.1,
        rate_limit_rate=0.1,  # spurious shared-scope 429s
        rate_limit_retry_after=0.25,
        seed=20240601,
    )
    caplog.set_level(logging.WARNING, logger="flask_discord_roles")

    totals = run_worker_until_drained(app, threads=16, timeout=PATIENCE)
    fake_discord.set_faults()

    # A crashed runner thread or a failing database (SQLite's "database is locked") is logged as an
    # error; a finish that found its lease gone means a row ran twice.
    troubles = [
        f"{record.name}: {record.getMessage()}"
        + (f" ({record.exc_info[1]!r})" if record.exc_info and record.exc_info[1] else "")
        for record in caplog.records
        if record.levelno >= logging.ERROR or "lease lost" in record.getMessage()
    ]
    assert not troubles, f"the worker logged {len(troubles)} troubles, e.g.:\n" + "\n".join(troubles[:3])
    rows = assert_each_role_delivered_once(app, fake_discord, purchases)
    assert totals.completed == 500, (
        f"the worker counted {totals.completed} completions for 500 rows: a row was finished twice "
        f"or a finish was lost ({totals})"
    )
    stats = fake_discord.stats()
    server_errors = sum(n for status, n in stats["by_status"].items() if status >= 500)
    assert server_errors > 0, f"no 5xx was injected, so nothing was proven: {stats}"
    assert stats["rate_limited"]["shared"] > 0, f"no 429 was injected, so nothing was proven: {stats}"
    retried = [row for row in rows if row.attempts > 1]
    assert len(retried) > 50, f"only {len(retried)} rows needed a retry; were the faults injected? {stats}"


def run_worker_until_drained(app: Flask, *, threads: int, timeout: float) -> WorkerTotals:
    """An in-process ``Worker`` loop on a thread until no row is pending (or ``timeout``), then stopped."""
    worker = Worker(app, threads=threads, batch_size=threads, poll_interval=0.05)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # reported by the test, not as an unhandled thread exception
            failure.append(exc)

    loop = threading.Thread(target=run, name="resilience-worker", daemon=True)
    loop.start()
    try:
        wait_for(
            lambda: bool(failure) or queue_counts(app)["pending"] == 0,
            timeout=timeout,
            what="the worker to drain the queue",
            context=lambda: f"queue: {dict(queue_counts(app))}\n{describe(pending_rows(app))}",
        )
    finally:
        worker.stop.set()
        worker.wake.set()
        loop.join(timeout=30)
    assert not failure, f"the worker loop raised {failure[0]!r}"
    assert not loop.is_alive(), "the worker loop did not stop within 30s of being told to"
    return worker.totals


def pending_rows(app: Flask) -> list[Any]:
    return [row for row in delivery_rows(app) if row.status == "pending"]


# -- 2. a worker killed mid-batch -------------------------------------------------------------------------

KILL_TEST_SETTINGS: dict[str, Any] = {
    "DISCORD_ROLES_HTTP_TIMEOUT": 1.0,  # the fake answers in 0.15 s: slow, never a timeout
    "DISCORD_ROLES_RATE_LIMIT_WAIT": 0.5,
    "DISCORD_ROLES_LEASE_SECONDS": 4.5,  # the least the config allows: 3 * (1.0 + 0.5)
    "DISCORD_ROLES_GLOBAL_RATE_LIMIT": 100_000,
}


def test_rows_a_sigkilled_worker_held_are_delivered_by_the_next_worker(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, worker_pool: WorkerPool
) -> None:
    purchases = open_guilds(app, db, fake_discord, guilds=5, buyers_per_guild=30)
    check_out(app, db, purchases)
    fake_discord.set_faults(slow_seconds=0.15)  # each call takes a while: rows are in flight when killed
    options = ("--concurrency", "8", "--batch-size", "8", "--poll-interval", "0.1")

    first = worker_pool.start("worker-1", *options, **KILL_TEST_SETTINGS)

    def mid_batch() -> bool:
        counts = queue_counts(app)
        return counts["completed"] >= 20 and counts["leased"] >= 1

    wait_for(
        mid_batch,
        guard=worker_pool.check_alive,
        timeout=PATIENCE,
        what="worker-1 to complete 20 rows with more in flight",
        context=lambda: f"queue: {dict(queue_counts(app))}\n{worker_pool.describe()}",
    )
    first.sigkill()
    orphans = [row for row in delivery_rows(app) if row.status == "pending" and row.leased_by is not None]
    assert orphans, f"worker-1 held no rows when it was killed; the test proves nothing\n{first.describe()}"
    fake_discord.set_faults()

    second = worker_pool.start("worker-2", *options, **KILL_TEST_SETTINGS)
    wait_for(
        lambda: queue_counts(app)["completed"] == len(purchases),
        guard=worker_pool.check_alive,
        timeout=PATIENCE,
        what="worker-2 to complete every row, including those worker-1 held",
        context=lambda: (
            f"queue: {dict(queue_counts(app))}\n{describe(pending_rows(app))}\n{worker_pool.describe()}"
        ),
    )
    second.terminate()
    assert second.wait() == 0, f"worker-2 did not stop cleanly on SIGTERM\n{second.describe()}"

    rows = assert_each_role_delivered_once(app, fake_discord, purchases, context=worker_pool.describe())
    orphan_ids = {row.id for row in orphans}
    rerun = [row for row in rows if row.id in orphan_ids]
    not_recounted = [row for row in rerun if row.attempts < 2]
    assert not not_recounted, (
        f"rows worker-1 held were finished without a second claim:\n{describe(not_recounted)}"
    )


# -- 3. four workers, one queue ---------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_four_workers_draining_one_queue_deliver_each_row_exactly_once(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, worker_pool: WorkerPool
) -> None:
    purchases = open_guilds(app, db, fake_discord, guilds=20, buyers_per_guild=50)
    options = ("--concurrency", "8", "--batch-size", "16", "--poll-interval", "0.1")
    settings = {"DISCORD_ROLES_GLOBAL_RATE_LIMIT": 100_000}
    workers = [worker_pool.start(f"worker-{n}", *options, **settings) for n in range(1, 5)]
    wait_for(
        lambda: all(worker.started for worker in workers),
        guard=worker_pool.check_alive,
        timeout=PATIENCE,
        what="the four workers to start",
        context=worker_pool.describe,
    )

    # One commit: the 1,000 rows appear at once to four workers that are all polling already, so they
    # contend for the same rows whatever their start-up times (and the checkout does not compete with
    # deliveries for the test process, which also serves FakeDiscord).
    check_out(app, db, purchases, per_commit=len(purchases))
    wait_for(
        lambda: queue_counts(app)["completed"] == len(purchases),
        guard=worker_pool.check_alive,
        timeout=PATIENCE,
        what="the four workers to complete 1,000 rows",
        context=lambda: f"queue: {dict(queue_counts(app))}\n{worker_pool.describe()}",
    )
    for worker in workers:
        worker.terminate()
    exits = {worker.name: worker.wait() for worker in workers}
    assert set(exits.values()) == {0}, f"workers did not stop cleanly: {exits}\n{worker_pool.describe()}"

    rows = assert_each_role_delivered_once(app, fake_discord, purchases, context=worker_pool.describe())
    puts: Counter[tuple[str, str, str]] = Counter()
    for call in fake_discord.calls_to("PUT", ROLE_PUT):
        found = ROLE_PUT_PARTS.search(call.path)
        assert found is not None
        puts[(found.group(1), found.group(2), found.group(3))] += 1
    expected = {(row.guild_id, row.discord_user_id, row.role_id) for row in rows}
    repeated = {key: n for key, n in puts.items() if n != 1}
    assert not repeated, (
        f"{len(repeated)} role changes reached Discord more than once (guild, user, role: PUTs), e.g. "
        f"{list(repeated.items())[:5]}"
    )
    assert set(puts) == expected, (
        f"role PUTs for {len(set(puts) - expected)} unexpected and {len(expected - set(puts))} missing "
        "(guild, user, role)"
    )
    completed = {worker.name: worker.completed() for worker in workers}
    assert sum(completed.values()) == len(purchases), (
        f"the workers report {completed} completions for {len(purchases)} rows"
    )
    idle = [name for name, n in completed.items() if n == 0]
    assert not idle, f"{idle} delivered nothing although all four were polling: {completed}"
