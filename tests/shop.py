"""A store wired to FakeDiscord the way a real one is: a saved bot, a guild it is in, roles, mappings.

Tests say what they do in shop terms (``shop.buy(...)``, ``shop.roles_of(buyer)``) and the fake stays
the judge of what happened in Discord.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import order_completed, order_revoked
from flask_discord_roles._core import guilds
from flask_discord_roles._core.bots import save_bot
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.signing import InteractionResult, deliver, sign_interaction
from flask_discord_roles.testing.state import FakeBot

FAST_QUEUE = {
    "DISCORD_ROLES_EXECUTOR": "inline",
    "DISCORD_ROLES_HTTP_TIMEOUT": 2.0,
    "DISCORD_ROLES_HTTP_MAX_RETRIES": 0,  # the queue retries, not the client
    "DISCORD_ROLES_RATE_LIMIT_WAIT": 2.0,  # the first calls of a bucket go one at a time: slack for busy CI
    "DISCORD_ROLES_LEASE_SECONDS": 12.0,
    "DISCORD_ROLES_RETRY_BASE": 0.05,
    "DISCORD_ROLES_RETRY_CAP": 0.2,
    "DISCORD_ROLES_POLL_INTERVAL": 0.1,
}
"""Settings that keep backoff and leases short, so fault tests finish in seconds."""


@dataclass
class Shop:
    app: Flask
    db: SQLAlchemy
    fake: FakeDiscord
    bot: FakeBot
    guild_id: str
    store_id: str = "store-1"
    roles: dict[str, str] = field(default_factory=dict)

    # -- setting up -----------------------------------------------------------------------------------

    def role(self, name: str, **options: Any) -> str:
        role = self.fake.create_role(self.guild_id, name, **options)
        self.roles[name] = role.id
        return role.id

    def map(
        self,
        package_id: str,
        role_name: str,
        *,
        guild_id: str | None = None,
        group: str | None = None,
        rank: int | None = None,
        keep_on_end: bool = False,
    ) -> None:
        """Map a package to a role, linking its server first if it is not yet (as a store owner must);
        ``group`` and ``rank`` make it a tier of a group, ``keep_on_end`` a sticky role."""
        guild_id = guild_id or self.guild_id
        role_id = self.roles.get(role_name) or self.role(role_name)
        if not self.is_linked(guild_id):
            self.link(guild_id)
        mapping = get_state(self.app).models.RoleMapping
        self.db.session.add(
            mapping(
                store_id=self.store_id,
                package_id=package_id,
                guild_id=guild_id,
                role_id=role_id,
                role_name=role_name,
                tier_group=group,
                tier_rank=rank,
                keep_on_end=keep_on_end,
            )
        )
        self.db.session.commit()

    def link(self, guild_id: str | None = None) -> str:
        """Link ``guild_id`` (the shop's own server by default) to the store with a one-time code, as
        ``/link`` does, and commit; linking a linked server again renews its link. Returns the id."""
        state = get_state(self.app)
        guild_id = guild_id or self.guild_id
        issued = guilds.create_link_code(state, self.store_id)
        refusal = guilds.link_guild(state, self.store_id, issued.code, guild_id, "100000000000000001")
        assert refusal is None, f"linking {guild_id} was refused: {refusal}"
        self.db.session.commit()
        return guild_id

    def is_linked(self, guild_id: str | None = None) -> bool:
        link = get_state(self.app).models.LinkedGuild
        guild_id = guild_id or self.guild_id
        return (
            self.db.session.scalar(
                sa.select(link.id).where(link.store_id == self.store_id, link.guild_id == guild_id)
            )
            is not None
        )

    def member(self, name: str, *, roles: tuple[str, ...] = ()) -> str:
        user = self.fake.create_user(name)
        self.fake.add_member(self.guild_id, user.id, roles=[self.roles[role] for role in roles])
        return user.id

    def settings(self, **values: Any) -> None:
        model = get_state(self.app).models.StoreSettings
        row = self.db.session.scalar(sa.select(model).where(model.store_id == self.store_id))
        if row is None:
            row = model(store_id=self.store_id)
            self.db.session.add(row)
        for key, value in values.items():
            setattr(row, key, value)
        self.db.session.commit()

    def set_created_at(self, delivery_id: int, when: datetime) -> None:
        """Date a delivery back (or forward), as if it had been queued ``when``."""
        model = get_state(self.app).models.Delivery
        self.db.session.execute(sa.update(model).where(model.id == delivery_id).values(created_at=when))
        self.db.session.commit()

    # -- the host's side ------------------------------------------------------------------------------

    def buy(self, order_id: str, *packages: str, buyer: str | None, customer: str = "customer-1") -> None:
        """Checkout: the host sends order_completed in its transaction, then commits."""
        order_completed.send(
            self.app,
            store_id=self.store_id,
            order_id=order_id,
            customer_id=customer,
            package_ids=list(packages),
            discord_user_id=buyer,
        )
        self.db.session.commit()

    def refund(self, order_id: str, *packages: str, customer: str = "customer-1") -> None:
        order_revoked.send(
            self.app,
            store_id=self.store_id,
            order_id=order_id,
            customer_id=customer,
            package_ids=list(packages),
        )
        self.db.session.commit()

    # -- reading the outcome --------------------------------------------------------------------------

    def roles_of(self, user_id: str) -> set[str]:
        """The names of the roles the member holds in the fake guild."""
        by_id = {role_id: name for name, role_id in self.roles.items()}
        return {by_id[r] for r in self.fake.member_roles(self.guild_id, user_id) if r in by_id}

    def deliveries(self, **where: Any) -> list[Any]:
        model = get_state(self.app).models.Delivery
        self.db.session.expire_all()
        query = sa.select(model).where(model.store_id == self.store_id).order_by(model.id)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return list(self.db.session.scalars(query))

    def statuses(self) -> list[tuple[str, str, str | None]]:
        return [(row.action, row.status, row.reason_code) for row in self.deliveries()]

    # -- Discord's side ---------------------------------------------------------------------------------

    def post_signed(self, url: str, body: bytes, client: FlaskClient) -> InteractionResult:
        """POST ``body`` to the webhook at ``url`` exactly as given, signed now with the store bot's key the
        way Discord signs (for bodies FakeDiscord's own payload builders would not send)."""
        headers = sign_interaction(self.bot.signing_key, str(int(time.time())), body)
        return deliver(url, body, headers, client)


def open_shop(app: Flask, db: SQLAlchemy, fake: FakeDiscord, *, bot_permissions: int | None = None) -> Shop:
    """A store whose bot is saved, invited to a guild (Manage Roles, top role) and ready to deliver."""
    bot = fake.create_bot("Shop Bot")
    guild = fake.create_guild("Shop Guild")
    if bot_permissions is None:
        fake.add_bot_to_guild(bot, guild.id)
    else:
        fake.add_bot_to_guild(bot, guild.id, permissions=bot_permissions)
    save_bot(
        get_state(app),
        "store-1",
        application_id=bot.application_id,
        public_key=bot.public_key,
        bot_token=bot.token,
    )
    db.session.commit()
    fake.clear_calls()
    return Shop(app, db, fake, bot, guild.id)
