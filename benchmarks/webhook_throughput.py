"""What our interactions webhook costs next to the least any Discord bot endpoint can do.

Two WSGI apps are served side by side on loopback, both by the same server, either of:

``gunicorn``
    gunicorn with 2 sync workers, as a small host runs it. A sync worker handles one request per
    connection (no keep-alive), so the client opens a new connection for every request, to both apps.
``werkzeug``
    Werkzeug's threaded development server in one process, with keep-alive connections.

By default both run, gunicorn first; ``--server`` picks one.

The two apps:

``ours``
    A host app with ``DiscordRoles`` and a store bot, at ``/webhook/discord/interactions/store-1``:
    the real route, so every request finds the store's bot, checks the signature and timestamp,
    and (for commands) records the interaction id, answers and counts it in the database.
``bare``
    A Flask app with one route that only checks the Ed25519 signature with PyNaCl and answers PING with
    PONG, or any command with a fixed ephemeral message (``benchmarks/_bare_bot.py``, which imports
    nothing of ours, so its process is as small as a bare bot's).

Two request kinds are measured: a signed PING, and a signed ``/check`` by a member who has 10
deliveries in the server (ours reads them, lists them in an embed and adds the Claim button; bare
answers a static message). Every ``/check`` carries a new interaction id, as Discord's do, so ours
really records and counts each one. ``--kinds ping,check,claim`` adds a signed ``/claim`` by the same
member, which has no target: each one takes the member's turn lock, makes their 3 pending deliveries due
again, looks for roles to run again and queues the deferred answer (the worker runs nothing here).

The client keeps ``--connections`` connections busy from as many threads, with requests signed
before each round. Rounds alternate between the apps (which goes first alternates too), so a slow
patch of a shared machine lands on both. Per server, app and kind it prints requests per second over
all its rounds, p50 and p99 latency, and the ratio ours/bare of throughput. Targets: under gunicorn
>= 0.90 for PING and >= 0.70 for /check on PostgreSQL; under Werkzeug >= 0.85 and >= 0.5.

Beside them, CPU time per request (Linux, read from /proc): of each app's server processes, of the
PostgreSQL backends serving ours (PostgreSQL on this host), and of this process's client threads. It is
steadier than throughput on a shared machine, and it says where a gap comes from: the app, or the
database. When client, servers and database share the machine's cores and keep them busy, throughput
follows the sum: ours/bare is close to (bare's server + client) / (ours' server + database + client),
which says what a ratio needs — how many microseconds less per request.

    python benchmarks/webhook_throughput.py [--server gunicorn|werkzeug|both] \
        [--database postgresql|sqlite] [--seconds 1.5] [--rounds 10] [--floor]

``--floor`` (PostgreSQL) serves a third app beside the two, measured the same way: the bare bot that also
sends ours' /check statement and fetches its rows (``benchmarks/_bare_bot.py``). Its ratio to bare is
what no implementation of ours can beat while each /check is recorded, counted and read in the request.

PostgreSQL is reached at DISCORD_ROLES_TEST_POSTGRES_URL (the test suite's variable), by default
postgresql+psycopg://postgres@127.0.0.1:5432/test; the run uses its own schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._bare_bot import (
    BARE_PATH,
    FLOOR_DSN_VARIABLE,
    FLOOR_SQL_VARIABLE,
    FLOOR_VALUES_VARIABLE,
    PUBLIC_KEY_VARIABLE,
    bare_app,
    create_floor_app,
)
from benchmarks._bench_host import build_app, host_environment
from benchmarks._databases import postgresql_schemas, sqlite_files
from flask_discord_roles._core.claims import CHECK_LIMIT, _member_deliveries_query
from flask_discord_roles._core.interaction_log import _recorded_read
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing.state import new_snowflake

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("ping", "check")
TARGETS: dict[str, dict[str, float]] = {
    "gunicorn": {"ping": 0.90, "check": 0.70},
    "werkzeug": {"ping": 0.85, "check": 0.5},
}
GUNICORN_WORKERS = 2
OURS_APPLICATION = "webhook_throughput_ours"
FLOOR_APPLICATION = "webhook_throughput_floor"
STORE_ID = "store-1"
APPLICATION_ID = "300000000000000001"
GUILD_ID = "400000000000000001"
MEMBER_ID = "500000000000000001"
OURS_PATH = f"/webhook/discord/interactions/{STORE_ID}"


# -- the two servers -----------------------------------------------------------------------------------


def serve_werkzeug(
    kind: str, port: int, database_url: str, keys: str, public_key: str, floor: dict[str, str]
) -> None:
    """A child process: build the app, then serve it with Werkzeug's threaded server until killed."""
    from werkzeug.serving import make_server

    # One log line per request would be measured along with the app; both servers run without it.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if kind == "bare":
        app = bare_app(public_key)
    elif kind == "floor":
        os.environ.update({**floor, PUBLIC_KEY_VARIABLE: public_key})
        app = create_floor_app()
    else:
        app, _ = build_app(database_url, "http://127.0.0.1:9", keys, {})
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


