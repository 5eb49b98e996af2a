"""Does the expiry sweep cost what is due, whatever the size of the grants table?

Two copies of one store are built per database, each in its own database (a new SQLite file, or a new
PostgreSQL schema dropped at the end): a **small** one holding ``--due`` active time-limited grants, all
past their end, and a **big** one holding the same ``--due`` grants among ``--grants`` active grants
(the rest end in the future). Every grant has the completed ``add`` delivery that gave its role, as a
real store would, so the deliveries table grows with the grants table too. Rows are seeded with bulk
INSERTs, then the tables are analysed.

What is timed is the real sweep, ``_core.grant_sweeps.end_due_grants`` (batches of ``--batch-size``,
one transaction each): reading the due grants from the ``ix_discord_roles_grants_ending`` index, ending
them, and ``revoke_order`` of each grant's order, which queues one removal row per grant. Nothing is
stubbed. Between runs (untimed) the grants are made active again and the removal rows deleted, so
every run does the same work. The copies take turns, ``--rounds`` times each; the figure per copy is
the median, and the ratio big/small is the number to watch (target <= 2). Each run is checked to have
ended exactly ``--due`` grants and queued as many removals, and each database's query plan for the
sweep is printed, which must name the index.

    python benchmarks/expiry_sweep.py [--grants 100000] [--due 1000] [--rounds 3]
        [--databases sqlite,postgresql]

PostgreSQL is reached at DISCORD_ROLES_TEST_POSTGRES_URL (the test suite's variable), by default
postgresql+psycopg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles
from flask_discord_roles._core.grant_sweeps import end_batch, end_due_grants
from flask_discord_roles._core.queue import order_delivery_key
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.state import get_state

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks._databases import postgresql_schemas, sqlite_files

DATABASES = ("sqlite", "postgresql")
TARGET = 2.0
INDEX = "ix_discord_roles_grants_ending"

STORE_ID = "store-1"
GUILD_ID = "400000000000000001"
ROLE_ID = "410000000000000001"
PACKAGE_ID = "vip-monthly"
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
SEED_CHUNK = 10_000


@dataclass
class Copy:
    """One store's database: ``grants`` active grants, of which ``due`` are past their end."""

    name: str
    app: Flask
    db: SQLAlchemy
    grants: int
    due: int
    times: list[float] = field(default_factory=list)


def build(name: str, database_url: str, *, grants: int, due: int) -> Copy:
    app = Flask(f"expiry_sweep_{name}")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url,
        DISCORD_ROLES_ENCRYPTION_KEYS=generate_key(),
        DISCORD_ROLES_EXECUTOR="worker",  # nothing runs in this process but the sweep
        DISCORD_ROLES_PUBLIC_BASE_URL="http://127.0.0.1",
    )
    db = SQLAlchemy(app)
    DiscordRoles(app, db=db)
    with app.app_context():
        db.create_all()
        seed(app, db, grants=grants, due=due)
    return Copy(name, app, db, grants, due)


def seed(app: Flask, db: SQLAlchemy, *, grants: int, due: int) -> None:
    """Bulk INSERT the grants and their deliveries: the first ``due`` ended an hour to a day ago, the
    others end over the next year."""
    models = get_state(app).models
    grant_table = models.Grant.__table__  # type: ignore[attr-defined]
    delivery_table = models.Delivery.__table__  # type: ignore[attr-defined]
    with db.engine.begin() as connection:
        for start in range(0, grants, SEED_CHUNK):
            grant_rows, delivery_rows = [], []
            for number in range(start, min(start + SEED_CHUNK, grants)):
                order_id = f"order-{number}"
                if number < due:
                    ends_at = NOW - timedelta(hours=1) - timedelta(seconds=number * 80)
                else:
                    ends_at = NOW + timedelta(minutes=1 + (number * 311) % (365 * 24 * 60))
                user_id = str(500_000_000_000_000_000 + number)
                grant_rows.append(
                    {
                        "store_id": STORE_ID,
                        "customer_id": f"customer-{number}",
                        "discord_user_id": user_id,
                        "package_id": PACKAGE_ID,
                        "subscription_id": f"sub-{number}",
                        "order_id": order_id,
                        "last_order_id": order_id,
                        "status": "active",
                        "expires_at": ends_at,
                        "ends_at": ends_at,
                        "renewals": 0,
                        "created_at": NOW - timedelta(days=30),
                        "updated_at": NOW - timedelta(days=30),
                    }
                )
                delivery_rows.append(
                    {
                        "store_id": STORE_ID,
                        "idempotency_key": order_delivery_key(order_id, PACKAGE_ID, GUILD_ID, ROLE_ID),
                        "action": "add",
                        "status": "completed",
                        "source": "auto",
                        "guild_id": GUILD_ID,
                        "role_id": ROLE_ID,
                        "role_name": "VIP",
                        "discord_user_id": user_id,
                        "customer_id": f"customer-{number}",
                        "order_id": order_id,
                        "package_id": PACKAGE_ID,
                        "attempts": 1,
                        "role_was_present": False,
                        "created_at": NOW - timedelta(days=30),
                        "updated_at": NOW - timedelta(days=30),
                        "completed_at": NOW - timedelta(days=30),
                    }
                )
            connection.execute(grant_table.insert(), grant_rows)
            connection.execute(delivery_table.insert(), delivery_rows)
        connection.execute(sa.text("ANALYZE"))


