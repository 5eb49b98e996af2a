"""Whether a ``flask discord-roles worker`` that has run for a long time holds more memory than a fresh one.

One real worker process (``python -m flask --app benchmarks._offline_discord:create_app discord-roles
worker``) drains deliveries fed to it in batches, and its resident memory (``VmRSS`` in
``/proc/<pid>/status``) is read after the first ``--first`` deliveries (default 1,000) and again after
``--deliveries`` (default 100,000). The ratio of the two is the figure to watch (target <= 1.1): a cache
without a bound, or a table that only grows, shows up as memory that keeps growing with the work done.
RSS is also printed every tenth of the way, so a slow climb is told from a step.

The world: one store whose bot is in ``--guilds`` guilds (default 1,500: the Discord client's
rate-limit table then holds more buckets than its sweep threshold of 1,024, so its sweep is exercised),
one role mapped per guild, and one paid order per delivery for a distinct customer, round-robin over the
guilds. Rows are written the way a backfill writes them (``order_grant_row``), due at once, in batches
of ``--batch``, keeping at least one batch ahead of the worker so it never idles.

Discord answers inside the worker's process (``benchmarks/_offline_discord.py``): FakeDiscord over HTTP
would spend two requests' handling per delivery on the cores the worker and the database share, and the
question is what the worker keeps, not how fast a server answers. Everything of ours runs as it does
in production (worker loop, claims and leases, runner, Discord client with its rate-limit buckets and
global limiter, signals); only the socket and the server are missing, and those keep nothing per call
in the worker. The global limit is raised so it does not pace the run.

Each database gets its own run: a fresh PostgreSQL schema (dropped afterwards), or a new SQLite file
(``--databases postgresql,sqlite``; not by default, since on two cores each run takes many minutes).
Afterwards every row must be completed: a worker that failed rows would be measuring something else.

The run takes a while: 100,000 deliveries took 9 to 10 minutes on two cores (the worker,
PostgreSQL and the feeder share the cores); ``--deliveries 20000`` gives a first look in a few minutes.

    python benchmarks/worker_memory.py [--deliveries 100000] [--first 1000] [--databases postgresql]
    python benchmarks/worker_memory.py --tracemalloc /tmp/worker  # snapshots at 1k and at the end

With ``--tracemalloc``, the worker traces its allocations and writes a snapshot at each of the two
readings, and the benchmark prints the 15 source lines whose memory grew most between them.

PostgreSQL is reached at DISCORD_ROLES_TEST_POSTGRES_URL (the test suite's variable), by default
postgresql+psycopg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks._databases import postgresql_schemas, sqlite_files

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.1
STORE_ID = "store-1"
WORKER_APP = "benchmarks._offline_discord:create_app"
GLOBAL_LIMIT, GLOBAL_PERIOD = 1_000_000, 1.0
USER_BASE = 500_000_000_000_000_000
DATABASES = ("postgresql", "sqlite")


@dataclass
class Run:
    database: str
    deliveries: int
    samples: list[tuple[int, int]] = field(default_factory=list)  # (delivered, RSS in KiB)
    first_rss: int = 0
    last_rss: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    growth: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.last_rss / self.first_rss

    @property
    def correct(self) -> bool:
        return self.statuses == {"completed": self.deliveries}


def rss_kib(pid: int) -> int:
    """The process's resident set size in KiB, as the kernel counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextlib.contextmanager
def postgresql_url() -> Iterator[str]:
    with postgresql_schemas(1) as (url,):
        yield url


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with sqlite_files("worker.sqlite", prefix="worker-memory-") as (url,):
        yield url


DATABASE_URLS: dict[str, Callable[[], AbstractContextManager[str]]] = {
    "postgresql": postgresql_url,
    "sqlite": sqlite_url,
}


class Feeder:
    """Writes paid orders' deliveries in batches, in the benchmark's own app and session."""

    def __init__(self, app: Any, db: Any, guilds: int) -> None:
        from flask_discord_roles._core.settings import queue_settings
        from flask_discord_roles._runtime.state import get_state

        self.app, self.db = app, db
        self.state = get_state(app)
        self.delivery = self.state.models.Delivery
        with app.app_context():
            mapping = self.state.models.RoleMapping
            self.mappings = list(db.session.scalars(sa.select(mapping).order_by(mapping.id)))
            self.settings = queue_settings(self.state, STORE_ID)
            db.session.expunge_all()
            db.session.commit()
        assert len(self.mappings) == guilds
        self.fed = 0

    def feed(self, count: int) -> None:
        from flask_discord_roles._core.queue import order_grant_row
        from flask_discord_roles._runtime.models import utcnow

        now = utcnow()
        rows = []
        for number in range(self.fed, self.fed + count):
            rows.append(
                order_grant_row(
                    self.mappings[number % len(self.mappings)],
                    order_id=f"order-{number}",
                    customer_id=f"customer-{number}",
                    discord_user_id=str(USER_BASE + number),
                    settings=self.settings,
                    now=now,
                )
            )
        with self.app.app_context():
            self.db.session.execute(sa.insert(self.delivery), rows)
            self.db.session.commit()
        self.fed += count

    def statuses(self) -> dict[str, int]:
        query = sa.select(self.delivery.status, sa.func.count()).group_by(self.delivery.status)
        with self.app.app_context():
            found = {status: int(count) for status, count in self.db.session.execute(query)}
            self.db.session.commit()
        return found

    def delivered(self) -> int:
        """Rows the worker has finished (anything no longer pending): counted through the pending rows,
        which the queue's indexes hold, so asking often stays cheap as the table grows."""
        query = sa.select(sa.func.count()).where(self.delivery.status == "pending")
        with self.app.app_context():
            pending = int(self.db.session.scalar(query) or 0)
            self.db.session.commit()
        return self.fed - pending


