"""pytest plugin (entry point ``pytest11: discord_roles``): a FakeDiscord for every test that asks.

The plugin loads in every pytest run of every project that installs us, so it imports nothing heavy at
import time: the fake itself is imported inside the fixtures, only when a test uses one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flask_discord_roles.testing.fake import FakeDiscord

__all__ = ["fake_discord", "fake_discord_server"]


@pytest.fixture(scope="session")
def fake_discord_server() -> Iterator[FakeDiscord]:
    """One running fake per test session: starting a server per test would cost more than the tests."""
    from flask_discord_roles.testing.fake import FakeDiscord

    with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def fake_discord(fake_discord_server: FakeDiscord) -> Iterator[FakeDiscord]:
    """The session's fake, wiped clean (state, limits, faults, recorded calls) before each test."""
    fake_discord_server.reset()
    yield fake_discord_server
    fake_discord_server.reset()
