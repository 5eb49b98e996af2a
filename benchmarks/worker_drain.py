"""How close N ``flask discord-roles worker`` processes drain a backlog to the ceiling Discord's limits allow.

The world: one store whose bot is in ``--guilds`` guilds, one role mapped per guild, and ``--rows`` paid
orders (one role each, round-robin over the guilds, as a queue ordered by time roughly would be) queued
the host's way: ``order_completed`` sent in the host's session, then commit, with
``DISCORD_ROLES_EXECUTOR = "worker"`` so nothing runs in the web process. Each delivery makes two
requests in different buckets: GET member, then PUT role.

The limits, in FakeDiscord (a child process, so its request handling does not share a GIL with anything):

- **binding**: the member-role bucket, ``--limit`` PUTs per ``--window`` seconds per guild (default 10 per
  1 s; Discord's real one is 10 per 10 s, shortened so a run fills many windows in seconds). The
  ceiling is the buckets together: ``guilds * limit / window`` role PUTs per second.
- **not binding**: GET member (route ``guild_member``) gets 10,000 per 1 s per guild, and the bot's global
  limit 100,000 per 1 s, both in FakeDiscord and in the workers' clients
  (``DISCORD_ROLES_GLOBAL_RATE_LIMIT``; each worker process has its own limiter, so a real 50/s global
  limit would be split among processes that cannot see each other). So only the role buckets can bind.

Under fixed windows the first window of every guild is free (``guilds * limit`` PUTs at once), so, as in
``client_drain.py``, the achieved rate is counted after that burst, over the span FakeDiscord saw from
the first accepted PUT to the last: ``(PUTs - guilds * limit) / span``. Its ratio to the ceiling is the
figure to watch (target >= 0.9).

Each ``--workers`` count gets its own run: a fresh PostgreSQL schema (dropped afterwards), a fresh
FakeDiscord, the backlog queued, then N real worker subprocesses
(``python -m flask --app benchmarks._bench_host:create_app discord-roles worker -c C``) started together
and stopped with SIGTERM once every row is done. Settings are the package defaults except the ones above
(``--rate-limit-wait``, ``--batch-size`` and ``--poll-interval`` change them). Afterwards it checks that
every row is completed, every member holds their role, and FakeDiscord applied exactly one PUT per row.

The machine's cores are shared by PostgreSQL, FakeDiscord and the workers: keep the ceiling to what they
can serve (a few hundred HTTP requests per second on two cores), or the figure measures the CPU.

    python benchmarks/worker_drain.py [--guilds 10] [--rows 2500] [--workers 2,4] [--concurrency 8]

PostgreSQL is reached at DISCORD_ROLES_TEST_POSTGRES_URL (the test suite's variable), by default
postgresql+psycopg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks._databases import POSTGRES_URL, new_schema_name, schema_url

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.9
STORE_ID = "store-1"

# Limits that must not bind (see the docstring).
MEMBER_GET_LIMIT, MEMBER_GET_WINDOW = 10_000, 1.0
GLOBAL_LIMIT, GLOBAL_PERIOD = 100_000, 1.0

ROLE_PUT = re.compile(r"/guilds/(\d+)/members/(\d+)/roles/(\d+)$")
MEMBER_GET = re.compile(r"/guilds/(\d+)/members/(\d+)$")
WORKER_APP = "benchmarks._bench_host:create_app"
WORKER_DONE = re.compile(
    r"worker done: (\d+) completed, (\d+) retried, (\d+) failed, (\d+) expired", re.MULTILINE
)


# -- FakeDiscord, in its own process ----------------------------------------------------------------


def serve_fake_discord(conn: Connection, guilds: int, rows: int, limit: int, window: float) -> None:
    """Child process: build the world, send it, then answer ``clear`` / ``report`` until ``stop``."""
    from flask_discord_roles.testing import FakeDiscord

    with FakeDiscord() as fake:
        fake.set_route_limit("member_role", limit, window)
        fake.set_route_limit("guild_member", MEMBER_GET_LIMIT, MEMBER_GET_WINDOW)
        fake.set_global_limit(GLOBAL_LIMIT, GLOBAL_PERIOD)
        bot = fake.create_bot("Bench Bot")
        world: list[dict[str, Any]] = []
        for number in range(guilds):
            guild = fake.create_guild(f"Guild {number}")
            fake.add_bot_to_guild(bot, guild.id)
            role = fake.create_role(guild.id, "VIP")
            users = []
            for index in range(math.ceil(rows / guilds)):
                user = fake.create_user(f"u{number}-{index}")
                fake.add_member(guild.id, user.id)
                users.append(user.id)
            world.append({"guild_id": guild.id, "role_id": role.id, "users": users})
        conn.send(
            {
                "base_url": fake.api_base_url,
                "token": bot.token,
                "application_id": bot.application_id,
                "public_key": bot.public_key,
                "guilds": world,
            }
        )
        cpu_at_clear = time.process_time()
        while True:
            command, payload = conn.recv()
            if command == "clear":
                fake.clear_calls()
                cpu_at_clear = time.process_time()
                conn.send(len(fake.rate_limit_hits))
            elif command == "report":
                report = _report(fake, payload)
                report["cpu"] = time.process_time() - cpu_at_clear
                conn.send(report)
            else:
                return


def _report(fake: Any, jobs: list[tuple[str, str, str]]) -> dict[str, Any]:
    """What FakeDiscord saw, reduced to what the parent needs (the raw log is large to pickle)."""
    puts: list[tuple[float, str]] = []
    applied: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    gets = 0
    statuses: Counter[int] = Counter()
    for call in fake.calls:
        statuses[call.status] += 1
        if call.method == "PUT" and (found := ROLE_PUT.search(call.path)):
            if call.status == 204:
                puts.append((call.time, found.group(1)))
                applied[call.path] += 1
            elif call.status == 429:
                refused["member_role"] += 1
        elif call.method == "GET" and MEMBER_GET.search(call.path):
            gets += 1
            if call.status == 429:
                refused["guild_member"] += 1
    per_row = Counter(applied[f"/api/v10/guilds/{g}/members/{u}/roles/{r}"] for g, u, r in jobs)
    granted = sum(role_id in fake.member_roles(g, u) for g, u, role_id in jobs)
    hits = Counter(hit.scope for hit in fake.rate_limit_hits)
    return {
        "puts": sorted(puts),
        "puts_per_row": dict(per_row),
        "refused": dict(refused),
        "gets": gets,
        "granted": granted,
        "hits": dict(hits),
        "statuses": dict(statuses),
        "requests": sum(statuses.values()),
        "internal_errors": len(fake.internal_errors),
    }


# -- one run: N workers against a fresh schema and a fresh FakeDiscord ------------------------------


@dataclass
class RunResult:
    workers: int
    rows: int
    queue_seconds: float = 0.0
    wall: float = 0.0  # workers started -> every row done
    startup: float = 0.0  # workers started -> first accepted PUT
    span: float = 0.0  # first accepted PUT -> last
    puts: int = 0
    achieved: float = float("nan")
    ceiling: float = 0.0
    ideal_span: float = 0.0
    hits: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    granted: int = 0
    puts_per_row: dict[int, int] = field(default_factory=dict)
    worker_totals: list[tuple[int, int, int, int]] = field(default_factory=list)
    requests: int = 0
    internal_errors: int = 0
    worker_cpu: float = 0.0  # CPU seconds the worker processes used, start-up included
    fake_cpu: float = 0.0  # CPU seconds FakeDiscord used while the workers ran
    per_window: list[int] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.achieved / self.ceiling

    @property
    def correct(self) -> bool:
        return (
            self.statuses.get("completed", 0) == self.rows
            and sum(self.statuses.values()) == self.rows
            and self.granted == self.rows
            and self.puts_per_row == {1: self.rows}
        )

    @property
    def passed(self) -> bool:
        return self.correct and self.ratio >= TARGET


def worker_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "DISCORD_ROLES_GLOBAL_RATE_LIMIT": GLOBAL_LIMIT,
        "DISCORD_ROLES_GLOBAL_RATE_PERIOD": GLOBAL_PERIOD,
    }
    if args.rate_limit_wait is not None:
        settings["DISCORD_ROLES_RATE_LIMIT_WAIT"] = args.rate_limit_wait
    return settings


def run_once(workers: int, args: argparse.Namespace, log_dir: Path) -> RunResult:
    from benchmarks._bench_host import build_app, host_environment
    from flask_discord_roles import order_completed
    from flask_discord_roles._core.bots import save_bot
    from flask_discord_roles._runtime.crypto import generate_key
    from flask_discord_roles._runtime.state import get_state

    result = RunResult(workers=workers, rows=args.rows)
    result.ceiling = args.guilds * args.limit / args.window
    schema = new_schema_name()
    database_url = schema_url(schema)
    admin = sa.create_engine(POSTGRES_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    fake = context.Process(
        target=serve_fake_discord, args=(theirs, args.guilds, args.rows, args.limit, args.window)
    )
    fake.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        world: dict[str, Any] = ours.recv()
        keys = generate_key()
        settings = worker_settings(args)
        app, db = build_app(database_url, world["base_url"], keys, settings)
        jobs: list[tuple[str, str, str]] = []
        with app.app_context():
            db.create_all()
            state = get_state(app)
            save_bot(
                state,
                STORE_ID,
                application_id=world["application_id"],
                public_key=world["public_key"],
                bot_token=world["token"],
            )
            for number, guild in enumerate(world["guilds"]):
                db.session.add(state.models.LinkedGuild(store_id=STORE_ID, guild_id=guild["guild_id"]))
                db.session.add(
                    state.models.RoleMapping(
                        store_id=STORE_ID,
                        package_id=f"pkg-{number}",
                        guild_id=guild["guild_id"],
                        role_id=guild["role_id"],
                        role_name="VIP",
                    )
                )
            db.session.commit()
            started = time.monotonic()
            for index in range(args.rows):
                number = index % args.guilds
                guild = world["guilds"][number]
                user = guild["users"][index // args.guilds]
                order_completed.send(
                    app,
                    store_id=STORE_ID,
                    order_id=f"order-{index}",
                    customer_id=f"customer-{index}",
                    package_ids=[f"pkg-{number}"],
                    discord_user_id=user,
                )
                jobs.append((guild["guild_id"], user, guild["role_id"]))
                if index % 100 == 99:
                    db.session.commit()
            db.session.commit()
            result.queue_seconds = time.monotonic() - started
            delivery = state.models.Delivery
            queued = db.session.scalar(sa.select(sa.func.count()).select_from(delivery))
            db.session.commit()
            if queued != args.rows:
                raise RuntimeError(f"queued {queued} deliveries for {args.rows} orders")

            ours.send(("clear", None))
            ours.recv()
            env = {**os.environ, **host_environment(database_url, world["base_url"], keys, settings)}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
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
            ]
            if args.batch_size is not None:
                command += ["--batch-size", str(args.batch_size)]
            if args.poll_interval is not None:
                command += ["--poll-interval", str(args.poll_interval)]
            spawned = time.monotonic()
            for number in range(workers):
                log = log_dir / f"workers{workers}-{number}.log"
                result.logs.append(log)
                with log.open("wb") as out:
                    procs.append(
                        subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
                    )
            result.statuses = _wait_until_done(db, delivery, args.rows, procs, args.timeout)
            result.wall = time.monotonic() - spawned
        result.worker_cpu = sum(_cpu_seconds(proc.pid) for proc in procs)
        _stop(procs)
        for log in result.logs:
            found = WORKER_DONE.search(log.read_text(errors="replace"))
            if found:
                result.worker_totals.append(tuple(int(n) for n in found.groups()))  # type: ignore[arg-type]
        ours.send(("report", jobs))
        seen: dict[str, Any] = ours.recv()
        _fill(result, seen, spawned, args)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
            get_state(app).clients.close()
    finally:
        _stop(procs)
        with contextlib.suppress(OSError):
            ours.send(("stop", None))
        fake.join(timeout=30)
        if fake.is_alive():
            fake.kill()
        ours.close()
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return result


def _wait_until_done(
    db: Any, delivery: Any, rows: int, procs: list[subprocess.Popen[bytes]], timeout: float
) -> dict[str, int]:
    """Poll the queue until every row left ``pending``; gives up after ``timeout`` s without progress."""
    query = sa.select(delivery.status, sa.func.count()).group_by(delivery.status)
    last_change, last_done = time.monotonic(), -1
    while True:
        statuses = {status: int(count) for status, count in db.session.execute(query)}
        db.session.commit()
        done = rows - statuses.get("pending", 0)
        if done >= rows:
            return statuses
        if done != last_done:
            last_change, last_done = time.monotonic(), done
        dead = [proc.args for proc in procs if proc.poll() is not None]
        if dead or time.monotonic() - last_change > timeout:
            why = "a worker exited" if dead else f"no progress for {timeout:g} s"
            print(f"  giving up: {why}; {statuses}", file=sys.stderr)
            return statuses
        time.sleep(0.05)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux; 0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker we started (they finish calls in flight), then wait; kill if it hangs."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _fill(result: RunResult, seen: dict[str, Any], spawned: float, args: argparse.Namespace) -> None:
    puts: list[tuple[float, str]] = [tuple(put) for put in seen["puts"]]  # type: ignore[misc]
    times = [moment for moment, _ in puts]
    burst = args.guilds * args.limit
    result.puts = len(times)
    if times:
        result.startup = times[0] - spawned
        result.span = times[-1] - times[0]
        if result.span > 0 and len(times) > burst:
            result.achieved = (len(times) - burst) / result.span
        # Accepted PUTs per window, counted from the first one (shows where a run fell behind).
        windows = math.ceil(result.span / args.window) + 1
        result.per_window = [0] * windows
        for moment in times:
            result.per_window[int((moment - times[0]) / args.window)] += 1
    per_guild = math.ceil(args.rows / args.guilds)
    result.ideal_span = (math.ceil(per_guild / args.limit) - 1) * args.window
    result.hits = seen["hits"]
    result.refused = seen["refused"]
    result.granted = seen["granted"]
    result.puts_per_row = {int(k): v for k, v in seen["puts_per_row"].items()}
    result.requests = seen["requests"]
    result.internal_errors = seen["internal_errors"]
    result.fake_cpu = seen["cpu"]


# -- the report -------------------------------------------------------------------------------------


def print_table(results: list[RunResult], args: argparse.Namespace) -> None:
    def row(label: str, cells: list[str]) -> None:
        print(f"{label:<30}" + "".join(f"{cell:>18}" for cell in cells))

    print()
    row("workers (processes)", [f"{r.workers} x {args.concurrency} threads" for r in results])
    row("rows", [str(r.rows) for r in results])
    row("queueing the backlog", [f"{r.queue_seconds:.1f} s" for r in results])
    row("wall (start -> all done)", [f"{r.wall:.2f} s" for r in results])
    row("  start -> first PUT", [f"{r.startup:.2f} s" for r in results])
    row("  first -> last PUT (span)", [f"{r.span:.2f} s" for r in results])
    row("  fastest span limits allow", [f"{r.ideal_span:.2f} s" for r in results])
    row("achieved PUT/s (after burst)", [f"{r.achieved:.1f}" for r in results])
    row("ceiling PUT/s", [f"{r.ceiling:.1f}" for r in results])
    row("ratio achieved/ceiling", [f"{r.ratio:.3f}" for r in results])
    row("429s (route / global)", [f"{r.hits.get('user', 0)} / {r.hits.get('global', 0)}" for r in results])
    row(
        "  on PUT role / GET member",
        [f"{r.refused.get('member_role', 0)} / {r.refused.get('guild_member', 0)}" for r in results],
    )
    row("worker CPU per row", [f"{1000 * r.worker_cpu / r.rows:.1f} ms" for r in results])
    row("FakeDiscord CPU per request", [f"{1000 * r.fake_cpu / max(r.requests, 1):.2f} ms" for r in results])
    row("requests FakeDiscord saw", [str(r.requests) for r in results])
    row("retried (rescheduled rows)", [str(sum(t[1] for t in r.worker_totals)) for r in results])
    row("rows completed", [f"{r.statuses.get('completed', 0)} / {r.rows}" for r in results])
    row("roles present", [f"{r.granted} / {r.rows}" for r in results])
    row(
        "PUTs applied per row",
        [", ".join(f"{n}x:{c}" for n, c in sorted(r.puts_per_row.items())) for r in results],
    )
    row("correct", ["yes" if r.correct else "NO" for r in results])
    row(f"target ratio >= {TARGET}", ["PASS" if r.passed else "FAIL" for r in results])
    if args.verbose:
        for r in results:
            print(f"\nworkers={r.workers}: accepted PUTs per {args.window:g} s window from the first:")
            print("  " + " ".join(str(n) for n in r.per_window))
            print(f"  worker totals (completed, retried, failed, expired): {r.worker_totals}")
            print(f"  logs: {', '.join(str(log) for log in r.logs)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--guilds", type=int, default=10)
    parser.add_argument("--rows", type=int, default=2500)
    parser.add_argument("--workers", default="2,4", help="comma-separated worker counts, one run each")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--limit", type=int, default=10, help="role PUTs per window per guild")
    parser.add_argument("--window", type=float, default=1.0, help="seconds")
    parser.add_argument("--batch-size", type=int, default=None, help="worker --batch-size")
    parser.add_argument("--poll-interval", type=float, default=None, help="worker --poll-interval")
    parser.add_argument("--rate-limit-wait", type=float, default=None, help="DISCORD_ROLES_RATE_LIMIT_WAIT")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this long stuck")
    parser.add_argument("--keep-logs", action="store_true", help="keep the workers' logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="per-window counts, log paths")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n.strip()]

    ceiling = args.guilds * args.limit / args.window
    print(
        f"{args.rows} role adds over {args.guilds} guilds; binding limit: member-role bucket "
        f"{args.limit} per {args.window:g} s per guild -> ceiling {ceiling:.0f} PUT/s "
        f"(first {args.guilds * args.limit} PUTs are the free first window)"
    )
    print(
        f"not binding: GET member {MEMBER_GET_LIMIT} per {MEMBER_GET_WINDOW:g} s per guild, "
        f"global {GLOBAL_LIMIT} per {GLOBAL_PERIOD:g} s"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="worker_drain_") as tmp:
        log_dir = Path(tempfile.mkdtemp(prefix="worker_drain_logs_")) if args.keep_logs else Path(tmp)
        for workers in counts:
            print(f"running {workers} worker(s) x {args.concurrency} threads ...", flush=True)
            results.append(run_once(workers, args, log_dir))
        print_table(results, args)
    if not all(r.passed for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
