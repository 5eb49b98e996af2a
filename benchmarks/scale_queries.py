"""Do the hot lookups cost the same with a million deliveries as with a thousand?

Two worlds are built side by side on PostgreSQL, each in its own schema: 1,000 stores (a bot, a linked
server and three packages mapped to roles each) with ``--small`` delivery rows in one and ``--rows`` in
the other (1,000 and 1,000,000 by default). Both come from the same set-based generator
(``INSERT … SELECT … FROM generate_series``), so they differ only in size: ten heavy stores hold 40 % of
the rows, the other 990 share the rest; every customer has two orders of two roles; one customer in five
checked out as a guest (no Discord id on the rows; most of them linked an account later); 87 % of rows are
completed grants, 3 % removals, 3 % failed, 2 % expired, 3 % wait for their customer and 2 % are retries
scheduled for later. Each world also holds the same 50 deliveries due now, so the worker's claim has the
same work in both. Then ``VACUUM ANALYZE``, as a live database would be.

What is timed is the library's own code, each call in its own transaction, rolled back afterwards so
every run sees the same world:

``/check``      ``_core.claims.member_deliveries`` through the webhook's ``QueryRecorder``
``/claim``      ``_core.claims.claim_for_member``: everything /claim does in the database, the owed
                lookup included (the member holds every role, so nothing is run again needlessly)
``store_stats`` ``_core.deliveries.store_stats``
``list``        ``_core.deliveries.list_deliveries``: the first page (50 rows, newest first)
``due``         the worker's claim of due rows, ``_core.leasing.claim_statement`` (a batch of 20)

Keys are drawn at random per call, half from the ten heavy stores (hot) and half from the others (cold):
a customer of the store for /check and /claim, the store for the rest. Calls take turns between the two
worlds and the five operations, so a slow patch of a shared machine lands on both worlds alike. Printed:
p50 and p99 per operation and world, and the ratios 1M/1k (target <= 1.5 for each), followed by the
large world's query plan of each operation's main statement (with ``--plans``).

    python benchmarks/scale_queries.py [--rows 1000000] [--small 1000] [--samples 400] [--keep] [--plans]

``--keep`` leaves the two schemas (``bench_scale_small``, ``bench_scale_large``) in place and reuses them
on the next run if they were built by the same generator for the same sizes; their indexes are brought in
line with the models' first, so a changed index is measured without a rebuild. Without it they are
dropped at the end. Building the million rows takes a minute or two.

PostgreSQL only: the figures are about a production-sized database, and a million-row SQLite build would
double the run time of ``make bench`` for a database that serves a single small store.

PostgreSQL is reached at DISCORD_ROLES_TEST_POSTGRES_URL (the test suite's variable), by default
postgresql+psycopg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles
from flask_discord_roles._core.claims import claim_for_member, member_deliveries
from flask_discord_roles._core.deliveries import list_deliveries, store_stats
from flask_discord_roles._core.interaction_log import QueryRecorder
from flask_discord_roles._core.leasing import claim_statement
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.state import get_state

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks._databases import POSTGRES_URL, schema_url

TARGET = 1.5
GENERATOR = "scale-queries-1"
"""Written into each kept schema; bump it when the generator changes, so an old world is rebuilt."""
STORES = 1_000
HEAVY = 10
DUE_NOW = 50
PAGE = 50
VACUUM_EVERY = 50
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
OPERATIONS = ("/check", "/claim", "store_stats", "list", "due")


@dataclass
class World:
    """One schema: the app over it, its size, the keys calls draw from and the times they took."""

    name: str
    rows: int
    app: Flask
    db: SQLAlchemy
    members: dict[bool, list[tuple[str, str, str]]] = field(default_factory=dict)
    """(store, guild, Discord user) by hot (a heavy store) or not."""
    stores: dict[bool, list[str]] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in OPERATIONS})


def store_id(number: int) -> str:
    return f"store-{number:04d}"


# The generator. Row i goes to a heavy store (40 of every 100 rows) or to one of the others, in turns,
# so every store's rows are spread over the whole id range as a live table's are. ``k`` numbers the
# rows of its group, ``j`` the rows of its store: two rows per order, two orders per customer.
ROWS_SQL = """
WITH numbered AS (
    SELECT i, i % 100 AS m, (i * 37 + 11) % 100 AS kind FROM generate_series(0, :count - 1) AS i
), placed AS (
    SELECT i, kind,
        CASE WHEN m < 40 THEN 1 + ((i / 100) * 40 + m) % :heavy
             ELSE :heavy + 1 + ((i / 100) * 60 + m - 40) % (:stores - :heavy) END AS s,
        CASE WHEN m < 40 THEN ((i / 100) * 40 + m) / :heavy
             ELSE ((i / 100) * 60 + m - 40) / (:stores - :heavy) END AS j
    FROM numbered
), shaped AS (
    SELECT i, kind, s, j, j / 2 AS o, j / 4 AS c, (j / 2 + j % 2) % 3 AS p,
        :now - make_interval(secs => (:count - i) * 31536000.0 / :count) AS at
    FROM placed
)
INSERT INTO discord_roles_deliveries (
    store_id, idempotency_key, action, status, source, guild_id, role_id, discord_user_id, customer_id,
    order_id, package_id, role_name, attempts, next_attempt_at, reason_code, reason, expires_at,
    role_was_present, revoked_at, created_at, updated_at, completed_at)
