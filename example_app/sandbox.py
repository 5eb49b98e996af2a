"""The demo's Discord: a FakeDiscord on loopback, seeded with a bot, a server and its roles."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from sqlalchemy import select

from flask_discord_roles import get_state
from flask_discord_roles.services.bots import save_bot
from flask_discord_roles.testing import FakeBot, FakeDiscord, FakeGuild

from . import db
from .models import Package

PACKAGES = (("Supporter", 500), ("VIP", 1500), ("Legend", 3000))


@dataclass
class Sandbox:
    fake: FakeDiscord
    bot: FakeBot
    guild: FakeGuild


def start_sandbox() -> Sandbox:
    """Start FakeDiscord and build the demo server: roles below the bot, and one deliberately above it."""
    fake = FakeDiscord()
    fake.start()
    bot = fake.create_bot("Demo Store Bot")
    guild = fake.create_guild("Demo Server")
    for name, color in (("Supporter", 0x2ECC71), ("VIP", 0xF1C40F), ("Legend", 0x9B59B6)):
        fake.create_role(guild.id, name, color=color)
    fake.add_bot_to_guild(bot, guild.id)
    # Above the bot on purpose: the bot can never hand this one out (diagnostics will say why).
    fake.create_role(guild.id, "Moderator", color=0xE74C3C)
    for username in ("alice", "bob"):
        user = fake.create_user(username)
        fake.add_member(guild.id, user.id)
    return Sandbox(fake=fake, bot=bot, guild=guild)


def seed_store(app: Flask, sandbox: Sandbox) -> None:
    """Create the packages once, and save this run's bot credentials through the extension."""
    with app.app_context():
        if db.session.scalars(select(Package).limit(1)).first() is None:
            db.session.add_all(Package(name=name, price_cents=cents) for name, cents in PACKAGES)
        save_bot(
            get_state(),
            app.config["STORE_ID"],
            application_id=sandbox.bot.application_id,
            public_key=sandbox.bot.public_key,
            bot_token=sandbox.bot.token,
        )
        db.session.commit()
