"""What queueing a paid order's roles adds to the storefront's own checkout request.

Two copies of the same small storefront are built per database: identical ``Order`` model and identical
``POST /checkout`` view (INSERT the order, flush, send ``order_completed``, commit, answer 201). The only
difference is that one of them has ``DiscordRoles`` initialised, with three packages each mapped to a role,
so every checkout there queues exactly three deliveries (a few SELECTs and one multi-row INSERT in the
host's transaction). ``DISCORD_ROLES_EXECUTOR = "worker"``, so nothing else runs in the web process: what
is measured is the enqueue inside the request. The other copy sends the signal too, but nothing listens
(the signal is muted during its requests, since the first copy's receiver lives in the same process).

Each copy gets its own database, as a host would have: a new SQLite file in a temporary directory, or a
new PostgreSQL schema (dropped at the end), both behind SQLAlchemy's normal connection pool. Requests go
through ``app.test_client()``, so the figures are Flask + SQLAlchemy + the database, without HTTP.

After a warm-up the two copies take turns request by request: each round is ``--checkouts`` pairs, one
checkout on each copy (which copy goes first in a pair alternates by round), for ``--rounds`` rounds, so a
slow patch of a shared machine lands on both alike. Each request is timed on its own; the figure per copy
is the median over all its requests, and the ratio with/without is the number
to watch (target <= 1.05). At the end the benchmark checks that the extension's copy holds exactly three
deliveries per checkout, so the ratio is known to include the real work, and counts the SQL statements of
one more checkout on each copy.

``--floor`` (PostgreSQL) then measures, side by side in the same way, what no enqueue can go below
while the order's rows are written in the host's transaction:

- *present, not listening*: the extension's copy with the signal muted (its hooks, its routes);
- *one empty round trip*: the signal heard, but ``discord_roles_enqueue_order`` replaced (in the copy's own
  schema) by a function with the same parameters that does nothing: the receiver, the values sent, one
  round trip, no row written.

    python benchmarks/checkout_overhead.py [--checkouts 200] [--rounds 8] [--databases sqlite,postgresql] \
        [--floor]

PostgreSQL is reached at DISCORD_ROLES_TEST_POSTGRES_URL (the test suite's variable), by default
postgresql+psycopg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, render_template_string, request
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks._databases import postgresql_schemas, sqlite_files
from flask_discord_roles import DiscordRoles, order_completed
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.sql_functions import ENQUEUE_ORDER_LATEST
from flask_discord_roles._runtime.state import get_state

DATABASES = ("sqlite", "postgresql")
TARGET = 1.05

STORE_ID = "store-1"
GUILD_ID = "400000000000000001"
# Three packages, each granting its own role: every checkout of all three queues three deliveries.
ROLES = {"vip": "410000000000000001", "supporter": "410000000000000002", "course": "410000000000000003"}
PACKAGE_IDS = list(ROLES)


@dataclass
class Storefront:
    """One copy of the host app, with the client that shops in it."""

    name: str
    app: Flask
    db: SQLAlchemy
    order_model: type[Any]
    client: FlaskClient
    with_extension: bool
    checkouts: int = 0
    times: list[float] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)


RECEIPT = """<h1>Thank you for your order #{{ order.id }}</h1>
<table>{% for item in items %}
<tr><td>{{ item.name }}</td><td>{{ "%.2f"|format(item.price_cents / 100) }}</td></tr>
{% endfor %}</table><p>Total: {{ "%.2f"|format(order.total_cents / 100) }} ({{ payment.provider_ref }})</p>"""


def build_storefront(database_url: str, *, with_extension: bool) -> tuple[Flask, SQLAlchemy, type[Any]]:
    """The host app as a storefront would write it; ``with_extension`` only decides DiscordRoles(app).

    Its checkout is the request a shop runs when an order is paid, kept lean: look up the packages and
    the customer, write the order, its items and the payment, take the stock, queue the receipt email
    (rendered from a template) and commit. No payment-provider call is included, though a real checkout
    usually makes one: it would only dilute the figure.
    """

    class Base(DeclarativeBase):
        pass

    class Package(Base):
        __tablename__ = "shop_packages"

        id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(100))
        price_cents: Mapped[int]
        stock: Mapped[int]

    class Customer(Base):
        __tablename__ = "shop_customers"

        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(255), unique=True)

    class Order(Base):
        __tablename__ = "shop_orders"

        id: Mapped[int] = mapped_column(primary_key=True)
        store_id: Mapped[str] = mapped_column(sa.String(64))
        customer_id: Mapped[int] = mapped_column(sa.ForeignKey("shop_customers.id"))
        discord_user_id: Mapped[str | None] = mapped_column(sa.String(20))
        total_cents: Mapped[int]
        status: Mapped[str] = mapped_column(sa.String(16))
        created_at: Mapped[datetime] = mapped_column(
            sa.DateTime(timezone=True), default=lambda: datetime.now(UTC)
        )

    class OrderItem(Base):
        __tablename__ = "shop_order_items"

        id: Mapped[int] = mapped_column(primary_key=True)
        order_id: Mapped[int] = mapped_column(sa.ForeignKey("shop_orders.id"), index=True)
        package_id: Mapped[str] = mapped_column(sa.ForeignKey("shop_packages.id"))
        name: Mapped[str] = mapped_column(sa.String(100))
        price_cents: Mapped[int]

    class Payment(Base):
        __tablename__ = "shop_payments"

        id: Mapped[int] = mapped_column(primary_key=True)
        order_id: Mapped[int] = mapped_column(sa.ForeignKey("shop_orders.id"), index=True)
        provider_ref: Mapped[str] = mapped_column(sa.String(64), unique=True)
        amount_cents: Mapped[int]

    class Email(Base):
        __tablename__ = "shop_email_outbox"

        id: Mapped[int] = mapped_column(primary_key=True)
        to: Mapped[str] = mapped_column(sa.String(255))
        subject: Mapped[str] = mapped_column(sa.String(255))
        html: Mapped[str] = mapped_column(sa.Text)

    app = Flask("storefront")
    app.config.update(
        SECRET_KEY="benchmark",
        SQLALCHEMY_DATABASE_URI=database_url,
        DISCORD_ROLES_ENCRYPTION_KEYS=[generate_key()],
        DISCORD_ROLES_PUBLIC_BASE_URL="http://127.0.0.1",
        # Deliveries run in `flask discord-roles worker`, so the request does nothing but queue them.
        DISCORD_ROLES_EXECUTOR="worker",
    )
    db = SQLAlchemy(app, model_class=Base)

    @app.post("/checkout")
    def checkout() -> tuple[dict[str, Any], int]:
        body = request.get_json()
        package_ids = [str(package_id) for package_id in body["package_ids"]]
        email = str(body["email"]).strip().lower()
        if "@" not in email:
            return {"error": "email"}, 422
        packages = db.session.scalars(sa.select(Package).where(Package.id.in_(package_ids))).all()
        if len(packages) != len(package_ids) or any(package.stock < 1 for package in packages):
            return {"error": "unavailable"}, 409
        customer = db.session.scalar(sa.select(Customer).where(Customer.email == email))
        if customer is None:
            customer = Customer(email=email)
            db.session.add(customer)
        order = Order(
            store_id=STORE_ID,
            customer=customer,
            discord_user_id=body.get("discord_user_id"),
            total_cents=sum(package.price_cents for package in packages),
            status="paid",
        )
        items = [
            OrderItem(order=order, package_id=p.id, name=p.name, price_cents=p.price_cents) for p in packages
        ]
        payment = Payment(order=order, provider_ref=body["payment_ref"], amount_cents=order.total_cents)
        db.session.add_all([order, *items, payment])
        for package in packages:
            package.stock -= 1
        db.session.flush()
        # In the order's transaction: its roles are queued if and only if the order commits.
        order_completed.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            store_id=STORE_ID,
            order_id=str(order.id),
            customer_id=str(customer.id),
            package_ids=package_ids,
            discord_user_id=order.discord_user_id,
        )
        html = render_template_string(RECEIPT, order=order, items=items, payment=payment)
        db.session.add(Email(to=email, subject=f"Your order #{order.id}", html=html))
        db.session.commit()
        return {"order_id": order.id, "total_cents": order.total_cents}, 201

    # The relationships the view uses, declared after the classes so each can name the others.
    Order.customer = sa.orm.relationship(Customer)  # type: ignore[attr-defined]
    OrderItem.order = sa.orm.relationship(Order)  # type: ignore[attr-defined]
    Payment.order = sa.orm.relationship(Order)  # type: ignore[attr-defined]

    if with_extension:
        DiscordRoles(app, db=db)
    app.config["PACKAGE_MODEL"] = Package
    return app, db, Order


def setup_storefront(name: str, database_url: str, *, with_extension: bool) -> Storefront:
    app, db, order_model = build_storefront(database_url, with_extension=with_extension)
    with app.app_context():
        db.create_all()
        package = app.config["PACKAGE_MODEL"]
        db.session.add_all(
            package(id=package_id, name=package_id.title(), price_cents=500, stock=10**9)
            for package_id in PACKAGE_IDS
        )
        db.session.commit()
        if with_extension:
            mapping = get_state(app).models.RoleMapping
            db.session.add(get_state(app).models.LinkedGuild(store_id=STORE_ID, guild_id=GUILD_ID))
            db.session.add_all(
                mapping(
                    store_id=STORE_ID,
                    package_id=package_id,
                    guild_id=GUILD_ID,
                    role_id=role_id,
                    role_name=package_id.upper(),
                )
                for package_id, role_id in ROLES.items()
            )
            db.session.commit()
    return Storefront(name, app, db, order_model, app.test_client(), with_extension)


def checkout_payload(number: int) -> dict[str, Any]:
    return {
        "customer_id": f"customer-{number}",
        "email": f"customer-{number}@example.com",
        "package_ids": PACKAGE_IDS,
        "discord_user_id": str(500000000000000000 + number % 100),
        "payment_ref": f"pay_{uuid.uuid4().hex}",
    }


def listeners(store: Storefront) -> AbstractContextManager[None]:
    """The baseline runs with nothing listening to the signal, as in a process without the extension."""
    return nullcontext() if store.with_extension else order_completed.muted()


def checkout_once(store: Storefront) -> float:
    """One checkout request on ``store``; its time in seconds (payload and muting outside the clock)."""
    payload = checkout_payload(store.checkouts)
    with listeners(store):
        started = time.perf_counter()
        response = store.client.post("/checkout", json=payload)
        elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"{store.name}: checkout answered {response.status_code}: {response.text}")
    store.checkouts += 1
    return elapsed


def shop(store: Storefront, count: int) -> None:
    """``count`` untimed checkouts: warm-up, or the extra one whose statements are counted."""
    for _ in range(count):
        checkout_once(store)


def shop_side_by_side(first: Storefront, second: Storefront, count: int) -> None:
    """``count`` pairs of checkouts, one on each copy in turn, each request timed on its own.

    Alternating request by request (not block by block) means a slow patch of the machine, which on a
    shared host comes and goes within a second, lands on both copies alike instead of on one.
    """
    times: dict[str, list[float]] = {first.name: [], second.name: []}
    for _ in range(count):
        for store in (first, second):
            times[store.name].append(checkout_once(store))
    for store in (first, second):
        store.times.extend(times[store.name])
        store.round_medians.append(statistics.median(times[store.name]))


def count_statements(store: Storefront) -> int:
    """SQL statements sent for one more checkout (COMMIT included), counted outside the timed rounds."""
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(args[2])

    def on_commit(*args: Any) -> None:
        seen.append("COMMIT")

    with store.app.app_context():
        engine = store.db.engine
    sa.event.listen(engine, "before_cursor_execute", on_execute)
    sa.event.listen(engine, "commit", on_commit)
    try:
        shop(store, 1)
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_execute)
        sa.event.remove(engine, "commit", on_commit)
    return len(seen)


def verify(without: Storefront, with_roles: Storefront) -> int:
    """Every checkout made an order on both copies, and queued exactly three deliveries on one."""
    for store in (without, with_roles):
        with store.app.app_context():
            orders = store.db.session.scalar(sa.select(sa.func.count()).select_from(store.order_model))
        assert orders == store.checkouts, f"{store.name}: {orders} orders for {store.checkouts} checkouts"
    with with_roles.app.app_context():
        delivery = get_state(with_roles.app).models.Delivery
        deliveries = with_roles.db.session.scalar(
            sa.select(sa.func.count()).where(delivery.store_id == STORE_ID, delivery.action == "add")
        )
    expected = len(ROLES) * with_roles.checkouts
    assert deliveries == expected, (
        f"{with_roles.name}: {deliveries} deliveries queued, expected {len(ROLES)} per checkout "
        f"x {with_roles.checkouts} checkouts = {expected}; the benchmark did not measure the real work"
    )
    return deliveries


def close(store: Storefront) -> None:
    with store.app.app_context():
        store.db.session.remove()
        store.db.engine.dispose()
        if store.with_extension:
            state = get_state(store.app)
            state.clients.close()
            # The receivers would go with the app, but only once nothing refers to it any more: the next
            # database's pair must not pay for this copy's receiver returning early.
            for receiver in state.receivers:
                order_completed.disconnect(receiver)


@contextmanager
def sqlite_urls() -> Iterator[tuple[str, str]]:
    with sqlite_files("without.sqlite", "with.sqlite", prefix="checkout-overhead-") as (without, with_roles):
        yield without, with_roles


@contextmanager
def postgresql_urls() -> Iterator[tuple[str, str]]:
    with postgresql_schemas(2) as (without, with_roles):  # each copy its own schema
        yield without, with_roles


DATABASE_URLS: dict[str, Callable[[], AbstractContextManager[tuple[str, str]]]] = {
    "sqlite": sqlite_urls,
    "postgresql": postgresql_urls,
}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


# The installed function's header (same parameters, so CREATE OR REPLACE keeps its identity) with a
# body that writes nothing and returns no row.
EMPTY_ENQUEUE_ORDER = ENQUEUE_ORDER_LATEST.partition("DECLARE")[0] + "BEGIN\nEND\n$function$"


def side_by_side_ratio(
    without: Storefront, with_roles: Storefront, *, checkouts: int, rounds: int, muted: bool = False
) -> tuple[float, float]:
    """Another ``rounds`` x ``checkouts`` pairs, timed apart from the main figures: (median added, ratio)."""
    times: dict[str, list[float]] = {without.name: [], with_roles.name: []}
    quiet = order_completed.muted if muted else nullcontext
    for number in range(rounds):
        pair = (without, with_roles) if number % 2 == 0 else (with_roles, without)
        for _ in range(checkouts):
            for store in pair:
                with quiet():
                    times[store.name].append(checkout_once(store))
    base, extended = (statistics.median(times[store.name]) for store in (without, with_roles))
    return extended - base, extended / base


def print_floor(without: Storefront, with_roles: Storefront, *, checkouts: int, rounds: int) -> None:
    """What the extension costs a checkout before its enqueue does any work (PostgreSQL)."""
    added, ratio = side_by_side_ratio(without, with_roles, checkouts=checkouts, rounds=rounds, muted=True)
    print(f"  floor, present but not listening:      {added * 1000:+.3f} ms/checkout  ratio {ratio:.3f}")
    with with_roles.app.app_context():
        engine = with_roles.db.engine
        with engine.begin() as connection:
            connection.exec_driver_sql(EMPTY_ENQUEUE_ORDER)
        engine.dispose()  # no pooled connection keeps a plan of the real function
    shop(with_roles, 20)
    added, ratio = side_by_side_ratio(without, with_roles, checkouts=checkouts, rounds=rounds)
    print(f"  floor, one round trip writing nothing: {added * 1000:+.3f} ms/checkout  ratio {ratio:.3f}")


def measure(database: str, *, checkouts: int, rounds: int, warmup: int, floor: bool = False) -> bool:
    """Run both copies on one database side by side; print the figures; True when the target is met.

    With ``floor`` (PostgreSQL only), then print what the extension costs before its enqueue does any
    work (:func:`print_floor`); that changes the extension's copy, so it comes after every check."""
    with ExitStack() as stack:
        url_without, url_with = stack.enter_context(DATABASE_URLS[database]())
        without = setup_storefront("without extension", url_without, with_extension=False)
        stack.callback(close, without)
        with_roles = setup_storefront("with 3 roles", url_with, with_extension=True)
        stack.callback(close, with_roles)
        receivers = len(order_completed.receivers)
        assert receivers == 1, f"order_completed has {receivers} receivers; expected this copy's only"
        executor = getattr(get_state(with_roles.app).settings, "executor", "(setting unknown)")

        for store in (without, with_roles):
            shop(store, warmup)
        for number in range(rounds):
            # Which copy goes first in each pair alternates by round, so neither always follows the other.
            first, second = (without, with_roles) if number % 2 == 0 else (with_roles, without)
            shop_side_by_side(first, second, checkouts)

        statements = {store.name: count_statements(store) for store in (without, with_roles)}
        deliveries = verify(without, with_roles)
        met = report(database, without, with_roles, statements, deliveries, executor, warmup=warmup)
        if floor and database == "postgresql":
            print_floor(without, with_roles, checkouts=checkouts, rounds=max(2, rounds // 2))
        return met


def report(
    database: str,
    without: Storefront,
    with_roles: Storefront,
    statements: dict[str, int],
    deliveries: int,
    executor: str,
    *,
    warmup: int,
) -> bool:
    """Print the main figures of both copies' timed rounds; True when the target is met."""
    rounds, checkouts = len(without.round_medians), len(without.times) // len(without.round_medians)
    base = statistics.median(without.times)
    extended = statistics.median(with_roles.times)
    ratio = extended / base
    round_ratios = [b / a for a, b in zip(without.round_medians, with_roles.round_medians, strict=True)]
    mean_ratio = statistics.fmean(with_roles.times) / statistics.fmean(without.times)
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"{database}: {rounds} rounds x {checkouts} checkouts per copy, after {warmup} warm-up each")
    print(
        f"  without extension:   {ms(base)}/checkout  (median; mean {ms(statistics.fmean(without.times))}, "
        f"{statements[without.name]} SQL statements incl. COMMIT)"
    )
    print(
        f"  with 3 roles queued: {ms(extended)}/checkout  (median; mean "
        f"{ms(statistics.fmean(with_roles.times))}, {statements[with_roles.name]} SQL statements "
        "incl. COMMIT)"
    )
    print(f"  added by queueing:   {ms(extended - base)}/checkout")
    print(f"  ratio with/without:  {ratio:.3f}  (target ≤ {TARGET:.2f})  {verdict}")
    print(
        f"  per-round ratios:    {min(round_ratios):.3f} to {max(round_ratios):.3f}; "
        f"ratio of means {mean_ratio:.3f}"
    )
    print(
        f"  deliveries queued:   {deliveries} = {len(ROLES)} x {with_roles.checkouts} checkouts "
        f"(executor: {executor})"
    )
    return ratio <= TARGET


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkouts", type=int, default=200, help="checkouts per copy in each round")
    parser.add_argument("--rounds", type=int, default=8, help="rounds per copy, interleaved")
    parser.add_argument("--warmup", type=int, default=100, help="untimed checkouts per copy first")
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="comma-separated: sqlite, postgresql or both"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="PostgreSQL: then measure the extension present but not listening, and an enqueue that "
        "writes nothing",
    )
    args = parser.parse_args()
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = sorted(set(databases) - set(DATABASES))
    if unknown or not databases:
        parser.error(f"--databases takes {' and/or '.join(DATABASES)}; got {args.databases!r}")
    if args.checkouts < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--checkouts and --rounds must be at least 1, --warmup at least 0")

    started = time.monotonic()
    results = [
        measure(database, checkouts=args.checkouts, rounds=args.rounds, warmup=args.warmup, floor=args.floor)
        for database in databases
    ]
    print(f"wall time: {time.monotonic() - started:.1f} s")
    if not all(results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