SELECT
    'store-' || lpad(s::text, 4, '0'),
    CASE WHEN kind BETWEEN 87 AND 89 THEN 'revoke:' ELSE 'order:' END || 'o' || o || ':' || p || ':' || j,
    CASE WHEN kind BETWEEN 87 AND 89 THEN 'remove' ELSE 'add' END,
    CASE WHEN kind < 90 THEN 'completed' WHEN kind < 93 THEN 'failed' WHEN kind < 95 THEN 'expired'
         ELSE 'pending' END,
    CASE WHEN kind % 7 = 0 THEN 'interaction' ELSE 'auto' END,
    '5' || lpad(s::text, 17, '0'),
    '6' || lpad((s * 10 + p)::text, 17, '0'),
    CASE WHEN c % 5 = 0 THEN NULL ELSE '1' || lpad(s::text, 6, '0') || lpad(c::text, 11, '0') END,
    'c' || c, 'o' || o, 'pkg-' || p, 'Role ' || p,
    CASE WHEN kind >= 95 AND kind < 98 THEN 0 ELSE 1 END,
    CASE WHEN kind >= 98 THEN :now + make_interval(mins => 60 + kind) END,
    CASE WHEN kind < 90 THEN NULL WHEN kind < 92 THEN 'member_not_in_guild'
         WHEN kind < 93 THEN 'role_above_bot' WHEN kind < 95 THEN 'claim_expired'
         WHEN kind < 98 THEN 'waiting_for_customer' ELSE 'rate_limited' END,
    CASE WHEN kind >= 90 THEN 'A reason as long as the real ones are, give or take a few words.' END,
    CASE WHEN kind >= 95 AND kind < 98 THEN :now + interval '3 days' END,
    CASE WHEN kind < 87 THEN false END,
    CASE WHEN kind BETWEEN 87 AND 89 THEN at END,
    at, at,
    CASE WHEN kind < 90 THEN at + interval '2 seconds' END
FROM shaped
"""

DUE_SQL = """
INSERT INTO discord_roles_deliveries (
    store_id, idempotency_key, action, status, source, guild_id, role_id, discord_user_id, customer_id,
    order_id, package_id, role_name, attempts, next_attempt_at, created_at, updated_at)
SELECT 'store-' || lpad(s::text, 4, '0'), 'order:due' || n || ':0:0', 'add', 'pending', 'auto',
    '5' || lpad(s::text, 17, '0'), '6' || lpad((s * 10)::text, 17, '0'), '2' || lpad(n::text, 17, '0'),
    'due' || n, 'due' || n, 'pkg-0', 'Role 0', 0, :now - make_interval(secs => n), :now, :now