class Server:
    """One app served in its own process(es) on ``port``; :meth:`stop` ends them."""

    def __init__(
        self,
        server: str,
        kind: str,
        port: int,
        database_url: str,
        keys: str,
        public_key: str,
        floor: dict[str, str] | None = None,
    ):
        self.port = port
        self._process: subprocess.Popen[bytes] | multiprocessing.process.BaseProcess
        floor = floor or {}
        if server == "werkzeug":
            context = multiprocessing.get_context("spawn")
            self._process = context.Process(
                target=serve_werkzeug, args=(kind, port, database_url, keys, public_key, floor), daemon=True
            )
            self._process.start()
            return
        # Both apps the same way: a factory, loaded by each worker after the fork; no access log.
        factory = {
            "ours": "benchmarks._bench_host:create_app()",
            "bare": "benchmarks._bare_bot:create_app()",
            "floor": "benchmarks._bare_bot:create_floor_app()",
        }[kind]
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            PUBLIC_KEY_VARIABLE: public_key,
            **floor,
            **host_environment(database_url, "http://127.0.0.1:9", keys, {}),
        }
        command = [
            sys.executable, "-m", "gunicorn", "--workers", str(GUNICORN_WORKERS),
            "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--log-level", "warning", factory,
        ]  # fmt: skip
        self._process = subprocess.Popen(command, env=environment, cwd=ROOT)

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the server's process and its workers (Linux), else None."""
        pid = self._process.pid
        return None if pid is None else process_cpu([pid, *child_pids(pid)])

    def stop(self) -> None:
        if isinstance(self._process, subprocess.Popen):
            self._process.terminate()  # gunicorn's graceful stop: the workers finish and exit
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            return
        self._process.kill()
        self._process.join()


def process_cpu(pids: list[int]) -> float | None:
    """User and system CPU seconds of ``pids`` (their threads included), from Linux's /proc; None
    when /proc cannot tell (another system, or a process this user cannot see)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (gunicorn's workers), from /proc."""
    children = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            children.append(int(entry.parent.name))
    return children


def database_cpu(url: str, application_name: str) -> float | None:
    """CPU seconds of the PostgreSQL backends serving ``application_name`` (a server on this host)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            pids = connection.scalars(
                sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application_name},
            ).all()
    finally:
        engine.dispose()
    return process_cpu(list(pids)) if pids else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server on port {port} did not start")


# -- the store's data --------------------------------------------------------------------------------


def seed(database_url: str, keys: str, public_key: str) -> None:
    """Our app's tables, the store's bot and 10 deliveries of the member's."""
    app, db = build_app(database_url, "http://127.0.0.1:9", keys, {})
    with app.app_context():
        db.create_all()
        state = get_state(app)
        models = state.models
        db.session.add(
            models.StoreBot(
                store_id=STORE_ID,
                application_id=APPLICATION_ID,
                public_key=public_key,
                token_ciphertext=state.cipher.encrypt("bench-token"),
                is_enabled=True,
                slash_commands_registered=True,
            )
        )
        now = utcnow()
        for number in range(10):
            pending = number < 3
            db.session.add(
                models.Delivery(
                    store_id=STORE_ID,
                    idempotency_key=f"order-{number}:vip:{number}",
                    action="add",
                    status="pending" if pending else "completed",
                    source="auto",
                    guild_id=GUILD_ID,
                    role_id=str(410000000000000000 + number),
                    role_name=f"Role {number}",
                    discord_user_id=MEMBER_ID,
                    customer_id="customer-1",
                    order_id=f"order-{number}",
                    package_id="vip",
                    expires_at=now + timedelta(hours=72) if pending else None,
                    completed_at=None if pending else now,
                )
            )
        db.session.commit()
        db.engine.dispose()


