"""After the database drops every pooled connection (a restart, a failover, an idle timeout), the next
run and the next request still work.

Our own engine use (worker, runner, senders) retries a unit of work once on a fresh connection; the
host's request session is covered by ``pool_pre_ping``, which the docs recommend (quickstart, deploying).
PostgreSQL only: SQLite has no server to drop connections.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._engine.worker import Worker
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from tests.conftest import POSTGRES_URL
from tests.shop import FAST_QUEUE, Shop, open_shop

pytestmark = pytest.mark.serial  # deadlines and rate-limit windows: not beside other busy workers


@contextmanager
def pooled_shop(make_app: Any, database_url: str, fake: FakeDiscord, *, pre_ping: bool) -> Iterator[Shop]:
    """A shop whose engine keeps a real pool (the suite's apps use NullPool), its connections tagged with
    an application name so the server can find them."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server that could drop pooled connections")
    options: dict[str, Any] = {
        "pool_size": 5,
        "pool_pre_ping": pre_ping,
        "connect_args": {"application_name": f"stale-{uuid.uuid4().hex[:12]}"},
    }
    app, db, _ = make_app(
        database_url,
        **{**FAST_QUEUE, "DISCORD_ROLES_EXECUTOR": "worker"},
        DISCORD_ROLES_API_BASE_URL=fake.api_base_url,
        SQLALCHEMY_ENGINE_OPTIONS=options,
    )
    with app.app_context():
        db.create_all()
        shop = open_shop(app, db, fake)
        shop.map("vip", "VIP")
        try:
            yield shop
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
            get_state(app).clients.close()


def _drop_the_apps_connections(db: SQLAlchemy) -> int:
    """What a database restart does to the app: every one of its connections is closed by the server."""
    tag = _application_name(db)
    admin = sa.create_engine(POSTGRES_URL, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as connection:
            killed = connection.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :tag"
                ),
                {"tag": tag},
            )
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and connection.scalar(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :tag"), {"tag": tag}
            ):
                # A transaction reads pg_stat_activity once and then keeps that snapshot: without
                # this the loop saw the killed backends until its deadline, every time.
                connection.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
                time.sleep(0.02)
    finally:
        admin.dispose()
    return int(killed or 0)


def _application_name(db: SQLAlchemy) -> str:
    app: Flask = current_app
    return str(app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["application_name"])


def _pooled_connections(db: SQLAlchemy) -> int:
    return int(db.engine.pool.checkedin())  # type: ignore[attr-defined]


def test_a_worker_pass_after_the_database_dropped_its_connections_delivers_without_an_error(
    make_app: Any, database_url: str, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    with pooled_shop(make_app, database_url, fake_discord, pre_ping=False) as shop:
        _deliver_after_the_drop(shop, caplog)


def _deliver_after_the_drop(shop: Shop, caplog: pytest.LogCaptureFixture) -> None:
    buyer = shop.member("alice")
    Worker(shop.app, threads=1).run(once=True)  # the worker's connections are in the pool now
    shop.buy("order-1", "vip", buyer=buyer)
    shop.db.session.remove()
    assert _pooled_connections(shop.db) >= 1
    assert _drop_the_apps_connections(shop.db) >= 1, "the app's pooled connections were found and closed"

    with caplog.at_level(logging.WARNING):
        totals = Worker(shop.app, threads=1).run(once=True)

    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [], f"one stale connection must not fail the pass: {errors}"
    assert totals.completed == 1, "the order's role is delivered in the first pass after the drop"
    assert shop.roles_of(buyer) == {"VIP"}


def test_with_pool_pre_ping_the_next_request_after_the_drop_is_answered(
    make_app: Any, database_url: str, fake_discord: FakeDiscord
) -> None:
    with pooled_shop(make_app, database_url, fake_discord, pre_ping=True) as shop:
        _answer_after_the_drop(shop)


def _answer_after_the_drop(shop: Shop) -> None:
    client = shop.app.test_client()
    url = "/webhook/discord/interactions/store-1"
    member = shop.member("alice")
    first = shop.fake.send_interaction(
        url, shop.bot, shop.fake.command_payload(shop.bot, shop.guild_id, member, "help"), client=client
    )
    assert first.status_code == 200
    shop.db.session.remove()
    assert _drop_the_apps_connections(shop.db) >= 1

    for command in ("help", "check", "claim"):
        payload = shop.fake.command_payload(shop.bot, shop.guild_id, member, command)
        answer = shop.fake.send_interaction(url, shop.bot, payload, client=client)
        assert answer.status_code == 200, (
            f"/{command} after the drop: {answer.status_code} {answer.text[:200]}"
        )
