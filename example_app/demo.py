"""The demo: the storefront and its Discord sandbox on one machine, offline, seeded and ready to click.

:func:`start_demo` starts FakeDiscord, builds the demo server in it, starts the storefront on a real
port, and sets the store up the way an owner would: save the bot, link the server with ``/link``, map
packages to roles. ``python -m example_app`` and the browser tests both start the demo through it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from flask_discord_roles import bots, guilds, store_settings
from flask_discord_roles.migrations import VERSION_TABLE
from flask_discord_roles.testing import FakeBot, FakeDiscord, FakeGuild

from . import create_app, db, discord_roles, upgrade_database
from .models import Customer, Package

PASSWORD = "demo"  # noqa: S105  (printed on start: the demo accounts are public)
"""Every demo account's password: this is a demo, and the accounts are printed on start."""

PACKAGES = (
    ("Supporter", 500, "A green name in the server and our thanks.", None),
    ("VIP", 1500, "A gold name and the VIP lounge.", None),
    ("Legend", 3000, "A purple name. Its role sits above the bot until the owner fixes it.", None),
    ("Member", 300, "The Member role for as long as you subscribe.", 30),
    ("Bronze", 200, "The Bronze tier, monthly.", 30),
    ("Silver", 400, "The Silver tier, monthly: replaces Bronze.", 30),
    ("Gold", 800, "The Gold tier, monthly: replaces Silver and Bronze.", 30),
)
"""(name, price in cents, description, period in days: None for a one-time purchase)."""
TIER_GROUP = "Tiers"
TIERS = ("Bronze", "Silver", "Gold")
"""One tier group, lowest rank first: a member holds only the highest tier they pay for."""
GRACE_HOURS = 24
"""The store's grace period: a lapsed subscription keeps its role this long after the paid period."""
REMINDER_HOURS = 72
"""The store reminds a member this long before their subscription's paid period ends."""
CUSTOMERS = (
    ("owner@example.com", "Store Owner", True),
    ("alice@example.com", "Alice", False),
    ("bob@example.com", "Bob", False),
)
CHECKOUT_PROMPT = "Link your Discord account and your role arrives the moment you pay."
MANAGE_GUILD = 1 << 5  # Discord shows /link only to members who may manage the server
READ_GUILD, READ_MEMBER = "guild", "guild_member"  # FakeDiscord's rate-limit families for those reads


@dataclass
class Sandbox:
    """FakeDiscord with the demo server: a bot, roles, and Discord users for the demo customers."""

    fake: FakeDiscord
    bot: FakeBot
    guild: FakeGuild
    roles: dict[str, str]  # role name -> role id
    users: dict[str, str] = field(default_factory=dict)  # Discord username -> user id


def start_sandbox() -> Sandbox:
    """Start FakeDiscord and build the demo server: a role per package, which the bot can give, and a
    Moderator role above the bot that it never can."""
    fake = FakeDiscord()
    fake.start()
    # Seeding checks each of the seven mapped roles with Discord (the server's roles and the bot's member)
    # in its first second, and the owner's pages read them again: at the fake's ballpark 10 reads per 10
    # seconds, the demo's first pages would wait out a rate limit. Discord does not publish these limits;
    # the demo's server allows more reads, and role changes keep the fake's observed limit.
    for family in (READ_GUILD, READ_MEMBER):
        fake.set_route_limit(family, 50, 10.0)
    bot = fake.create_bot("Demo Store Bot")
    owner = fake.create_user("storeowner", global_name="Store Owner")
    guild = fake.create_guild("Demo Server", owner_id=owner.id)
    roles = {}
    for name, color in (
        ("Supporter", 0x2ECC71),
        ("VIP", 0xF1C40F),
        ("Legend", 0x9B59B6),
        ("Member", 0x3498DB),
        ("Bronze", 0xCD7F32),
        ("Silver", 0xC0C0C0),
        ("Gold", 0xFFD700),
    ):
        roles[name] = fake.create_role(guild.id, name, color=color).id
    fake.add_bot_to_guild(bot, guild.id)
    fake.create_role(guild.id, "Moderator", color=0xE74C3C, position=99)
    users = {"storeowner": owner.id}
    for username, global_name in (("alice", "Alice"), ("bob", "Bob")):
        user = fake.create_user(username, global_name=global_name)
        fake.add_member(guild.id, user.id)
        users[username] = user.id
    return Sandbox(fake=fake, bot=bot, guild=guild, roles=roles, users=users)


def reset_database(app: Flask) -> None:
    """Empty the database and migrate it again (the extension's tables, then the shop's): FakeDiscord starts
    empty every time, so rows from an earlier run would point at servers and users that no longer exist."""
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            for version_table in ("alembic_version", VERSION_TABLE):
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {version_table}"))
        upgrade_database()
        db.session.remove()


