"""Shared test types for the FakeDiscord tests (kept out of conftest.py, which tests do not import)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from flask_discord_roles.testing import FakeBot, FakeDiscord, FakeGuild, FakeRole, FakeUser


@dataclass
class Store:
    """A guild with the store bot at the top, a sellable role below it and a buyer who is a member."""

    fake: FakeDiscord
    bot: FakeBot
    guild: FakeGuild
    bot_role: FakeRole
    role: FakeRole
    buyer: FakeUser
    api: requests.Session

    def url(self, path: str) -> str:
        return self.fake.api_base_url + path

    def role_url(self, role_id: str | None = None, user_id: str | None = None) -> str:
        user = user_id or self.buyer.id
        return self.url(f"/guilds/{self.guild.id}/members/{user}/roles/{role_id or self.role.id}")