def build_world(database_url: str, guilds: int, keys: str, settings: dict[str, Any]) -> tuple[Any, Any]:
    """The store, its bot (saved through the real path, checked by an in-process FakeDiscord) and one
    role mapped in each of ``guilds`` guilds."""
    from benchmarks._bench_host import build_app
    from flask_discord_roles._core.bots import save_bot
    from flask_discord_roles._runtime.state import get_state
    from flask_discord_roles.testing import FakeDiscord

    with FakeDiscord() as fake:
        bot = fake.create_bot("Memory Bot")
        app, db = build_app(database_url, fake.api_base_url, keys, settings)
        with app.app_context():
            db.create_all()
            state = get_state(app)
            save_bot(
                state,
                STORE_ID,
                application_id=bot.application_id,
                public_key=bot.public_key,
                bot_token=bot.token,
            )
            for number in range(guilds):
                guild_id = str(400_000_000_000_000_000 + number)
                db.session.add(state.models.LinkedGuild(store_id=STORE_ID, guild_id=guild_id))
                db.session.add(
                    state.models.RoleMapping(
                        store_id=STORE_ID,
                        package_id=f"pkg-{number}",
                        guild_id=guild_id,
                        role_id=str(410_000_000_000_000_000 + number),
                        role_name="VIP",
                    )
                )
            db.session.commit()
    return app, db


