"""Everything the fake Discord knows, behind one lock, with the rules that keep it consistent.

Role positions follow Discord: @everyone is 0, other roles are renumbered 1..n on every insert or move,
so positions stay unique unless a test forces a tie on purpose (old guilds really have ties).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import flask_discord_roles.testing.permissions as perms
from flask_discord_roles.testing.role_connections_state import RoleConnections
from flask_discord_roles.testing.state import (
    DM,
    GUILD_TEXT,
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    InteractionRecord,
    make_bot_token,
    new_signing_key,
    new_snowflake,
)

__all__ = ["World"]


@dataclass
class World:
    """The fake's whole state; ``lock`` is held by every HTTP handler and every helper method."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    users: dict[str, FakeUser] = field(default_factory=dict)
    bots: dict[str, FakeBot] = field(default_factory=dict)  # by application id
    guilds: dict[str, FakeGuild] = field(default_factory=dict)
    channels: dict[str, FakeChannel] = field(default_factory=dict)
    commands: dict[tuple[str, str | None], list[dict[str, Any]]] = field(default_factory=dict)
    command_creates: dict[tuple[str, str | None], int] = field(default_factory=dict)
    interactions: dict[str, InteractionRecord] = field(default_factory=dict)  # by token
    interaction_responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    audit_log: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dm_channels: dict[tuple[str, str], str] = field(default_factory=dict)
    role_connections: RoleConnections = field(default_factory=RoleConnections)  # Linked Roles
    interaction_ttl: float = 900.0
    initial_response_deadline: float = 3.0
    # Notified when an interaction's answer arrives, for a webhook call that raced it (see routes_webhooks).
    answers: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.answers = threading.Condition(self.lock)

    # -- users and bots -------------------------------------------------------------------------

    def create_user(
        self, username: str, *, global_name: str | None = None, avatar: str | None = None
    ) -> FakeUser:
        with self.lock:
            user = FakeUser(new_snowflake(), username, global_name, avatar, email=f"{username}@example.com")
            self.users[user.id] = user
            return user

    def create_bot(self, name: str, *, application_id: str | None = None) -> FakeBot:
        with self.lock:
            app_id = application_id or new_snowflake()
            user_id = new_snowflake()
            key = new_signing_key()
            bot = FakeBot(
                application_id=app_id,
                user_id=user_id,
                name=name,
                token=make_bot_token(user_id),
                public_key=key.verify_key.encode().hex(),
                signing_key=key,
                client_secret=secrets.token_urlsafe(24),
            )
            discriminator = f"{secrets.randbelow(9999) + 1:04d}"
            self.users[user_id] = FakeUser(user_id, name, None, None, True, discriminator)
            self.bots[app_id] = bot
            return bot

    def bot_by_token(self, token: str) -> FakeBot | None:
        for bot in self.bots.values():
            if secrets.compare_digest(bot.token, token):
                return bot if bot.is_token_valid else None
        return None

    # -- guilds and roles -----------------------------------------------------------------------

    def create_guild(self, name: str, *, owner_id: str | None = None) -> FakeGuild:
        with self.lock:
            if owner_id is None:
                owner_id = self.create_user(f"{name.lower().replace(' ', '_')}_owner").id
            guild = FakeGuild(new_snowflake(), name, owner_id)
            guild.roles[guild.id] = FakeRole(
                guild.id, guild.id, "@everyone", 0, permissions=perms.DEFAULT_EVERYONE
            )
            self.guilds[guild.id] = guild
            if owner_id in self.users:
                guild.members[owner_id] = FakeMember(owner_id)
            return guild

    def guild(self, guild_id: str) -> FakeGuild:
        try:
            return self.guilds[guild_id]
        except KeyError:
            raise LookupError(f"the fake has no guild {guild_id!r}") from None

    def ordered_roles(self, guild: FakeGuild) -> list[FakeRole]:
        """Roles other than @everyone, lowest first, in Discord's display order."""
        return sorted((r for r in guild.roles.values() if r.id != guild.id), key=lambda r: r.hierarchy_key)

    def _place(self, guild: FakeGuild, role: FakeRole, position: int) -> None:
        others = [r for r in self.ordered_roles(guild) if r.id != role.id]
        index = min(max(position, 1), len(others) + 1) - 1
        others.insert(index, role)
        for number, each in enumerate(others, start=1):
            each.position = number

    def create_role(
        self,
        guild_id: str,
        name: str,
        *,
        position: int | None = None,
        permissions: int = 0,
        managed: bool = False,
        color: int = 0,
        bot_id: str | None = None,
    ) -> FakeRole:
        with self.lock:
            guild = self.guild(guild_id)
            role = FakeRole(new_snowflake(), guild_id, name, 0, permissions, managed, color, bot_id=bot_id)
            if position is None:
                ordinary = [r.position for r in self.ordered_roles(guild) if r.bot_id is None]
                position = max(ordinary, default=0) + 1
            guild.roles[role.id] = role
            self._place(guild, role, position)
            return role

    def move_role(self, guild_id: str, role_id: str, position: int) -> None:
        with self.lock:
            guild = self.guild(guild_id)
            role = guild.roles.get(role_id)
            if role is None or role.id == guild.id:
                raise LookupError(f"guild {guild_id} has no movable role {role_id!r}")
            self._place(guild, role, position)

    def force_role_position(self, guild_id: str, role_id: str, position: int) -> None:
        with self.lock:
            self.guild(guild_id).roles[role_id].position = position

    # -- members --------------------------------------------------------------------------------

    def add_member(self, guild_id: str, user_id: str, roles: Iterable[str] = ()) -> FakeMember:
        with self.lock:
            guild = self.guild(guild_id)
            if user_id not in self.users:
                raise LookupError(f"the fake has no user {user_id!r}; create_user() first")
            member = guild.members.get(user_id)
            if member is None:
                member = guild.members[user_id] = FakeMember(user_id)
            for role_id in roles:
                if role_id not in guild.roles or role_id == guild.id:
                    raise LookupError(f"guild {guild_id} has no assignable role {role_id!r}")
                if role_id not in member.roles:
                    member.roles.append(role_id)
            return member

    def member(self, guild_id: str, user_id: str) -> FakeMember:
        member = self.guild(guild_id).members.get(user_id)
        if member is None:
            raise LookupError(f"user {user_id} is not a member of guild {guild_id}")
        return member

    def add_bot_to_guild(
        self, bot: FakeBot, guild_id: str, *, permissions: int, role_position: int | None
    ) -> FakeRole:
        with self.lock:
            guild = self.guild(guild_id)
            for existing in guild.roles.values():
                if existing.bot_id == bot.user_id:
                    return existing  # already invited: Discord keeps the one managed role
            if role_position is None:
                role_position = max((r.position for r in guild.roles.values()), default=0) + 1
            role = self.create_role(
                guild_id,
                bot.name,
                position=role_position,
                permissions=permissions,
                managed=True,
                bot_id=bot.user_id,
            )
            self.add_member(guild_id, bot.user_id, [role.id])
            return role

    # -- permissions ----------------------------------------------------------------------------

    def guild_permissions(self, guild: FakeGuild, user_id: str) -> int:
        member = guild.members.get(user_id)
        role_bits = (guild.roles[r].permissions for r in (member.roles if member else ()))
        return perms.base_permissions(
            guild.everyone.permissions, role_bits, is_owner=guild.owner_id == user_id
        )

    def permissions_in(self, channel: FakeChannel, user_id: str) -> int:
        guild = self.guilds[channel.guild_id or ""]
        base = self.guild_permissions(guild, user_id)
        if guild.owner_id == user_id:
            return base
        member = guild.members.get(user_id)
        return perms.channel_permissions(
            base,
            guild_id=guild.id,
            role_ids=member.roles if member else (),
            user_id=user_id,
            overwrites=channel.overwrites,
        )

    def highest_role_key(self, guild: FakeGuild, user_id: str) -> tuple[int, int]:
        member = guild.members.get(user_id)
        keys = [guild.roles[r].hierarchy_key for r in (member.roles if member else ())]
        return max(keys, default=guild.everyone.hierarchy_key)

    def can_assign(self, guild: FakeGuild, actor_id: str, role: FakeRole) -> bool:
        """Discord's rule: never @everyone or managed roles; otherwise strictly below the actor."""
        if role.id == guild.id or role.managed:
            return False
        if guild.owner_id == actor_id:
            return True
        return role.hierarchy_key < self.highest_role_key(guild, actor_id)

    # -- channels -------------------------------------------------------------------------------

    def create_channel(
        self, guild_id: str, name: str, overwrites: Iterable[dict[str, Any]] = ()
    ) -> FakeChannel:
        with self.lock:
            self.guild(guild_id)
            clean = [
                {
                    "id": str(ow["id"]),
                    "type": int(ow["type"]),
                    "allow": int(ow.get("allow", 0)),
                    "deny": int(ow.get("deny", 0)),
                }
                for ow in overwrites
            ]
            position = sum(1 for c in self.channels.values() if c.guild_id == guild_id)
            channel = FakeChannel(new_snowflake(), GUILD_TEXT, name, guild_id, clean, position=position)
            self.channels[channel.id] = channel
            return channel

    def dm_channel(self, bot: FakeBot, user_id: str) -> FakeChannel:
        with self.lock:
            channel_id = self.dm_channels.get((bot.user_id, user_id))
            if channel_id is None:
                channel = FakeChannel(new_snowflake(), DM, recipients=[user_id, bot.user_id])
                self.channels[channel.id] = channel
                self.dm_channels[(bot.user_id, user_id)] = channel.id
                return channel
            return self.channels[channel_id]

    def shares_guild(self, a: str, b: str) -> bool:
        return any(a in g.members and b in g.members for g in self.guilds.values())

    # -- interactions ---------------------------------------------------------------------------

    def mint_interaction(self, application_id: str, *, acknowledged: bool = False) -> InteractionRecord:
        with self.lock:
            record = InteractionRecord(
                id=new_snowflake(),
                application_id=application_id,
                token="aW50ZXJhY3Rpb246" + secrets.token_urlsafe(120),
                created=time.monotonic(),
                acknowledged=acknowledged,
            )
            self.interactions[record.token] = record
            return record

    def record_interaction_response(
        self,
        token: str,
        kind: str,
        data: Any,
        *,
        method: str,
        acknowledged_before: bool,
        status: int = 200,
    ) -> None:
        """Keep what an app sent for an interaction, in order, for tests to assert on.

        Refused calls are kept too (``status`` 4xx): the order in which an app tried things is what
        tests about acknowledgement need.
        """
        with self.lock:
            entry = {
                "kind": kind,
                "method": method,
                "data": data,
                "acknowledged_before": acknowledged_before,
                "status": status,
                "time": time.monotonic(),
            }
            self.interaction_responses.setdefault(token, []).append(entry)