def seed_store(app: Flask, sandbox: Sandbox, webhook_url: str) -> None:
    """Set the store up as its owner would, through the extension's public API and the sandbox.

    The storefront must already be answering ``webhook_url``: the server is linked by running
    ``/link`` in it, which Discord (here, the sandbox) posts to the webhook.
    """
    store_id = app.config["STORE_ID"]
    fake, guild = sandbox.fake, sandbox.guild
    with app.app_context():
        packages = {}
        for name, cents, description, period_days in PACKAGES:
            packages[name] = Package(
                name=name, price_cents=cents, description=description, period_days=period_days
            )
        db.session.add_all(packages.values())
        for email, name, is_owner in CUSTOMERS:
            customer = Customer(email=email, name=name, is_owner=is_owner)
            customer.set_password(PASSWORD)
            db.session.add(customer)
        bots.save_bot(
            store_id,
            application_id=sandbox.bot.application_id,
            public_key=sandbox.bot.public_key,
            bot_token=sandbox.bot.token,
            client_secret=sandbox.bot.client_secret,  # customers link through the store's own app
        )
        store_settings.update_settings(
            store_id,
            checkout_prompt=CHECKOUT_PROMPT,
            grace_hours=GRACE_HOURS,
            expiry_reminder_hours=REMINDER_HOURS,
            # Server admins can require "Verified buyer" on any role (registers the fields with Discord).
            linked_roles_enabled=True,
        )
        issued = guilds.create_link_code(store_id)
        db.session.commit()
        package_ids = {name: package.id for name, package in packages.items()}

    # The server's owner runs /link with the code, in the server, as the dashboard tells them to.
    fake.set_interactions_url(sandbox.bot, webhook_url)
    payload = fake.command_payload(
        sandbox.bot,
        guild.id,
        sandbox.users["storeowner"],
        "link",
        {"code": issued.code},
        member_permissions=str(MANAGE_GUILD),
    )
    answer = fake.send_interaction(webhook_url, sandbox.bot, payload)
    if answer.status_code != 200 or "now linked" not in answer.text:
        raise RuntimeError(f"the demo server could not be linked: {answer.status_code} {answer.text[:200]}")

    with app.app_context():
        for name, package_id in package_ids.items():
            # The tiers share a group: holding Silver replaces Bronze, and Bronze comes back if Silver lapses.
            tier = name in TIERS
            guilds.create_mapping(
                store_id,
                str(package_id),
                guild.id,
                sandbox.roles[name],
                group=TIER_GROUP if tier else None,
                rank=TIERS.index(name) + 1 if tier else None,
            )
        db.session.commit()
    # A server admin then drags Legend above the bot's role: Legend purchases fail until the owner
    # follows the diagnostic's fix. This is the most common real-world delivery failure.
    bot_role = next(role for role in fake.guild(guild.id).roles.values() if role.bot_id is not None)
    fake.move_role(guild.id, sandbox.roles["Legend"], bot_role.position)  # just above the bot


@dataclass
class Demo:
    """A running demo: the storefront at :attr:`url`, FakeDiscord and its sandbox pages beside it."""

    app: Flask
    sandbox: Sandbox
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def webhook_url(self) -> str:
        """Where the sandbox posts the interactions people send there: the store's webhook."""
        with self.app.app_context():
            return bots.interactions_url(self.app.config["STORE_ID"], base_url=self.url)

    @property
    def guild_page(self) -> str:
        return f"{self.sandbox.fake.sandbox_url}/guilds/{self.sandbox.guild.id}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
        discord_roles.shutdown(self.app)
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()
        self.sandbox.fake.stop()


def _starting(environ: Any, start_response: Any) -> list[bytes]:
    """What the bound server answers until the storefront is built (it serves nothing before)."""
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"The demo is starting."]


def start_demo(*, host: str = "127.0.0.1", port: int = 5000, config: dict[str, Any] | None = None) -> Demo:
    """Start FakeDiscord and the storefront (``port=0``: any free port), reset the database, seed it."""
    sandbox = start_sandbox()
    # The server is bound first: the shop's public address (its port may be any free one) is a setting
    # the app needs when it is created.
    try:
        server = make_server(host, port, _starting, threaded=True)
    except BaseException:
        sandbox.fake.stop()
        raise
    try:
        app = create_app(
            {
                "DISCORD_ROLES_API_BASE_URL": sandbox.fake.api_base_url,
                "DISCORD_ROLES_PUBLIC_BASE_URL": f"http://{server.host}:{server.port}",
                "DEMO_GUILD_ID": sandbox.guild.id,
                # The dashboard's "Skip to its end" button: see a subscription lapse without waiting.
                "DEMO_CLOCK": True,
                **(config or {}),
            }
        )
        reset_database(app)
        server.app = app
    except BaseException:
        server.server_close()
        sandbox.fake.stop()
        raise
    # Polled every 50 ms for a stop (the default half second made every stop, Ctrl+C or a test's end, wait).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="demo-storefront", daemon=True
    )
    thread.start()
    demo = Demo(app=app, sandbox=sandbox, server=server, thread=thread)
    try:
        seed_store(app, sandbox, demo.webhook_url)
        sandbox.fake.interactive_consent = True  # a person clicks Authorize, as on Discord
        sandbox.fake.oauth_login_as(sandbox.users["alice"])  # who the sandbox acts as
    except BaseException:
        demo.stop()
        raise
    return demo
