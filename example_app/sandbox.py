"""The demo's Discord: a FakeDiscord on loopback, seeded with a bot, a server and its roles."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from sqlalchemy import delete, select

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
    roles: dict[str, str]  # role name -> role id


def start_sandbox() -> Sandbox:
    """Start FakeDiscord and build the demo server: roles below the bot, and one deliberately above it."""
    fake = FakeDiscord()
    fake.start()
    bot = fake.create_bot("Demo Store Bot")
    guild = fake.create_guild("Demo Server")
    roles = {}
    for name, color in (("Supporter", 0x2ECC71), ("VIP", 0xF1C40F), ("Legend", 0x9B59B6)):
        roles[name] = fake.create_role(guild.id, name, color=color).id
    fake.add_bot_to_guild(bot, guild.id)
    # Above the bot on purpose: the bot can never hand this one out (diagnostics will say why).
    fake.create_role(guild.id, "Moderator", color=0xE74C3C, position=99)
    for username in ("alice", "bob"):
        user = fake.create_user(username)
        fake.add_member(guild.id, user.id)
    return Sandbox(fake=fake, bot=bot, guild=guild, roles=roles)


def seed_store(app: Flask, sandbox: Sandbox) -> None:
    """Create the packages once, save this run's bot, and map each package to its role in the server.

    The sandbox's server is new on every start, so the mappings are rewritten to its role ids. (The
    tenant API will offer mappings as endpoints; until then the demo writes the rows itself.)
    """
    store_id = app.config["STORE_ID"]
    with app.app_context():
        if db.session.scalars(select(Package).limit(1)).first() is None:
            db.session.add_all(Package(name=name, price_cents=cents) for name, cents in PACKAGES)
            db.session.flush()
        mapping = get_state().models.RoleMapping
        db.session.execute(delete(mapping).where(mapping.store_id == store_id))
        for package in db.session.scalars(select(Package)):
            db.session.add(
                mapping(
                    store_id=store_id,
                    package_id=str(package.id),
                    guild_id=sandbox.guild.id,
                    role_id=sandbox.roles[package.name],
                    role_name=package.name,
                )
            )
        save_bot(
            get_state(),
            store_id,
            application_id=sandbox.bot.application_id,
            public_key=sandbox.bot.public_key,
            bot_token=sandbox.bot.token,
        )
        db.session.commit()