@contextmanager
def database(kind: str) -> Iterator[str]:
    throwaway = sqlite_files("bench.db") if kind == "sqlite" else postgresql_schemas(1)
    with throwaway as (url,):
        yield url


# -- the client ----------------------------------------------------------------------------------------


def interaction(kind: str) -> dict[str, Any]:
    if kind == "ping":
        return {
            "id": new_snowflake(),
            "application_id": APPLICATION_ID,
            "type": 1,
            "token": "t",
            "version": 1,
        }
    return {
        "id": new_snowflake(),
        "application_id": APPLICATION_ID,
        "type": 2,
        "token": uuid.uuid4().hex,
        "version": 1,
        "guild_id": GUILD_ID,
        "channel_id": "600000000000000001",
        "member": {"user": {"id": MEMBER_ID, "username": "member"}, "roles": [], "permissions": "0"},
        "data": {"id": "700000000000000001", "name": kind, "type": 1},
    }


def signed_requests(key: SigningKey, kind: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    signed = []
    for _ in range(count):
        body = json.dumps(interaction(kind), separators=(",", ":")).encode()
        stamp = str(int(time.time()))
        signature = key.sign(stamp.encode() + body).signature.hex()
        headers = {
            "Content-Type": "application/json",
            "X-Signature-Ed25519": signature,
            "X-Signature-Timestamp": stamp,
        }
        signed.append((body, headers))
    return signed


@dataclass
class Tally:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float | None = 0.0
    """CPU seconds the app's server processes used in the rounds (None: not measurable here)."""
    database_cpu: float | None = 0.0
    """CPU seconds its PostgreSQL backends used (ours only; None: not measurable)."""
    client_cpu: float = 0.0
    """CPU seconds this process's client threads used (HTTP, connection set-up; signing is done before)."""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def run_round(
    port: int,
    path: str,
    signed: list[tuple[bytes, dict[str, str]]],
    connections: int,
    seconds: float,
    *,
    keep_alive: bool,
) -> tuple[int, float, list[float]]:
    """Keep ``connections`` clients busy for ``seconds``; returns requests, wall time, latencies.

    Without ``keep_alive`` each request has a connection of its own (its set-up is in its latency).
    """
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures: list[str] = []
    cursor = iter(range(len(signed)))
    lock = threading.Lock()

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = latencies[slot]
        while time.monotonic() < stop:
            with lock:
                index = next(cursor, None)
            if index is None:
                failures.append("ran out of signed requests; raise --prepared")
                return
            body, headers = signed[index]
            started = time.perf_counter()
            if not keep_alive:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if not keep_alive:
                connection.close()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                failures.append(f"{response.status} {answer[:200]!r}")
                return
        connection.close()

    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(connections)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"a request failed: {failures[0]}")
    flat = [latency for per_connection in latencies for latency in per_connection]
    return len(flat), elapsed, flat


