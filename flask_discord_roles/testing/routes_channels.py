"""Channel, message, DM and current-user routes.

A guild channel the bot cannot see answers 50001 (Missing Access); one it sees but cannot post in
answers 50013. DMs need a shared server and open DMs, else 50007, as on Discord.
"""

from __future__ import annotations

from typing import Any

import flask_discord_roles.testing.permissions as perms
import flask_discord_roles.testing.protocol as p
from flask_discord_roles.testing.state import DM, FakeBot, FakeChannel, iso_now, new_snowflake
from flask_discord_roles.testing.validation import validate_message

__all__ = [
    "build_message",
    "create_dm",
    "create_message",
    "current_application",
    "current_user",
    "echoed",
    "get_channel",
    "get_user",
    "public_message",
]


def _channel(ctx: p.Context, bot: FakeBot) -> FakeChannel:
    channel = ctx.world.channels.get(ctx.params["channel_id"])
    if channel is None:
        raise p.discord_error(404, 10003, "Unknown Channel")
    if channel.type == DM:
        if bot.user_id not in channel.recipients:
            raise p.missing_access()
        return channel
    guild = ctx.world.guilds[channel.guild_id or ""]
    if bot.user_id not in guild.members:
        raise p.missing_access()
    if not ctx.world.permissions_in(channel, bot.user_id) & perms.VIEW_CHANNEL:
        raise p.missing_access()
    return channel


def _embed(sent: dict[str, Any]) -> dict[str, Any]:
    """An embed as Discord echoes it: an app's embeds are ``rich`` and every field says ``inline``."""
    embed = {"type": "rich", **sent}
    if "fields" in embed:
        embed["fields"] = [{"inline": False, **f} for f in embed["fields"]]
    return embed


def _numbered(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord echoes them: each without an ``id`` gets the next number, depth first."""
    taken = [0]

    def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shown = []
        for item in items:
            taken[0] += 1
            copy = {**item, "id": item.get("id", taken[0])}
            if isinstance(item.get("components"), list):
                copy["components"] = walk(item["components"])
            shown.append(copy)
        return shown

    return walk(components)


def echoed(key: str, value: Any) -> Any:
    """A message field the app sent, as Discord stores and returns it."""
    if key == "embeds":
        return [_embed(embed) for embed in value or []]
    if key == "components":
        return _numbered(value or [])
    if key == "content":
        return value or ""
    if key == "flags":
        return value or 0
    return value


def build_message(channel_id: str, author: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A message object as Discord returns it, plus the ``allowed_mentions`` we were sent."""
    return {
        "id": new_snowflake(),
        "type": 0,
        "channel_id": channel_id,
        "author": author,
        "content": echoed("content", body.get("content")),
        "embeds": echoed("embeds", body.get("embeds")),
        "components": echoed("components", body.get("components")),
        "attachments": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "pinned": False,
        "tts": bool(body.get("tts", False)),
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "flags": echoed("flags", body.get("flags")),
        "allowed_mentions": body.get("allowed_mentions"),
    }


def public_message(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "allowed_mentions"}


@p.route("GET", "/channels/{channel_id}", major=("channel_id",))
def get_channel(ctx: p.Context) -> p.Reply:
    bot = ctx.require_bot()
    return p.json_reply(_channel(ctx, bot).to_json(ctx.world.users, viewer_id=bot.user_id))


@p.route("POST", "/channels/{channel_id}/messages", family="messages", major=("channel_id",))
def create_message(ctx: p.Context) -> p.Reply:
    bot = ctx.require_bot()
    channel = _channel(ctx, bot)
    if channel.type == DM:
        recipient = next(uid for uid in channel.recipients if uid != bot.user_id)
        user = ctx.world.users[recipient]
        if not user.dms_open or not ctx.world.shares_guild(bot.user_id, recipient):
            raise p.discord_error(403, 50007, "Cannot send messages to this user")
    elif not ctx.world.permissions_in(channel, bot.user_id) & perms.SEND_MESSAGES:
        raise p.missing_permissions()
    body = ctx.json_object()
    validate_message(body)
    message = build_message(channel.id, ctx.world.users[bot.user_id].to_json(), body)
    if channel.guild_id:
        message["guild_id"] = channel.guild_id
    channel.messages.append(message)
    return p.json_reply(public_message(message))


@p.route("POST", "/users/@me/channels", family="dm_channel")
def create_dm(ctx: p.Context) -> p.Reply:
    bot = ctx.require_bot()
    recipient = ctx.json_object().get("recipient_id")
    if not isinstance(recipient, str | int) or str(recipient) not in ctx.world.users:
        raise p.discord_error(400, 50033, "Invalid Recipient(s)")
    channel = ctx.world.dm_channel(bot, str(recipient))
    return p.json_reply(channel.to_json(ctx.world.users, viewer_id=bot.user_id))


@p.route("GET", "/users/@me", family="users_me", auth="bot_or_bearer")
def current_user(ctx: p.Context) -> p.Reply:
    if ctx.bot is not None:
        return p.json_reply(ctx.world.users[ctx.bot.user_id].to_private_json(with_email=True))
    if ctx.grant is None or "identify" not in ctx.grant.scopes:
        raise p.unauthorized()
    user = ctx.world.users[ctx.grant.user_id]
    return p.json_reply(user.to_private_json(with_email="email" in ctx.grant.scopes))


@p.route("GET", "/applications/@me", family="applications_me")
def current_application(ctx: p.Context) -> p.Reply:
    bot = ctx.bot
    assert bot is not None  # the route needs a bot token
    return p.json_reply(bot.private_application_json(ctx.world.users[bot.user_id].to_json()))


@p.route("GET", "/users/{user_id}", major=())
def get_user(ctx: p.Context) -> p.Reply:
    user = ctx.world.users.get(ctx.params["user_id"])
    if user is None:
        raise p.discord_error(404, 10013, "Unknown User")
    return p.json_reply(user.to_json())
