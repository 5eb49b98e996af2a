"""pytest plugin (entry point ``pytest11: discord_roles``): a FakeDiscord for every test that asks.

The plugin loads in every pytest run of every project that installs us, so it imports nothing heavy at
import time: the fake itself is imported inside the fixtures, only when a test uses one.

While a test uses ``fake_discord``, our Discord clients refuse any request to the real Discord: an app
still pointed at discord.com fails at once with the setting to change, and never sends a test's tokens
over the internet.

With ``fake_discord_server.check_spec`` on, a test whose exchanges break Discord's OpenAPI spec fails at
teardown with the list of breaks (the sides in ``discord_spec_failing_sides``), and its counts are kept
on its report as the ``discord_spec`` user property. A test that sends what the spec forbids on purpose
says so with ``@pytest.mark.breaks_discord_spec``: its requests are served and do not fail it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flask_discord_roles.testing.fake import FakeDiscord
    from flask_discord_roles.testing.spec import Side, SpecBreak

__all__ = ["discord_spec_failing_sides", "fake_discord", "fake_discord_server"]

# Fixtures that build on fake_discord (a ready bot, server, roles and members), kept in their own module.
from flask_discord_roles.testing.fixtures import discord_world

__all__ += ["discord_world"]

POINT_AT_THE_FAKE = (
    "this test uses FakeDiscord, but the app talks to the real Discord. Build the test app with "
    "DISCORD_ROLES_API_BASE_URL = fake_discord.api_base_url in its config (before DiscordRoles(app) or "
    "init_app runs)."
)

_CALL_FAILED = pytest.StashKey[bool]()
SPEC_PROPERTY = "discord_spec"
ON_PURPOSE_MARK = "breaks_discord_spec"
SHOWN_BREAKS = 20


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ON_PURPOSE_MARK}: the test sends FakeDiscord requests that Discord's spec forbids on purpose "
        "(strict_spec is off for it and its request breaks do not fail it)",
    )


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
def discord_spec_failing_sides() -> frozenset[Side]:
    """Which spec breaks fail a test when ``check_spec`` is on: every ``Side`` (request, response,
    interaction response). Override it in a conftest to only record the others (still in ``spec_breaks``).
    """
    from flask_discord_roles.testing.spec import Side

    return frozenset(Side)


@pytest.fixture
def fake_discord(
    fake_discord_server: FakeDiscord,
    request: pytest.FixtureRequest,
    discord_spec_failing_sides: frozenset[Side],
) -> Iterator[FakeDiscord]:
    """The session's fake, wiped clean (state, limits, faults, recorded calls) before each test.

    Meanwhile a request of ours to discord.com (or discordapp.com, its CDN) raises ``RealDiscordRefused``
    without reaching the network, and the test fails even if the code under test caught that.
    """
    from flask_discord_roles.discord.sessions import refuse_real_discord
    from flask_discord_roles.testing.spec import Side

    fake = fake_discord_server
    on_purpose = request.node.get_closest_marker(ON_PURPOSE_MARK) is not None
    check, strict = fake.check_spec, fake.strict_spec  # a test may change them for itself
    fake.reset()
    if on_purpose:
        fake.strict_spec = False
    try:
        with refuse_real_discord(POINT_AT_THE_FAKE) as refused:
            yield fake
        breaks, counts, checked = fake.spec_breaks, fake.spec_counts(), fake.check_spec
    finally:
        fake.check_spec, fake.strict_spec = check, strict
    fake.reset()
    if checked:
        request.node.user_properties.append((SPEC_PROPERTY, _spec_counts(counts, on_purpose)))
    if request.node.stash.get(_CALL_FAILED, False):
        return
    if refused:
        pytest.fail(f"{len(refused)} request(s) to the real Discord: {refused[0]}", pytrace=False)
    failing_sides = discord_spec_failing_sides - ({Side.REQUEST} if on_purpose else set())
    failing = [b for b in breaks if b.side in failing_sides] if checked else []
    if failing:
        pytest.fail(_describe_breaks(failing), pytrace=False)


def _spec_counts(counts: dict[str, int], on_purpose: bool) -> dict[str, int]:
    if on_purpose:
        counts = dict(counts)
        counts["request broken on purpose"] = counts.pop("request broken", 0)
        counts["request broken"] = 0
    return counts


def _describe_breaks(breaks: list[SpecBreak]) -> str:
    lines = [f"{len(breaks)} break(s) of Discord's OpenAPI spec in exchanges with FakeDiscord:"]
    lines += [f"  {b}" for b in breaks[:SHOWN_BREAKS]]
    if len(breaks) > SHOWN_BREAKS:
        lines.append(f"  ... and {len(breaks) - SHOWN_BREAKS} more (fake_discord.spec_breaks lists them all)")
    return "\n".join(lines)
