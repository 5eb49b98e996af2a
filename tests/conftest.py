"""Shared fixtures: an app per test on a clean SQLite file or a fresh PostgreSQL schema.

Every test that takes ``database_url`` (directly or through ``app``/``db``) runs once per database. The
PostgreSQL run never skips: if the server cannot be reached the test fails and says how to start it.

Tests are grouped by area (``engine``, ``api``, ``interactions``, ``linking``, ``discord``, ``fake``,
``example``); an area's ``conftest.py`` sets the ``app_config`` its tests share and the fixtures they use
(a ``shop`` open on FakeDiscord, a client). A module that differs marks itself with
``pytest.mark.app_settings(...)``, or extends a fixture of its folder by requesting it under its own name.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.pytest_plugin import ON_PURPOSE_MARK, SPEC_PROPERTY
from flask_discord_roles.testing.spec import Side
from tests.services import POSTGRESQL, REDIS
from tests.shop import Shop, open_shop
from tests.tables import OurTables, new_schema_name, schema_url

POSTGRES_URL = POSTGRESQL.url
DATABASES = ("sqlite", "postgresql")


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, our_tables: OurTables) -> Iterator[str]:
    """A URL to an empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards (or,
    if it holds exactly our tables, emptied and kept for a later test: see ``tests.tables``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite'}"
        return
    schema = new_schema_name()
    try:
        with our_tables.admin.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({exc.orig}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or set "
            "DISCORD_ROLES_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    try:
        yield schema_url(POSTGRES_URL, schema)
    finally:
        our_tables.release(schema)


# One ``db`` for every host app the tests build, as a storefront's module-level ``db = SQLAlchemy()``
# serves each app its factory makes: our models are mapped onto a ``db`` once, not once per test
# (mapping them costs ~0.1 s, times some 900 tests).
HOST_DB = SQLAlchemy()


def build_host_app(database_url: str, **config: Any) -> tuple[Flask, SQLAlchemy, DiscordRoles]:
    """A small host app the way a storefront would build it."""
    app = Flask("host_app")
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"poolclass": sa.pool.NullPool},
        DISCORD_ROLES_ENCRYPTION_KEYS=[generate_key()],
        # No background threads outliving a test unless the test asks for the thread executor.
        DISCORD_ROLES_EXECUTOR="inline",
    )
    app.config.update(config)
    db = HOST_DB
    db.init_app(app)
    discord_roles = DiscordRoles(app, db=db)
    return app, db, discord_roles


@pytest.fixture
def make_app() -> Any:
    """The host-app factory, for tests that need their own configuration or several apps."""
    return build_host_app


@pytest.fixture
def fresh_app(database_url: str, our_tables: OurTables) -> Iterator[Any]:
    """``fresh_app(**config)``: a host app with its own settings and our tables, on the test's database;
    every app made is disposed of afterwards (the database goes with the test). Several apps share the one
    database, as several processes of one deployment would."""
    made: list[tuple[Flask, SQLAlchemy]] = []

    def build(**config: Any) -> tuple[Flask, SQLAlchemy, DiscordRoles]:
        app, db, discord_roles = build_host_app(database_url, **config)
        if not made:
            our_tables.install(database_url)
        made.append((app, db))
        return app, db, discord_roles

    yield build
    for app, db in reversed(made):
        with app.app_context():
            db.engine.dispose()
        get_state(app).clients.close()


# Python's default (a young collection every 700 new objects) made each test process run a full collection
# every few tests: with a few hundred thousand objects loaded (SQLAlchemy, Flask, the Discord spec) each
# costs ~0.1 s, a fifth of the suite's CPU. Fewer young collections mean few full ones; garbage is still
# collected, a little later, for ~50 MB more memory a process.
YOUNG_COLLECTION_EVERY = 10_000


def pytest_configure(config: pytest.Config) -> None:
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
    config.addinivalue_line(
        "markers",
        "app_settings(*mappings, **settings): settings for the test's app on top of its folder's "
        "app_config (mappings first, then keywords; a module's mark, then a test's own)",
    )


EXECUTOR_THREAD = "discord-roles-executor"