FROM generate_series(1, :due) AS n, LATERAL (SELECT 1 + (n * 19) % :stores AS s) AS placed
"""

STORES_SQL = [
    """
    INSERT INTO discord_roles_bots (store_id, application_id, public_key, token_ciphertext, is_enabled,
        slash_commands_registered, uses_platform_bot, total_interactions, total_roles_assigned,
        total_roles_removed, total_errors, created_at, updated_at)
    SELECT 'store-' || lpad(s::text, 4, '0'), '7' || lpad(s::text, 17, '0'), repeat('ab', 32), 'sealed',
        true, true, false, s * 3, s * 2, s / 10, s / 20, :now, :now
    FROM generate_series(1, :stores) AS s
    """,
    """
    INSERT INTO discord_roles_guilds (store_id, guild_id, name, linked_at)
    SELECT 'store-' || lpad(s::text, 4, '0'), '5' || lpad(s::text, 17, '0'), 'Server ' || s,
        :now - interval '400 days'
    FROM generate_series(1, :stores) AS s
    """,
    """
    INSERT INTO discord_roles_role_mappings (store_id, package_id, guild_id, role_id, role_name,
        keep_on_end, created_at)
    SELECT 'store-' || lpad(s::text, 4, '0'), 'pkg-' || p, '5' || lpad(s::text, 17, '0'),
        '6' || lpad((s * 10 + p)::text, 17, '0'), 'Role ' || p, false, :now - interval '400 days'
    FROM generate_series(1, :stores) AS s, generate_series(0, 2) AS p
    """,
    # Every customer but the pure guests (one in ten) linked an account, some only after checkout:
    # those rows still have no Discord id, and /check and /claim find them through the account.
    """
    INSERT INTO discord_roles_accounts (store_id, customer_id, discord_user_id, linked_at, updated_at)
    SELECT DISTINCT ON (store_id, customer_id) store_id, customer_id,
        '100' || substr(store_id, 7) || lpad(substr(customer_id, 2), 11, '0'), :now, :now
    FROM discord_roles_deliveries
    WHERE customer_id NOT LIKE 'due%' AND substr(customer_id, 2)::bigint % 10 <> 5
    """,
    # One order in twenty sold time: its grant, shown by /check beside the role.
    """
    INSERT INTO discord_roles_grants (store_id, customer_id, discord_user_id, package_id, order_id,
        last_order_id, status, expires_at, ends_at, renewals, created_at, updated_at)
    SELECT store_id, customer_id, discord_user_id, package_id, order_id, order_id, 'active',
        :now + interval '20 days', :now + interval '23 days', 0, created_at, created_at
    FROM discord_roles_deliveries
    WHERE action = 'add' AND customer_id NOT LIKE 'due%' AND substr(order_id, 2)::bigint % 20 = 0
    ON CONFLICT DO NOTHING
    """,
]


def world_url(schema: str) -> str:
    return schema_url(schema)


def open_world(name: str, rows: int, *, keep: bool, admin: sa.Engine) -> World:
    """The world in schema ``bench_scale_<name>``: reused when kept and built alike, else built anew."""
    schema = f"bench_scale_{name}"
    app = Flask(f"scale_{name}")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=world_url(schema),
        DISCORD_ROLES_ENCRYPTION_KEYS=generate_key(),
        DISCORD_ROLES_EXECUTOR="worker",  # nothing runs in this process but what is timed
        DISCORD_ROLES_PUBLIC_BASE_URL="http://127.0.0.1",
    )
    db = SQLAlchemy(app)
    DiscordRoles(app, db=db)
    world = World(name, rows, app, db)
    # The tables' columns are part of what a kept world must match; its indexes are aligned below.
    columns = sorted(
        f"{table.name}.{column.name}" for table in db.metadata.tables.values() for column in table.c
    )
    digest = hashlib.sha256(",".join(columns).encode()).hexdigest()[:12]
    signature = f"{GENERATOR} rows={rows} stores={STORES} columns={digest}"
    with admin.connect() as connection:
        built = connection.scalar(
            sa.text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = :s"),
            {"s": schema},
        )
    started = time.monotonic()
    if keep and built == signature:
        changed = align_indexes(world)
        how = f"reused (indexes {'changed: ' + ', '.join(changed) if changed else 'as the models say'})"
    else:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        build(world)
        with admin.begin() as connection:
            connection.execute(sa.text(f"COMMENT ON SCHEMA {schema} IS '{signature}'"))
        how = "built"
    analyse(world)
    pick_keys(world)
    print(
        f"{name} world: {rows:,} deliveries in {STORES:,} stores, {how} in {time.monotonic() - started:.1f} s"
    )
    return world


def build(world: World) -> None:
    """The tables as the models define them, filled by set-based INSERTs."""
    values = {"count": world.rows - DUE_NOW, "due": DUE_NOW, "stores": STORES, "heavy": HEAVY, "now": NOW}
    with world.app.app_context():
        world.db.create_all()
        with world.db.engine.begin() as connection:
            connection.execute(sa.text(ROWS_SQL), values)
            connection.execute(sa.text(DUE_SQL), values)
            for statement in STORES_SQL:
                connection.execute(sa.text(statement), values)


def align_indexes(world: World) -> list[str]:
    """A kept world's delivery indexes made to match the models (created or dropped); what changed."""
    changed = []
    with world.app.app_context(), world.db.engine.begin() as connection:
        table = get_state(world.app).models.Delivery.__table__  # type: ignore[attr-defined]
        wanted = {index.name: index for index in table.indexes}
        present = set(
            connection.scalars(
                sa.text(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                    "AND tablename = :t AND indexname LIKE 'ix_%'"
                ),
                {"t": table.name},
            )
        )
        for name in sorted(present - set(wanted)):
            connection.execute(sa.text(f'DROP INDEX "{name}"'))
            changed.append(f"-{name}")
        for name in sorted(set(wanted) - present):
            wanted[name].create(connection)
            changed.append(f"+{name}")
    return changed


