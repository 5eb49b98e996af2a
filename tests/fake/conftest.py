"""Fixtures for the FakeDiscord tests: a store bot in a guild, and HTTP sessions that get closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from flask_discord_roles.testing import FakeDiscord
from tests.fake.helpers import Store


@pytest.fixture
def session_factory() -> Iterator[Callable[..., requests.Session]]:
    sessions: list[requests.Session] = []

    def make(authorization: str | None = None) -> requests.Session:
        session = requests.Session()
        if authorization:
            session.headers["Authorization"] = authorization
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def store(fake_discord: FakeDiscord, session_factory: Callable[..., requests.Session]) -> Store:
    fake = fake_discord
    bot = fake.create_bot("Store Bot")
    guild = fake.create_guild("Shop")
    role = fake.create_role(guild.id, "VIP")
    bot_role = fake.add_bot_to_guild(bot, guild.id)
    buyer = fake.create_user("buyer", global_name="Buyer")
    fake.add_member(guild.id, buyer.id)
    api = session_factory(f"Bot {bot.token}")
    return Store(fake, bot, guild, bot_role, role, buyer, api)
