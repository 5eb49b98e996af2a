"""The linked servers and their roles, as the mappings and customer pages show them.

Reading roles asks Discord, which can fail in ways the owner can fix (the bot left the server) or not
(Discord is down); either way the page still shows, with the problem in words where the roles would be.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_discord_roles import guilds
from flask_discord_roles.discord.errors import TransientDiscordError
from flask_discord_roles.guilds import GuildRole, GuildSummary

from .. import db
from .common import DISCORD_DOWN_READING


@dataclass(frozen=True)
class ServerRoles:
    guild: GuildSummary
    roles: list[GuildRole]
    problem: str | None  # why the roles could not be read; None when they were

    @property
    def name(self) -> str:
        return self.guild.name or f"Server {self.guild.guild_id}"

    @property
    def mappable(self) -> list[GuildRole]:
        """Every role but @everyone (whose id is the server's), which no store can give or take."""
        return [role for role in self.roles if role.id != self.guild.guild_id]


def linked_guilds(store_id: str) -> list[GuildSummary]:
    found = guilds.list_guilds(store_id)
    db.session.commit()  # keeps the names and member counts Discord just gave, as list_guilds asks
    return found


def servers_with_roles(store_id: str) -> list[ServerRoles]:
    return [_with_roles(store_id, guild) for guild in linked_guilds(store_id)]


def _with_roles(store_id: str, guild: GuildSummary) -> ServerRoles:
    try:
        return ServerRoles(guild, guilds.guild_roles(store_id, guild.guild_id), None)
    except guilds.BotUnavailable as unavailable:
        return ServerRoles(guild, [], unavailable.fix)
    except guilds.GuildNotLinked:
        return ServerRoles(guild, [], "This server was unlinked a moment ago.")
    except TransientDiscordError:
        return ServerRoles(guild, [], DISCORD_DOWN_READING)


def role_name(store_id: str, guild_id: str, role_id: str) -> str | None:
    """A role's name as Discord says now, or None when it cannot be read (the change goes ahead)."""
    try:
        roles = guilds.guild_roles(store_id, guild_id)
    except (guilds.BotUnavailable, guilds.GuildNotLinked, TransientDiscordError):
        return None
    return next((role.name for role in roles if role.id == role_id), None)