def analyse(world: World) -> None:
    with world.app.app_context(), world.db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))


def vacuum(world: World) -> None:
    with world.app.app_context(), world.db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text("VACUUM discord_roles_deliveries")
        )


def pick_keys(world: World, per_kind: int = 500) -> None:
    """Members (a Discord user of a store, linked at checkout or later) and stores, hot and cold."""
    rng = random.Random(world.rows)
    with world.app.app_context(), world.db.engine.connect() as connection:
        for hot in (True, False):
            members = connection.execute(
                sa.text(
                    "SELECT a.store_id, g.guild_id, a.discord_user_id FROM discord_roles_accounts AS a "
                    "JOIN discord_roles_guilds AS g USING (store_id) "
                    "WHERE (substr(a.store_id, 7)::int <= :heavy) = :hot ORDER BY random() LIMIT :n"
                ),
                {"heavy": HEAVY, "hot": hot, "n": per_kind},
            ).all()
            world.members[hot] = [tuple(row) for row in members]  # type: ignore[misc]
            numbers = range(1, HEAVY + 1) if hot else range(HEAVY + 1, STORES + 1)
            world.stores[hot] = [store_id(rng.choice(numbers)) for _ in range(per_kind)]


# --- the timed operations: each returns the seconds its call took, and leaves the world as it was ---


def time_check(world: World, key: tuple[str, str, str]) -> float:
    store, guild, user = key
    state = get_state(world.app)
    with world.app.app_context(), world.db.engine.connect() as connection:
        started = time.perf_counter()
        with connection.begin() as transaction:
            recorder = QueryRecorder(
                connection,
                state.models,
                interaction_id=str(random.getrandbits(60)),
                store_id=store,
                bot_id=int(store[6:]),
                now=NOW,
            )
            member_deliveries(recorder, state.models, store, guild, user)
            elapsed = time.perf_counter() - started
            transaction.rollback()
    return elapsed


def time_claim(world: World, key: tuple[str, str, str]) -> float:
    store, guild, user = key
    state = get_state(world.app)
    held = {f"6{int(store[6:]) * 10 + p:017d}" for p in range(3)}
    return time_in_session(
        world,
        lambda: claim_for_member(
            state, store, guild, user, held_role_ids=held, roles_seen_at=NOW, code_order_id=None, now=NOW
        ),
    )


def time_stats(world: World, store: str) -> float:
    return time_in_session(world, lambda: store_stats(store))


def time_list(world: World, store: str) -> float:
    return time_in_session(world, lambda: list_deliveries(store, limit=PAGE))


def time_in_session(world: World, call: Callable[[], object]) -> float:
    """How long ``call`` took in the world's app context; what it did in the request's session is
    rolled back after the clock stops."""
    with world.app.app_context():
        started = time.perf_counter()
        call()
        elapsed = time.perf_counter() - started
        world.db.session.rollback()
    return elapsed


def time_due(world: World, _: object) -> float:
    state = get_state(world.app)
    with world.app.app_context(), world.db.engine.connect() as connection:
        statement = claim_statement(
            state.models.Delivery,
            runner_id="bench",
            now=NOW,
            lease_seconds=state.settings.lease_seconds,
            limit=state.settings.batch_size,
        )
        started = time.perf_counter()
        with connection.begin() as transaction:
            leased = list(connection.scalars(statement))
            elapsed = time.perf_counter() - started
            transaction.rollback()
    if len(leased) != state.settings.batch_size:
        raise SystemExit(f"{world.name}: the worker leased {len(leased)} rows, not a batch")
    return elapsed


TIMED: dict[str, tuple[Callable[[World, Any], float], str]] = {
    "/check": (time_check, "members"),
    "/claim": (time_claim, "members"),
    "store_stats": (time_stats, "stores"),
    "list": (time_list, "stores"),
    "due": (time_due, "stores"),
}


