"""Saving a store's bot: validation, the token checked with Discord, and the token encrypted at rest."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._core.bots import client_for, get_bot, save_bot
from flask_discord_roles._runtime.models import StoreBot
from flask_discord_roles._runtime.state import DiscordRolesState, get_state
from flask_discord_roles.errors import ValidationError
from flask_discord_roles.testing import FakeBot, FakeDiscord


def _save(state: DiscordRolesState, bot: FakeBot, **changes: str) -> StoreBot:
    fields = {
        "application_id": bot.application_id,
        "public_key": bot.public_key,
        "bot_token": bot.token,
        **changes,
    }
    return save_bot(state, "store-1", **fields)


@pytest.fixture
def state(app: Flask, fake_discord: FakeDiscord) -> DiscordRolesState:
    return get_state(app)


def test_save_bot_checks_the_token_with_discord_and_encrypts_it(
    state: DiscordRolesState, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    saved = _save(state, bot, public_key=bot.public_key.upper())
    db.session.commit()
    assert saved.bot_user_id == bot.user_id
    assert saved.bot_name == "Shop Bot"
    assert saved.public_key == bot.public_key.lower()

    raw = db.session.execute(sa.text("SELECT token_ciphertext FROM discord_roles_bots")).scalar_one()
    assert bot.token not in raw, "the bot token must be encrypted at rest"
    assert state.cipher.decrypt(raw) == bot.token
    assert bot.token not in repr(saved)

    guild = fake_discord.create_guild("G")
    fake_discord.add_bot_to_guild(bot, guild.id)
    stored = get_bot(state, "store-1")
    assert stored is not None
    roles = client_for(state, stored).get_guild_roles(guild.id)
    assert guild.id in {role["id"] for role in roles}, "the stored token talks to Discord as the bot"


def test_saving_again_replaces_the_credentials(
    state: DiscordRolesState, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    first, second = fake_discord.create_bot("One"), fake_discord.create_bot("Two")
    for bot in (first, second):
        _save(state, bot)
        db.session.commit()
    rows = db.session.scalars(sa.select(state.models.StoreBot)).all()
    assert len(rows) == 1
    assert rows[0].application_id == second.application_id


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"application_id": "12ab"}, "application_id"),
        ({"application_id": "123"}, "application_id"),
        ({"public_key": "xyz"}, "public_key"),
        ({"public_key": "a" * 63}, "public_key"),
        ({"bot_token": ""}, "bot_token"),
        ({"bot_token": "has space"}, "bot_token"),
    ],
)
def test_malformed_credentials_are_refused_per_field_and_nothing_is_saved(
    state: DiscordRolesState,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    fields: dict[str, str],
    bad_field: str,
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    with pytest.raises(ValidationError) as excinfo:
        _save(state, bot, **fields)
    assert set(excinfo.value.errors) == {bad_field}
    assert fake_discord.calls == [], "malformed input must not reach Discord"
    assert db.session.scalars(sa.select(state.models.StoreBot)).all() == []


def test_a_token_discord_refuses_is_a_field_error_not_a_crash(
    state: DiscordRolesState, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    fake_discord.revoke_bot_token(bot)
    with pytest.raises(ValidationError) as excinfo:
        _save(state, bot)
    assert "bot_token" in excinfo.value.errors
    assert bot.token not in str(excinfo.value.errors)
    assert db.session.scalars(sa.select(state.models.StoreBot)).all() == []
