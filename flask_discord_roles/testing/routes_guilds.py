"""Guild, role and member routes: where Discord's hierarchy and permission rules bite.

A guild that does not exist answers 404 10004; one that exists but the bot is not in answers 403 50001
(Missing Access), which is what Discord sends for guilds a bot was removed from.
"""

from __future__ import annotations

from typing import Any

import flask_discord_roles.testing.permissions as perms
import flask_discord_roles.testing.protocol as p
from flask_discord_roles.testing.state import FakeGuild, FakeMember, iso_now

__all__ = [
    "MAX_AUDIT_REASON",
    "MEMBER_ROLE",
    "add_guild_member",
    "add_member_role",
    "bot_guild",
    "get_channels",
    "get_guild",
    "get_member",
    "get_roles",
    "list_members",
    "member_json",
    "remove_member_role",
]

MAX_AUDIT_REASON = 512


def bot_guild(ctx: p.Context) -> FakeGuild:
    bot = ctx.require_bot()
    guild = ctx.world.guilds.get(ctx.params["guild_id"])
    if guild is None:
        raise p.discord_error(404, 10004, "Unknown Guild")
    if bot.user_id not in guild.members:
        raise p.missing_access()
    return guild


def member_json(ctx: p.Context, member: FakeMember) -> dict[str, Any]:
    return member.to_json(ctx.world.users[member.user_id])


def _require(ctx: p.Context, guild: FakeGuild, bits: int) -> None:
    if not ctx.world.guild_permissions(guild, ctx.require_bot().user_id) & bits:
        raise p.missing_permissions()


def _check_audit_reason(ctx: p.Context) -> None:
    reason = ctx.audit_log_reason
    if reason is not None and len(reason) > MAX_AUDIT_REASON:
        raise p.invalid_form(
            {
                "audit_log_reason": p.field_error(
                    "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_AUDIT_REASON} or fewer in length."
                )
            }
        )


@p.route("GET", "/guilds/{guild_id}", family="guild", major=("guild_id",))
def get_guild(ctx: p.Context) -> p.Reply:
    with_counts = ctx.request.args.get("with_counts", "").lower() == "true"
    return p.json_reply(bot_guild(ctx).to_json(with_counts=with_counts))


@p.route("GET", "/guilds/{guild_id}/roles", family="guild", major=("guild_id",))
def get_roles(ctx: p.Context) -> p.Reply:
    return p.json_reply([role.to_json() for role in bot_guild(ctx).roles.values()])


@p.route("GET", "/guilds/{guild_id}/channels", major=("guild_id",))
def get_channels(ctx: p.Context) -> p.Reply:
    guild = bot_guild(ctx)
    channels = [c for c in ctx.world.channels.values() if c.guild_id == guild.id]
    return p.json_reply([c.to_json(ctx.world.users) for c in channels])


MAX_MEMBERS_PAGE = 1000


@p.route("GET", "/guilds/{guild_id}/members", family="guild_members", major=("guild_id",))
def list_members(ctx: p.Context) -> p.Reply:
    """List Guild Members: members in user id order after ``after``, at most ``limit`` (1 by default).

    Needs the GUILD_MEMBERS privileged intent: a bot without it (``members_intent=False``) gets
    403 50001, as Discord answers.
    """
    guild = bot_guild(ctx)
    if not ctx.require_bot().members_intent:
        raise p.missing_access()
    limit = _int_arg(ctx, "limit", 1, 1, MAX_MEMBERS_PAGE)
    after = _int_arg(ctx, "after", 0, 0, 2**64 - 1)
    later = (m for m in guild.members.values() if int(m.user_id) > after)
    ordered = sorted(later, key=lambda m: int(m.user_id))
    return p.json_reply([member_json(ctx, member) for member in ordered[:limit]])


def _int_arg(ctx: p.Context, name: str, default: int, lowest: int, highest: int) -> int:
    raw = ctx.request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        problem = p.field_error("NUMBER_TYPE_COERCE", f'Value "{raw}" is not int.')
        raise p.invalid_form({name: problem}) from None
    if not lowest <= value <= highest:
        raise p.invalid_form(
            {name: p.field_error("NUMBER_TYPE_MAX", f"int value should be between {lowest} and {highest}.")}
        )
    return value