def run(worlds: list[World], samples: int, warmup: int) -> None:
    """Every operation ``samples`` times on each world, in turns; the first ``warmup`` are not kept."""
    rng = random.Random(22)
    for number in range(warmup + samples):
        hot = number % 2 == 0
        operations = list(OPERATIONS)
        rng.shuffle(operations)
        for operation in operations:
            call, keys = TIMED[operation]
            order = worlds if number % 4 < 2 else worlds[::-1]
            for world in order:
                key = rng.choice(getattr(world, keys)[hot])
                elapsed = call(world, key)
                if number >= warmup:
                    world.times[operation].append(elapsed)
        if number % VACUUM_EVERY == VACUUM_EVERY - 1:
            # Untimed: the rolled-back UPDATEs leave dead row versions behind, as many in each world;
            # autovacuum would clear them on a live database, here it might not keep up.
            for world in worlds:
                vacuum(world)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(small: World, large: World) -> bool:
    print(
        f"\n{'operation':<12} {'p50 ' + label(small):>10} {'p50 ' + label(large):>10} {'ratio':>6}"
        f"   {'p99 ' + label(small):>10} {'p99 ' + label(large):>10} {'ratio':>6}"
    )
    ok = True
    for operation in OPERATIONS:
        line = f"{operation:<12}"
        for share in (0.5, 0.99):
            a, b = percentile(small.times[operation], share), percentile(large.times[operation], share)
            ratio = b / a
            ok = ok and ratio <= TARGET
            line += f" {a * 1000:8.2f}ms {b * 1000:8.2f}ms {ratio:6.2f}{'' if ratio <= TARGET else '!'} "
        print(line)
    samples = len(small.times[OPERATIONS[0]])
    print(f"({samples} calls per operation and world, half on hot stores; target: every ratio <= {TARGET})")
    return ok


def label(world: World) -> str:
    return f"{world.rows // 1_000_000}M" if world.rows >= 1_000_000 else f"{world.rows // 1_000}k"


def plans(world: World) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each operation's main statement in ``world``, for one hot key."""
    store, guild, user = world.members[True][0]
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH")):
            captured.append((statement, parameters))

    with world.app.app_context():
        engine = world.db.engine
        sa.event.listen(engine, "before_cursor_execute", capture)
        try:
            for operation in OPERATIONS:
                captured.clear()
                call, keys = TIMED[operation]
                call(world, (store, guild, user) if keys == "members" else store)
                print(f"\n--- {operation}: {len(captured)} statements; the slowest:")
                worst = None
                for statement, parameters in captured:
                    with engine.connect() as connection, connection.begin() as transaction:
                        rows = connection.exec_driver_sql(
                            "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                        ).all()
                        transaction.rollback()
                    took = float(rows[-1][0].split(":")[1].split()[0])
                    if worst is None or took > worst[0]:
                        worst = (took, statement, [row[0] for row in rows])
                if worst is not None:
                    print("  " + " ".join(worst[1].split())[:400])
                    print("    " + "\n    ".join(worst[2]))
        finally:
            sa.event.remove(engine, "before_cursor_execute", capture)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="deliveries in the large world")
    parser.add_argument("--small", type=int, default=1_000, help="deliveries in the small world")
    parser.add_argument("--samples", type=int, default=400, help="timed calls per operation and world")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls first, per operation")
    parser.add_argument("--keep", action="store_true", help="keep the two schemas, and reuse kept ones")
    parser.add_argument("--plans", action="store_true", help="print the large world's query plans")
    args = parser.parse_args()
    if not DUE_NOW * 2 <= args.small <= args.rows or args.samples < 1 or args.warmup < 0:
        parser.error(f"need {DUE_NOW * 2} <= --small <= --rows, --samples >= 1, --warmup >= 0")

    started = time.monotonic()
    admin = sa.create_engine(POSTGRES_URL, poolclass=sa.pool.NullPool)
    worlds: list[World] = []
    try:
        worlds = [
            open_world("small", args.small, keep=args.keep, admin=admin),
            open_world("large", args.rows, keep=args.keep, admin=admin),
        ]
        run(worlds, args.samples, args.warmup)
        ok = report(*worlds)
        if args.plans:
            plans(worlds[1])
    finally:
        for world in worlds:
            with world.app.app_context():
                world.db.session.remove()
                world.db.engine.dispose()
        if not args.keep:
            with admin.begin() as connection:
                for name in ("small", "large"):
                    connection.execute(sa.text(f"DROP SCHEMA IF EXISTS bench_scale_{name} CASCADE"))
        admin.dispose()
    print(f"\nwall time: {time.monotonic() - started:.1f} s")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
