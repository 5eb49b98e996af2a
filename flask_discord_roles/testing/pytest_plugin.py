"""pytest plugin (entry point ``pytest11: discord_roles``): a FakeDiscord for every test that asks.

The plugin loads in every pytest run of every project that installs us, so it imports nothing heavy at
import time: the fake itself is imported inside the fixtures, only when a test uses one.

While a test uses ``fake_discord``, our Discord clients refuse any request to the real Discord: an app
still pointed at discord.com fails at once with the setting to change, and never sends a test's tokens
over the internet.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flask_discord_roles.testing.fake import FakeDiscord

__all__ = ["fake_discord", "fake_discord_server"]

# Fixtures that build on fake_discord (a ready bot, server, roles and members), kept in their own module.
from flask_discord_roles.testing.fixtures import discord_world

__all__ += ["discord_world"]

POINT_AT_THE_FAKE = (
    "this test uses FakeDiscord, but the app talks to the real Discord. Build the test app with "
    "DISCORD_ROLES_API_BASE_URL = fake_discord.api_base_url in its config (before DiscordRoles(app) or "
    "init_app runs)."
)

_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note whether the test itself failed, so a refusal it already failed on is not reported twice."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture(scope="session")
def fake_discord_server() -> Iterator[FakeDiscord]:
    """One running fake per test session: starting a server per test would cost more than the tests."""
    from flask_discord_roles.testing.fake import FakeDiscord

    with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def fake_discord(fake_discord_server: FakeDiscord, request: pytest.FixtureRequest) -> Iterator[FakeDiscord]:
    """The session's fake, wiped clean (state, limits, faults, recorded calls) before each test.

    Meanwhile a request of ours to discord.com (or discordapp.com, its CDN) raises ``RealDiscordRefused``
    without reaching the network, and the test fails even if the code under test caught that.
    """
    from flask_discord_roles.discord.sessions import refuse_real_discord

    fake_discord_server.reset()
    with refuse_real_discord(POINT_AT_THE_FAKE) as refused:
        yield fake_discord_server
    fake_discord_server.reset()
    if refused and not request.node.stash.get(_CALL_FAILED, False):
        pytest.fail(f"{len(refused)} request(s) to the real Discord: {refused[0]}", pytrace=False)