@pytest.fixture(autouse=True)
def _no_delivery_thread_outlives_its_test() -> Iterator[None]:
    """A test that starts the thread executor stops it (``DiscordRoles.shutdown(app)``): one left running
    delivers into the next test's world, and logs into closed streams when the run ends."""
    before = {thread for thread in threading.enumerate() if thread.name == EXECUTOR_THREAD}
    yield
    left = [
        t for t in threading.enumerate() if t.name == EXECUTOR_THREAD and t not in before and t.is_alive()
    ]
    if left:
        pytest.fail(
            f"{len(left)} delivery thread(s) still running after the test: stop the app's executor "
            "(DiscordRoles.shutdown(app), or demo.stop()) before it ends",
            pytrace=False,
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `make test` runs the suite on several pytest-xdist workers with --dist loadgroup: tests marked
    # `serial` share one group, so they run one after another on one worker instead of side by side.
    for item in items:
        if item.get_closest_marker("serial"):
            item.add_marker(pytest.mark.xdist_group("serial"))


def marked_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """What ``@pytest.mark.app_settings(...)`` adds for this test: the module's mark, then the test's."""
    settings: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers("app_settings"))):
        for mapping in mark.args:
            settings.update(mapping)
        settings.update(mark.kwargs)
    return settings


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra settings for the ``app`` fixture. A folder's conftest overrides this fixture with the settings
    its tests share; a module that needs more says so with ``pytest.mark.app_settings``."""
    return {"DISCORD_ROLES_EXECUTOR": "inline"}


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client of the suite's Redis (the one tests.services found or started), checked to answer."""
    client = redis.Redis.from_url(REDIS.url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        pytest.fail(f"Redis is not reachable at {REDIS.url} ({exc}).", pytrace=False)
    yield client
    client.close()


@pytest.fixture(scope="session")
def our_tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OurTables]:
    """Our tables, made once per test process and copied into each test's database."""
    tables = OurTables(HOST_DB, tmp_path_factory.mktemp("template"), POSTGRES_URL)
    yield tables
    tables.close()


@pytest.fixture
def app_and_db(
    database_url: str, app_config: dict[str, Any], our_tables: OurTables, request: pytest.FixtureRequest
) -> Iterator[tuple[Flask, SQLAlchemy]]:
    """The host app with our tables created; talking to FakeDiscord when the test uses ``fake_discord``."""
    config: dict[str, Any] = {**app_config, **marked_settings(request)}
    if "fake_discord" in request.fixturenames:
        config["DISCORD_ROLES_API_BASE_URL"] = request.getfixturevalue("fake_discord").api_base_url
    app, db, _ = build_host_app(database_url, **config)
    our_tables.install(database_url)  # after DiscordRoles(app): it maps our models onto the metadata
    with app.app_context():
        yield app, db
        get_state(app).executor.shutdown()
        db.session.remove()
        db.engine.dispose()
        get_state(app).clients.close()


@pytest.fixture
def app(app_and_db: tuple[Flask, SQLAlchemy]) -> Flask:
    return app_and_db[0]


@pytest.fixture
def db(app_and_db: tuple[Flask, SQLAlchemy]) -> SQLAlchemy:
    return app_and_db[1]


@pytest.fixture
def shop(app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord) -> Shop:
    """A store whose bot is saved and in its server with Manage Roles (see ``tests.shop``); nothing linked
    or mapped yet. A module whose tests need more extends it: ``def shop(shop): shop.map(...)``."""
    return open_shop(app, db, fake_discord)


# Every exchange with the session's FakeDiscord is held to Discord's OpenAPI spec, and a request that breaks
# it gets Discord's 400 (50035). Every break fails the test that caused it: our requests, the fake's answers
# (so a host testing against it sees the Discord of the spec) and our app's interaction answers.
FAILING_SPEC_BREAKS = frozenset(Side)


# DISCORD_ROLES_TEST_CHECK_SPEC=0 turns the checks off (to measure what they cost).
CHECK_SPEC = os.environ.get("DISCORD_ROLES_TEST_CHECK_SPEC", "1") != "0"


@pytest.fixture(scope="session")
def fake_discord_server(fake_discord_server: FakeDiscord) -> FakeDiscord:
    fake_discord_server.check_spec = CHECK_SPEC
    fake_discord_server.strict_spec = CHECK_SPEC
    return fake_discord_server


@pytest.fixture
def discord_spec_failing_sides() -> frozenset[Side]:
    return FAILING_SPEC_BREAKS


_outcomes: Counter[tuple[str, str]] = Counter()
_spec_counts: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # pytest-xdist hands each worker's reports, user properties included, to the controller.
    for name, counts in report.user_properties:
        if name == SPEC_PROPERTY:
            _spec_counts.update(counts)
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        database = "no database"
        for name in DATABASES:
            if f"[{name}" in report.nodeid or f"-{name}]" in report.nodeid or f"-{name}-" in (report.nodeid):
                database = name
        _outcomes[(database, report.outcome)] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _spec_counts:
        terminalreporter.section("spec conformance")
        for side in Side:
            checked, broken = _spec_counts[f"{side} checked"], _spec_counts[f"{side} broken"]
            line = f"{side}s checked: {checked}, broken: {broken}"
            if side == Side.REQUEST and _spec_counts["request broken on purpose"]:
                line += (
                    f" (and {_spec_counts['request broken on purpose']} broken on purpose, by tests marked"
                )
                line += f" {ON_PURPOSE_MARK})"
            terminalreporter.write_line(line)
    if not _outcomes:
        return
    terminalreporter.section("tests per database")
    for database in (*DATABASES, "no database"):
        counts = {outcome: n for (db_name, outcome), n in _outcomes.items() if db_name == database}
        if counts:
            parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            terminalreporter.write_line(f"{database}: {parts}")
