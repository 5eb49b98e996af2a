"""Saving a bot registers our slash commands; `flask discord-roles register-commands` does it again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._core.bots import save_bot
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.discord.commands import COMMANDS
from flask_discord_roles.testing import FakeDiscord
from tests.shop import open_shop

# One attempt per call, so an injected 500 is a failure rather than a retry.
pytestmark = pytest.mark.app_settings(DISCORD_ROLES_HTTP_MAX_RETRIES=0)


def _registered(app: Flask, db: SQLAlchemy, store_id: str = "store-1") -> bool:
    bot = get_state(app).models.StoreBot
    db.session.expire_all()
    return bool(db.session.scalar(sa.select(bot.slash_commands_registered).where(bot.store_id == store_id)))


def test_saving_a_bot_registers_claim_check_help_and_link_for_servers(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    shop = open_shop(app, db, fake_discord)
    commands = {command["name"]: command for command in fake_discord.commands(shop.bot.application_id)}
    assert set(commands) == {"claim", "check", "help", "link"}
    assert all(command["contexts"] == [0] for command in commands.values()), "server-only commands"
    assert commands["link"]["default_member_permissions"] == "32", "only Manage Server sees /link"
    assert commands["claim"]["options"][0]["name"] == "code"
    assert commands["claim"]["options"][0]["required"] is False
    assert _registered(app, db)


def test_a_failed_registration_keeps_the_bot_and_the_cli_registers_again(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    fake_discord.set_faults(error_rate=1.0, routes=["commands"])
    save_bot(
        get_state(app),
        "store-1",
        application_id=bot.application_id,
        public_key=bot.public_key,
        bot_token=bot.token,
    )
    db.session.commit()
    assert not _registered(app, db), "the bot is saved, and says its commands still need registering"
    assert fake_discord.commands(bot.application_id) == []

    failing = app.test_cli_runner().invoke(args=["discord-roles", "register-commands"])
    assert failing.exit_code == 1
    assert "store-1: not registered: Discord answered 5" in failing.output

    fake_discord.set_faults()
    result = app.test_cli_runner().invoke(args=["discord-roles", "register-commands", "--store", "store-1"])
    assert result.exit_code == 0, result.output
    assert "store-1: commands registered" in result.output
    assert _registered(app, db)
    assert {command["name"] for command in fake_discord.commands(bot.application_id)} == {
        command["name"] for command in COMMANDS
    }


def test_register_commands_for_an_unknown_store_says_so(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["discord-roles", "register-commands", "--store", "nope"])
    assert result.exit_code == 1
    assert "No bot is saved for store 'nope'" in result.output
