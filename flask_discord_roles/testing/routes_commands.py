"""Application command routes: bulk overwrite and list, global and per guild.

An overwrite keeps the id of a command whose (type, name) already existed, as Discord does, and counts
new creations against the 200-per-day-per-guild limit (429 code 30034).
"""

from __future__ import annotations

from typing import Any

import flask_discord_roles.testing.protocol as p
from flask_discord_roles.testing.routes_guilds import bot_guild
from flask_discord_roles.testing.state import new_snowflake
from flask_discord_roles.testing.validation import validate_commands

__all__ = ["DAILY_CREATES", "GLOBAL", "GUILD"]

DAILY_CREATES = 200


def _scope(ctx: p.Context) -> tuple[str, str | None]:
    bot = ctx.require_bot()
    if ctx.params["application_id"] != bot.application_id:
        raise p.missing_access()
    guild_id = ctx.params.get("guild_id")
    if guild_id is not None:
        bot_guild(ctx)
    return bot.application_id, guild_id


def _list(ctx: p.Context) -> p.Reply:
    return p.json_reply(ctx.world.commands.get(_scope(ctx), []))


def _overwrite(ctx: p.Context) -> p.Reply:
    scope = _scope(ctx)
    application_id, guild_id = scope
    incoming = validate_commands(ctx.json_body())
    existing = {(c["type"], c["name"]): c for c in ctx.world.commands.get(scope, [])}
    created = sum(1 for c in incoming if (c.get("type", 1), c["name"]) not in existing)
    if ctx.world.command_creates.get(scope, 0) + created > DAILY_CREATES:
        raise p.discord_error(
            429, 30034, "Max number of daily application command creates has been reached (200)"
        )
    ctx.world.command_creates[scope] = ctx.world.command_creates.get(scope, 0) + created
    stored: list[dict[str, Any]] = []
    for command in incoming:
        kind = command.get("type", 1)
        previous = existing.get((kind, command["name"]))
        entry: dict[str, Any] = {
            "id": previous["id"] if previous else new_snowflake(),
            "application_id": application_id,
            "version": new_snowflake(),
            "type": kind,
            "name": command["name"],
            "description": command.get("description", ""),
            "options": command.get("options", []),
            "default_member_permissions": command.get("default_member_permissions"),
            "nsfw": bool(command.get("nsfw", False)),
            "contexts": command.get("contexts"),
            "integration_types": command.get("integration_types", [0]),
        }
        if guild_id is not None:
            entry["guild_id"] = guild_id
        stored.append(entry)
    ctx.world.commands[scope] = stored
    return p.json_reply(stored)


GLOBAL = "/applications/{application_id}/commands"
GUILD = "/applications/{application_id}/guilds/{guild_id}/commands"

p.route("GET", GLOBAL, family="commands")(_list)
p.route("PUT", GLOBAL, family="commands")(_overwrite)
p.route("GET", GUILD, family="commands", major=("guild_id",))(_list)
p.route("PUT", GUILD, family="commands", major=("guild_id",))(_overwrite)