def measure(
    server: str,
    database_kind: str,
    *,
    seconds: float,
    rounds: int,
    connections: int,
    prepared: int,
    floor: bool = False,
    kinds: tuple[str, ...] = KINDS,
) -> bool:
    key = SigningKey.generate()
    public_key = key.verify_key.encode().hex()
    keys = generate_key()
    keep_alive = server == "werkzeug"  # gunicorn's sync workers close every connection
    with database(database_kind) as url:
        seed(url, keys, public_key)
        # Ours names its connections, so the CPU of the backends serving it can be read.
        ours_url = f"{url}&application_name={OURS_APPLICATION}" if database_kind == "postgresql" else url
        urls = {"ours": ours_url, "bare": url, "floor": url}
        names = ("ours", "bare", "floor") if floor else ("ours", "bare")
        floor_variables = floor_environment(url, keys) if floor else {}
        servers = {
            name: Server(server, name, free_port(), urls[name], keys, public_key, floor_variables)
            for name in names
        }
        try:
            for running in servers.values():
                wait_until_listening(running.port)
            paths = {"ours": OURS_PATH, "bare": BARE_PATH, "floor": BARE_PATH}
            results: dict[tuple[str, str], Tally] = {}
            for kind in kinds:
                # The floor app is ours' /check statement: it stands for nothing else.
                measured = {
                    name: running for name, running in servers.items() if name != "floor" or kind == "check"
                }
                for name, running in measured.items():  # warm-up: connections, caches, the first statements
                    run_round(
                        running.port,
                        paths[name],
                        signed_requests(key, kind, prepared),
                        connections,
                        0.5 * (2 if server == "gunicorn" else 1),  # every gunicorn worker warms up
                        keep_alive=keep_alive,
                    )
                for round_number in range(rounds):
                    order = list(measured) if round_number % 2 == 0 else list(reversed(measured))
                    for name in order:
                        signed = signed_requests(key, kind, prepared)
                        server_before = servers[name].cpu_seconds()
                        database_before = backend_cpu(url, name, database_kind)
                        client_before = time.process_time()
                        count, elapsed, latencies = run_round(
                            servers[name].port,
                            paths[name],
                            signed,
                            connections,
                            seconds,
                            keep_alive=keep_alive,
                        )
                        tally = results.setdefault((name, kind), Tally())
                        tally.requests += count
                        tally.seconds += elapsed
                        tally.client_cpu += time.process_time() - client_before
                        tally.latencies.extend(latencies)
                        tally.server_cpu = added(tally.server_cpu, server_before, servers[name].cpu_seconds())
                        tally.database_cpu = added(
                            tally.database_cpu, database_before, backend_cpu(url, name, database_kind)
                        )
        finally:
            for running in servers.values():
                running.stop()
        checked = verify_recorded(
            url, keys, sum(results[("ours", kind)].requests for kind in kinds if kind != "ping")
        )
    return report(server, database_kind, kinds, results, checked)


def backend_cpu(url: str, name: str, database_kind: str) -> float | None:
    """CPU seconds of the app's PostgreSQL backends so far; None for bare (it has none) or SQLite."""
    if name == "bare" or database_kind != "postgresql":
        return None
    return database_cpu(url, OURS_APPLICATION if name == "ours" else FLOOR_APPLICATION)


def added(total: float | None, before: float | None, after: float | None) -> float | None:
    """``total`` plus what a round used, or None once any reading was missing."""
    if total is None or before is None or after is None:
        return None
    return total + after - before


def floor_environment(url: str, keys: str) -> dict[str, str]:
    """What :func:`benchmarks._bare_bot.create_floor_app` reads: ours' /check statement, as ours sends
    it to the driver, with every value but the interaction's own."""
    app, db = build_app(url, "http://127.0.0.1:9", keys, {})
    with app.app_context():
        models = get_state(app).models
        statement = _recorded_read(models, _member_deliveries_query(models), db.engine.dialect)
        bot_id = db.session.scalar(sa.select(models.StoreBot.id))
        db.engine.dispose()
    values = {
        **statement.literals,
        "store_id": STORE_ID,
        "interaction_store_id": STORE_ID,
        "guild_id": GUILD_ID,
        "user_id": MEMBER_ID,
        "limit": CHECK_LIMIT,
        "bot_id": bot_id,
    }
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1) + f"&application_name={FLOOR_APPLICATION}"
    return {
        FLOOR_DSN_VARIABLE: dsn,
        FLOOR_SQL_VARIABLE: statement.sql,
        FLOOR_VALUES_VARIABLE: json.dumps(values),
    }