def run_once(database: str, args: argparse.Namespace, log: Path) -> Run:
    from benchmarks._bench_host import host_environment
    from benchmarks._offline_discord import TRACEMALLOC
    from flask_discord_roles._runtime.crypto import generate_key
    from flask_discord_roles._runtime.state import get_state

    result = Run(database, args.deliveries)
    keys = generate_key()
    settings = {
        "DISCORD_ROLES_GLOBAL_RATE_LIMIT": GLOBAL_LIMIT,
        "DISCORD_ROLES_GLOBAL_RATE_PERIOD": GLOBAL_PERIOD,
    }
    with DATABASE_URLS[database]() as database_url:
        app, db = build_world(database_url, args.guilds, keys, settings)
        feeder = Feeder(app, db, args.guilds)
        env = {
            **os.environ,
            **host_environment(database_url, "http://discord.invalid/api/v10", keys, settings),
        }
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        snapshots = []
        if args.tracemalloc:
            env[TRACEMALLOC] = f"{args.tracemalloc}-{database}.snapshot"
        command = [
            sys.executable,
            "-m",
            "flask",
            "--app",
            WORKER_APP,
            "discord-roles",
            "worker",
            "--concurrency",
            str(args.concurrency),
            "--poll-interval",
            str(args.poll_interval),
        ]
        feeder.feed(args.first)
        started = time.monotonic()
        with log.open("wb") as out:
            worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(feeder, worker, args.first, args.timeout)
            time.sleep(args.settle)  # the pass that finished the batch returns to its sleep
            result.first_rss = rss_kib(worker.pid)
            result.samples.append((args.first, result.first_rss))
            print(f"  ({database}: RSS {mib(result.first_rss)} after {args.first:,})", flush=True)
            if args.tracemalloc:
                snapshots.append(take_snapshot(worker, env[TRACEMALLOC], "first"))
            marks = [args.first + (args.deliveries - args.first) * tenth // 10 for tenth in range(1, 11)]
            while feeder.fed < args.deliveries:
                backlog = feeder.fed - feeder.delivered()
                if backlog < args.batch:
                    feeder.feed(min(args.batch, args.deliveries - feeder.fed))
                    continue
                done = feeder.fed - backlog
                while marks and done >= marks[0]:
                    result.samples.append((done, rss_kib(worker.pid)))
                    marks.pop(0)
                    print(f"  ({database}: RSS {mib(result.samples[-1][1])} after {done:,})", flush=True)
                check_alive(worker, log)
                time.sleep(0.2)
            wait_for(feeder, worker, args.deliveries, args.timeout)
            time.sleep(args.settle)
            result.last_rss = rss_kib(worker.pid)
            result.samples.append((args.deliveries, result.last_rss))
            result.seconds = time.monotonic() - started
            if args.tracemalloc:
                snapshots.append(take_snapshot(worker, env[TRACEMALLOC], "last"))
                result.growth = growth(*snapshots)
            result.statuses = feeder.statuses()
        finally:
            stop(worker)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
            get_state(app).clients.close()
    return result


def wait_for(feeder: Feeder, worker: subprocess.Popen[bytes], count: int, timeout: float) -> None:
    """Until ``count`` rows are finished; gives up after ``timeout`` s without progress."""
    last, since = -1, time.monotonic()
    while (done := feeder.delivered()) < count:
        if done != last:
            last, since = done, time.monotonic()
        if time.monotonic() - since > timeout:
            raise RuntimeError(f"no progress for {timeout:g} s at {done} of {count}: {feeder.statuses()}")
        check_alive(worker, None)
        time.sleep(0.2)


def check_alive(worker: subprocess.Popen[bytes], log: Path | None) -> None:
    if worker.poll() is not None:
        raise RuntimeError(f"the worker exited with {worker.returncode}; see its log {log or ''}")


def take_snapshot(worker: subprocess.Popen[bytes], path: str, name: str) -> Path:
    """Ask the worker for a tracemalloc snapshot and wait until it is written."""
    target = Path(path)
    target.unlink(missing_ok=True)
    worker.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 60
    size = -1
    while time.monotonic() < deadline:
        if target.exists() and target.stat().st_size == size and size > 0:
            break
        size = target.stat().st_size if target.exists() else -1
        time.sleep(0.5)
    kept = target.with_name(f"{target.stem}-{name}.snapshot")
    target.rename(kept)
    return kept


def growth(first: Path, last: Path) -> list[str]:
    """What Python allocated at each reading, and the source lines whose memory grew most between them
    (lines that shrank are left out: the first reading also holds what its pass had in hand)."""
    before = tracemalloc.Snapshot.load(str(first))
    after = tracemalloc.Snapshot.load(str(last))
    totals = [sum(stat.size for stat in snapshot.statistics("filename")) for snapshot in (before, after)]
    grew = sorted(
        (stat for stat in after.compare_to(before, "lineno") if stat.size_diff > 0),
        key=lambda stat: -stat.size_diff,
    )
    return [
        f"traced by Python: {totals[0] / 2**20:.1f} MiB at the first reading, {totals[1] / 2**20:.1f} MiB "
        "at the last; grew most:",
        *(f"  {stat}" for stat in grew[:15]),
    ]


def stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def report(run: Run) -> bool:
    passed = run.correct and run.ratio <= TARGET
    print(f"{run.database}: {run.deliveries} deliveries in {run.seconds:.0f} s")
    print(f"  RSS after {run.samples[0][0]:>7,}: {mib(run.first_rss)}")
    print(f"  RSS after {run.deliveries:>7,}: {mib(run.last_rss)}")
    print(f"  ratio:               {run.ratio:.3f}  (target ≤ {TARGET:.2f})  {'PASS' if passed else 'FAIL'}")
    along = ", ".join(f"{done:,}: {kib / 1024:.1f}" for done, kib in run.samples)
    print(f"  along the way (MiB): {along}")
    print(f"  rows at the end:     {run.statuses}" + ("" if run.correct else "  (expected all completed)"))
    for line in run.growth:
        print(f"    {line}")
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=100_000, help="deliveries in all")
    parser.add_argument("--first", type=int, default=1_000, help="deliveries before the first reading")
    parser.add_argument("--guilds", type=int, default=1_500, help="guilds, one role mapped in each")
    parser.add_argument("--batch", type=int, default=2_000, help="rows written per batch")
    parser.add_argument("--concurrency", type=int, default=8, help="the worker's threads")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="the worker's poll interval")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds idle before each reading")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="give up after this long without progress"
    )
    parser.add_argument("--databases", default="postgresql", help="comma-separated: postgresql, sqlite")
    parser.add_argument("--log-dir", help="keep the worker's log here (default: a temporary directory)")
    parser.add_argument(
        "--tracemalloc", help="path prefix: snapshot the worker at both readings, print growth"
    )
    args = parser.parse_args()
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = sorted(set(databases) - set(DATABASES))
    if unknown or not databases:
        parser.error(f"--databases takes {' and/or '.join(DATABASES)}; got {args.databases!r}")
    if not 0 < args.first < args.deliveries or args.batch < 1 or args.guilds < 1:
        parser.error("need 0 < --first < --deliveries, and --batch and --guilds at least 1")

    started = time.monotonic()
    results = []
    with contextlib.ExitStack() as stack:
        logs = args.log_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="worker-memory-logs-"))
        for database in databases:
            try:
                results.append(report(run_once(database, args, Path(logs) / f"{database}.log")))
            except RuntimeError:
                print(
                    f"{database}: the worker's log:\n{(Path(logs) / f'{database}.log').read_text()[-4000:]}"
                )
                raise
    print(f"wall time: {time.monotonic() - started:.1f} s")
    if not all(results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