@p.route("GET", "/guilds/{guild_id}/members/{user_id}", family="guild_member", major=("guild_id",))
def get_member(ctx: p.Context) -> p.Reply:
    member = bot_guild(ctx).members.get(ctx.params["user_id"])
    if member is None:
        raise p.discord_error(404, 10007, "Unknown Member")
    return p.json_reply(member_json(ctx, member))


@p.route("PUT", "/guilds/{guild_id}/members/{user_id}", family="guild_member", major=("guild_id",))
def add_guild_member(ctx: p.Context) -> p.Reply:
    guild = bot_guild(ctx)
    bot = ctx.require_bot()
    user_id = ctx.params["user_id"]
    body = ctx.json_object()
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise p.invalid_form({"access_token": p.field_error("BASE_TYPE_REQUIRED", "This field is required")})
    grant = ctx.oauth.live_grant(access_token)
    if grant is None or grant.user_id != user_id or grant.client_id != bot.application_id:
        raise p.discord_error(403, 50025, "Invalid OAuth2 access token")
    if "guilds.join" not in grant.scopes:
        raise p.missing_access()
    if user_id in guild.members:
        return p.no_content()  # Discord ignores roles and nick for existing members.
    _require(ctx, guild, perms.CREATE_INSTANT_INVITE)
    role_ids = body.get("roles") or []
    if not isinstance(role_ids, list) or not all(isinstance(r, str) for r in role_ids):
        raise p.invalid_form({"roles": p.field_error("LIST_TYPE_CONVERT", "Must be a list.")})
    for role_id in role_ids:
        role = guild.roles.get(role_id)
        if role is None:
            raise p.discord_error(404, 10011, "Unknown Role")
        _require(ctx, guild, perms.MANAGE_ROLES)
        if not ctx.world.can_assign(guild, bot.user_id, role):
            raise p.missing_permissions()
    if body.get("nick") is not None:
        _require(ctx, guild, perms.MANAGE_NICKNAMES)
    member = ctx.world.add_member(guild.id, user_id, role_ids)
    member.nick = body.get("nick")
    _audit(ctx, guild, "member_join", user_id, None)
    return p.json_reply(member_json(ctx, member), 201)


def _audit(ctx: p.Context, guild: FakeGuild, action: str, user_id: str, role_id: str | None) -> None:
    entry = {
        "action": action,
        "user_id": user_id,
        "role_id": role_id,
        "actor_id": ctx.require_bot().user_id,
        "reason": ctx.audit_log_reason,
        "at": iso_now(),
    }
    ctx.world.audit_log.setdefault(guild.id, []).append(entry)


def _change_role(ctx: p.Context, *, add: bool) -> p.Reply:
    guild = bot_guild(ctx)
    _check_audit_reason(ctx)
    member = guild.members.get(ctx.params["user_id"])
    if member is None:
        raise p.discord_error(404, 10007, "Unknown Member")
    role = guild.roles.get(ctx.params["role_id"])
    if role is None:
        raise p.discord_error(404, 10011, "Unknown Role")
    _require(ctx, guild, perms.MANAGE_ROLES)
    if not ctx.world.can_assign(guild, ctx.require_bot().user_id, role):
        raise p.missing_permissions()
    has_role = role.id in member.roles
    if add and not has_role:
        member.roles.append(role.id)
        _audit(ctx, guild, "member_role_add", member.user_id, role.id)
    elif not add and has_role:
        member.roles.remove(role.id)
        _audit(ctx, guild, "member_role_remove", member.user_id, role.id)
    return p.no_content()


MEMBER_ROLE = "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"


@p.route("PUT", MEMBER_ROLE, family="member_role", major=("guild_id",))
def add_member_role(ctx: p.Context) -> p.Reply:
    return _change_role(ctx, add=True)


@p.route("DELETE", MEMBER_ROLE, family="member_role", major=("guild_id",))
def remove_member_role(ctx: p.Context) -> p.Reply:
    return _change_role(ctx, add=False)