def reset(copy: Copy) -> None:
    """Untimed: the due grants active again, their deliveries unrevoked, the removal rows gone."""
    models = get_state(copy.app).models
    grant, delivery = models.Grant, models.Delivery
    with copy.app.app_context(), copy.db.engine.begin() as connection:
        connection.execute(
            sa.update(grant)
            .where(grant.status == "ended")
            .values(status="active", end_reason=None, ended_at=None)
        )
        connection.execute(sa.delete(delivery).where(delivery.action == "remove"))
        connection.execute(
            sa.update(delivery).where(delivery.revoked_at.is_not(None)).values(revoked_at=None)
        )


def sweep(copy: Copy, batch_size: int) -> float:
    """One timed sweep; checks that it ended every due grant and queued a removal for each."""
    state = get_state(copy.app)
    with copy.app.app_context():
        started = time.perf_counter()
        ended = end_due_grants(state, now=NOW, batch_size=batch_size)
        elapsed = time.perf_counter() - started
        delivery = state.models.Delivery
        removals = copy.db.session.scalar(
            sa.select(sa.func.count()).select_from(delivery).where(delivery.action == "remove")
        )
    if len(ended.grants) != copy.due or removals != copy.due:
        raise SystemExit(f"{copy.name}: ended {len(ended.grants)}, queued {removals}; expected {copy.due}")
    return elapsed


def warm_up(copy: Copy, batch_size: int) -> None:
    """Untimed: one batch, so statement caches and prepared statements are in place for the timed runs."""
    with copy.app.app_context():
        end_due_grants(get_state(copy.app), now=NOW, batch_size=batch_size, max_batches=1)


def plan(copy: Copy, batch_size: int) -> list[str]:
    """The database's plan for one batch of the sweep (EXPLAIN, which runs nothing)."""
    state = get_state(copy.app)
    with copy.app.app_context(), copy.db.engine.connect() as connection:
        dialect = connection.dialect
        statement = end_batch(state.models.Grant, NOW, batch_size, dialect.name)
        compiled = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        if dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
            return [str(row[-1]) for row in rows]
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled}")
        return [str(row[0]) for row in rows]


def measure(database: str, *, grants: int, due: int, rounds: int, batch_size: int) -> bool:
    with DATABASE_URLS[database]() as (small_url, big_url):
        started = time.monotonic()
        small = build("small", small_url, grants=due, due=due)
        big = build("big", big_url, grants=grants, due=due)
        seeded = time.monotonic() - started
        print(f"\n{database}: seeded {small.grants} and {big.grants} grants in {seeded:.1f} s")
        try:
            lines = plan(big, batch_size)
            print("  plan of one batch (big copy):\n    " + "\n    ".join(lines))
            uses_index = any(INDEX in line for line in lines)
            for copy in (small, big):
                warm_up(copy, batch_size)
                reset(copy)
            for number in range(rounds):
                pair = (small, big) if number % 2 == 0 else (big, small)
                for copy in pair:
                    copy.times.append(sweep(copy, batch_size))
                    reset(copy)
        finally:
            for copy in (small, big):
                with copy.app.app_context():
                    copy.db.session.remove()
                    copy.db.engine.dispose()
    small_median, big_median = statistics.median(small.times), statistics.median(big.times)
    ratio = big_median / small_median
    print(f"  sweep of {due} due among {small.grants:>7} grants: median {small_median * 1000:8.1f} ms")
    print(f"  sweep of {due} due among {big.grants:>7} grants: median {big_median * 1000:8.1f} ms")
    verdict = "ok" if ratio <= TARGET else "OVER TARGET"
    print(f"  ratio big/small: {ratio:.2f} (target <= {TARGET}) {verdict}")
    print(f"  the plan reads {INDEX}: {'yes' if uses_index else 'NO'}")
    return ratio <= TARGET and uses_index


@contextmanager
def sqlite_urls() -> Iterator[tuple[str, str]]:
    with sqlite_files("small.sqlite", "big.sqlite", prefix="expiry-sweep-") as (small, big):
        yield small, big


@contextmanager
def postgresql_urls() -> Iterator[tuple[str, str]]:
    with postgresql_schemas(2) as (small, big):
        yield small, big


DATABASE_URLS: dict[str, Callable[[], AbstractContextManager[tuple[str, str]]]] = {
    "sqlite": sqlite_urls,
    "postgresql": postgresql_urls,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grants", type=int, default=100_000, help="active grants in the big copy")
    parser.add_argument("--due", type=int, default=1_000, help="grants past their end, in each copy")
    parser.add_argument("--rounds", type=int, default=3, help="timed sweeps per copy, interleaved")
    parser.add_argument("--batch-size", type=int, default=100, help="grants ended per transaction")
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="comma-separated: sqlite, postgresql or both"
    )
    args = parser.parse_args()
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = sorted(set(databases) - set(DATABASES))
    if unknown or not databases:
        parser.error(f"--databases takes {' and/or '.join(DATABASES)}; got {args.databases!r}")
    if args.due < 1 or args.grants < args.due or args.rounds < 1 or args.batch_size < 1:
        parser.error("need 1 <= --due <= --grants, --rounds >= 1 and --batch-size >= 1")

    started = time.monotonic()
    results = [
        measure(database, grants=args.grants, due=args.due, rounds=args.rounds, batch_size=args.batch_size)
        for database in databases
    ]
    print(f"\nwall time: {time.monotonic() - started:.1f} s")
    if not all(results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
