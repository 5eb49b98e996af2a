"""Interaction payloads as Discord builds them, filled in from the fake's own guilds and members.

``member.roles`` is the user's real role list in the fake and ``app_permissions`` the bot's computed
permissions in the channel, so an app that trusts the payload sees what Discord would tell it.
"""

from __future__ import annotations

from typing import Any

from flask_discord_roles.testing.state import DM, GUILD_TEXT, FakeBot, FakeMember, FakeUser, new_snowflake
from flask_discord_roles.testing.world import World

__all__ = ["OPTION_TYPES", "app_permissions", "command_data", "interaction", "user_id_of"]

OPTION_TYPES: tuple[tuple[type, int], ...] = ((bool, 5), (int, 4), (float, 10), (str, 3))


def user_id_of(user: FakeUser | str) -> str:
    return user if isinstance(user, str) else user.id


def _options(options: list[dict[str, Any]] | dict[str, Any] | None) -> list[dict[str, Any]]:
    if options is None:
        return []
    if isinstance(options, list):
        return options
    result = []
    for name, value in options.items():
        kind = next(code for cls, code in OPTION_TYPES if isinstance(value, cls))
        result.append({"name": name, "type": kind, "value": value})
    return result


def _channel_id(world: World, guild_id: str | None, channel_id: str | None) -> str:
    if channel_id is not None or guild_id is None:
        return channel_id or new_snowflake()
    channels = [c.id for c in world.channels.values() if c.guild_id == guild_id]
    return channels[0] if channels else new_snowflake()


def app_permissions(world: World, bot: FakeBot, guild_id: str, channel_id: str) -> str:
    guild = world.guilds.get(guild_id)
    if guild is None or bot.user_id not in guild.members:
        return "0"
    channel = world.channels.get(channel_id)
    if channel is not None and channel.guild_id == guild_id:
        return str(world.permissions_in(channel, bot.user_id))
    return str(world.guild_permissions(guild, bot.user_id))


def interaction(
    world: World,
    bot: FakeBot,
    kind: int,
    *,
    guild_id: str | None,
    user: FakeUser | str | None,
    data: dict[str, Any] | None,
    member_permissions: str = "0",
    app_perms: str | None = None,
    channel_id: str | None = None,
    locale: str = "en-US",
) -> dict[str, Any]:
    """Any interaction type; mints a token the webhook routes will accept for 15 minutes."""
    with world.lock:
        record = world.mint_interaction(bot.application_id)
        payload: dict[str, Any] = {
            "id": record.id,
            "application_id": bot.application_id,
            "type": kind,
            "token": record.token,
            "version": 1,
            "entitlements": [],
            "attachment_size_limit": 10485760,
        }
        if kind == 1:
            owner = world.users[bot.user_id].to_json()
            return {**payload, "user": owner}
        channel = _channel_id(world, guild_id, channel_id)
        fake_user = world.users[user_id_of(user)] if user is not None else None
        payload.update(
            {
                "data": data or {},
                "channel_id": channel,
                "locale": locale,
                "context": 0 if guild_id else 1,
            }
        )
        if guild_id is not None:
            payload.update(_in_guild(world, bot, guild_id, channel, fake_user, member_permissions, app_perms))
        else:
            payload.update(_in_dm(channel, fake_user, app_perms))
        return payload


def _in_guild(
    world: World,
    bot: FakeBot,
    guild_id: str,
    channel: str,
    fake_user: FakeUser | None,
    member_permissions: str,
    app_perms: str | None,
) -> dict[str, Any]:
    """The fields of an interaction from a server, with the user's real roles there as ``member``."""
    guild = world.guild(guild_id)
    member = guild.members.get(fake_user.id) if fake_user else None
    fields: dict[str, Any] = {
        "guild_id": guild_id,
        "guild": {"id": guild_id, "locale": "en-US", "features": []},
        "guild_locale": "en-US",
        "channel": _guild_channel(world, guild_id, channel),
        "app_permissions": app_perms or app_permissions(world, bot, guild_id, channel),
        "authorizing_integration_owners": {"0": guild_id},
    }
    if fake_user is not None:
        # A user who is not (or no longer) a member still shows as one who just joined, with no roles.
        shown = member if member is not None else FakeMember(fake_user.id)
        fields["member"] = {**shown.to_json(fake_user), "permissions": member_permissions}
    return fields


def _guild_channel(world: World, guild_id: str, channel_id: str) -> dict[str, Any]:
    """The channel an interaction came from, as Discord includes it: the full object when the fake has it."""
    known = world.channels.get(channel_id)
    if known is not None and known.guild_id == guild_id:
        return known.to_json(world.users)
    return {
        "id": channel_id,
        "type": GUILD_TEXT,
        "guild_id": guild_id,
        "name": "general",
        "position": 0,
        "flags": 0,
    }


def _in_dm(channel: str, fake_user: FakeUser | None, app_perms: str | None) -> dict[str, Any]:
    """The fields of an interaction from a DM with the bot."""
    recipients = [fake_user.to_json()] if fake_user is not None else []
    dm = {"id": channel, "type": DM, "last_message_id": None, "flags": 0, "recipients": recipients}
    fields: dict[str, Any] = {"channel": dm, "app_permissions": app_perms or "0"}
    if fake_user is not None:
        fields["user"] = fake_user.to_json()
        fields["authorizing_integration_owners"] = {"1": fake_user.id}
    return fields


def command_data(
    world: World,
    bot: FakeBot,
    guild_id: str | None,
    name: str,
    options: list[dict[str, Any]] | dict[str, Any] | None,
) -> dict[str, Any]:
    """``data`` for a slash command, reusing the registered command's id when there is one."""
    registered = world.commands.get((bot.application_id, guild_id), [])
    registered = registered + world.commands.get((bot.application_id, None), [])
    match = next((c for c in registered if c["name"] == name and c["type"] == 1), None)
    data: dict[str, Any] = {
        "id": match["id"] if match else new_snowflake(),
        "name": name,
        "type": 1,
        "options": _options(options),
    }
    if match is not None and match.get("guild_id"):
        data["guild_id"] = match["guild_id"]
    return data