def verify_recorded(url: str, keys: str, measured_checks: int) -> int:
    """Ours really handled every /check: each id recorded and counted (warm-up included)."""
    app, db = build_app(url, "http://127.0.0.1:9", keys, {})
    with app.app_context():
        models = get_state(app).models
        counted = db.session.scalar(sa.select(models.StoreBot.total_interactions))
        recorded = db.session.scalar(sa.select(sa.func.count()).select_from(models.ProcessedInteraction))
        db.engine.dispose()
    assert counted == recorded, f"{counted} interactions counted but {recorded} ids recorded"
    assert counted is not None, "the bot's counter row is missing"
    assert counted >= measured_checks, "ours did not record every /check"
    return int(counted)


SERVER_TITLES = {
    "gunicorn": f"gunicorn, {GUNICORN_WORKERS} sync workers, a connection per request",
    "werkzeug": "Werkzeug threaded server, keep-alive",
}


def report(
    server: str,
    database_kind: str,
    kinds: tuple[str, ...],
    results: dict[tuple[str, str], Tally],
    checked: int,
) -> bool:
    print(f"\n== {database_kind}: {SERVER_TITLES[server]}, loopback ==")
    # CPU per request is steadier than throughput on a shared machine, and says where a gap comes from:
    # the app's server processes (server), or the PostgreSQL backends serving ours (database).
    print(
        f"{'':8}{'app':6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu µs/req: server':>20}{'database':>10}"
        f"{'client':>8}"
    )
    met = True
    for kind in kinds:
        names = [name for name in ("ours", "bare", "floor") if (name, kind) in results]
        for name in names:
            tally = results[(name, kind)]
            print(
                f"{kind:8}{name:6}{tally.per_second:9.0f}{tally.percentile(0.5):9.2f}"
                f"{tally.percentile(0.99):9.2f}{per_request(tally.server_cpu, tally):>20}"
                f"{per_request(tally.database_cpu, tally):>10}{per_request(tally.client_cpu, tally):>8}"
            )
        ratio = results[("ours", kind)].per_second / results[("bare", kind)].per_second
        target = TARGETS[server].get(kind)
        if target is None:
            print(f"{kind:8}ours/bare throughput {ratio:.3f}  (no target: bare answers a fixed message)")
            continue
        applies = kind == "ping" or database_kind == "postgresql"
        verdict = ("met" if ratio >= target else "NOT met") if applies else "(target is for PostgreSQL)"
        met = met and (ratio >= target or not applies)
        print(f"{kind:8}ours/bare throughput {ratio:.3f}  target >= {target}  {verdict}")
        if "floor" in names:
            floor_ratio = results[("floor", kind)].per_second / results[("bare", kind)].per_second
            print(f"{kind:8}floor/bare throughput {floor_ratio:.3f}  (bare + ours' statement, nothing else)")
    print(f"ours recorded and counted {checked} command interactions")
    return met


def per_request(cpu_seconds: float | None, tally: Tally) -> str:
    return "-" if cpu_seconds is None or not tally.requests else f"{cpu_seconds / tally.requests * 1e6:.0f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", choices=("gunicorn", "werkzeug", "both"), default="both")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--seconds", type=float, default=1.5, help="length of one round")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per app and request kind")
    parser.add_argument("--connections", type=int, default=4, help="concurrent clients")
    parser.add_argument("--prepared", type=int, default=6000, help="requests signed before each round")
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="comma-separated request kinds: ping, check, claim (a member's repeated /claim: it makes "
        "their 3 pending deliveries due again and queues its deferred answer; no target)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="PostgreSQL: also serve the bare bot plus ours' /check statement (the least any bot that "
        "records and reads can do)",
    )
    arguments = parser.parse_args(argv)
    servers = ("gunicorn", "werkzeug") if arguments.server == "both" else (arguments.server,)
    kinds = tuple(kind.strip() for kind in arguments.kinds.split(",") if kind.strip())
    if not kinds or set(kinds) - {"ping", "check", "claim"}:
        parser.error(f"--kinds takes ping, check and/or claim; got {arguments.kinds!r}")
    met = [
        measure(
            server,
            arguments.database,
            seconds=arguments.seconds,
            rounds=arguments.rounds,
            connections=arguments.connections,
            prepared=arguments.prepared,
            floor=arguments.floor and arguments.database == "postgresql",
            kinds=kinds,
        )
        for server in servers
    ]
    raise SystemExit(0 if all(met) else 1)


if __name__ == "__main__":
    main()
