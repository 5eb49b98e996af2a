"""Permission bits and role-hierarchy rules, computed the way Discord computes them.

Used to explain failures before (or instead of) provoking a 403 from Discord: each refused request
counts towards Discord's invalid-request ban.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "CREATE_INSTANT_INVITE",
    "EMBED_LINKS",
    "MANAGE_GUILD",
    "MANAGE_ROLES",
    "MEMBER_OVERWRITE",
    "PERMISSION_NAMES",
    "ROLE_OVERWRITE",
    "SEND_MESSAGES",
    "VIEW_CHANNEL",
    "Assignability",
    "base_permissions",
    "can_assign",
    "can_manage_role",
    "channel_permissions",
    "has_permission",
    "highest_role",
    "missing_permissions",
    "role_sort_key",
]

CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
MANAGE_ROLES = 1 << 28


PERMISSION_NAMES = {
    CREATE_INSTANT_INVITE: "Create Invite",
    ADMINISTRATOR: "Administrator",
    MANAGE_GUILD: "Manage Server",
    VIEW_CHANNEL: "View Channel",
    SEND_MESSAGES: "Send Messages",
    EMBED_LINKS: "Embed Links",
    MANAGE_ROLES: "Manage Roles",
}


def has_permission(permissions: int, flag: int) -> bool:
    """Whether every bit of ``flag`` is granted; ADMINISTRATOR grants every permission."""
    return bool(permissions & ADMINISTRATOR) or permissions & flag == flag


def missing_permissions(permissions: int, required: int) -> list[str]:
    """The names (as Discord's settings show them) of the ``required`` bits not granted."""
    if permissions & ADMINISTRATOR:
        return []
    lacking = required & ~permissions
    return [name for bit, name in PERMISSION_NAMES.items() if lacking & bit]


def role_sort_key(role: Mapping[str, Any]) -> tuple[int, int]:
    """Higher sorts later. Equal positions: the lower id is the higher role."""
    return (int(role["position"]), -int(role["id"]))


def base_permissions(
    guild_id: str, member_role_ids: Iterable[str], roles: Iterable[Mapping[str, Any]]
) -> int:
    """@everyone's permissions OR each of the member's roles' permissions."""
    wanted = {*member_role_ids, guild_id}
    total = 0
    for role in roles:
        if str(role["id"]) in wanted:
            total |= int(role.get("permissions", 0))
    return total


def highest_role(
    guild_id: str, member_role_ids: Iterable[str], roles: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The member's highest role (``@everyone`` when they have no other)."""
    wanted = {*member_role_ids, guild_id}
    held = [role for role in roles if str(role["id"]) in wanted]
    return max(held, key=role_sort_key) if held else None


@dataclass(frozen=True)
class Assignability:
    """Whether a bot can give a role, and if not, why (a reason code) and what to do (in words)."""

    ok: bool
    reason_code: str | None = None
    fix: str | None = None


def can_assign(
    guild_id: str,
    bot_role_ids: Iterable[str],
    role: Mapping[str, Any],
    roles: Iterable[Mapping[str, Any]],
) -> Assignability:
    """Can a bot holding ``bot_role_ids`` add or remove ``role``? Administrator does not bypass hierarchy."""
    roles = list(roles)
    bot_role_ids = list(bot_role_ids)
    name = role.get("name", role["id"])
    if str(role["id"]) == guild_id:
        return Assignability(False, "everyone_role", "@everyone belongs to every member; map another role.")
    if role.get("managed"):
        return Assignability(
            False,
            "managed_role",
            f"«{name}» is managed by an integration (a bot, boosts or a subscription) and no bot can "
            "assign it; map a different role.",
        )
    if not has_permission(base_permissions(guild_id, bot_role_ids, roles), MANAGE_ROLES):
        return Assignability(
            False,
            "missing_manage_roles",
            "Give the bot's role the Manage Roles permission (Server Settings → Roles).",
        )
    top = highest_role(guild_id, bot_role_ids, roles)
    if top is None or role_sort_key(role) >= role_sort_key(top):
        return Assignability(
            False,
            "role_above_bot",
            f"Move the bot's role above «{name}» in Server Settings → Roles (drag it higher).",
        )
    return Assignability(True)


def can_manage_role(
    guild_id: str,
    bot_role_ids: Iterable[str],
    role: Mapping[str, Any],
    roles: Iterable[Mapping[str, Any]],
) -> tuple[bool, str | None]:
    """:func:`can_assign` as ``(ok, reason_code)``."""
    verdict = can_assign(guild_id, bot_role_ids, role, roles)
    return verdict.ok, verdict.reason_code


ALL_PERMISSIONS = (1 << 64) - 1
"""Every bit: what Administrator (or owning the server) amounts to in any channel."""
ROLE_OVERWRITE = 0
MEMBER_OVERWRITE = 1


def channel_permissions(
    guild_id: str,
    member_id: str,
    member_role_ids: Iterable[str],
    roles: Iterable[Mapping[str, Any]],
    overwrites: Iterable[Mapping[str, Any]],
    *,
    is_owner: bool = False,
) -> int:
    """A member's permissions in one channel, by Discord's documented algorithm.

    Base permissions (@everyone OR the member's roles; everything for Administrator or the owner), then
    the channel's overwrites in a fixed order: @everyone's, then every role overwrite of the member's
    roles combined (all denies, then all allows, so a role's allow beats another role's deny), then the
    member's own. ``overwrites`` are the channel's ``permission_overwrites`` as Discord sends them
    (``type`` 0 for a role, 1 for a member; ``allow``/``deny`` as decimal strings). Implicit denials
    (no View Channel means nothing else works there) are left to the caller, as Discord's docs do.
    """
    member_role_ids = {str(role_id) for role_id in member_role_ids}
    base = base_permissions(guild_id, member_role_ids, roles)
    if is_owner or base & ADMINISTRATOR:
        return ALL_PERMISSIONS
    by_target = {(int(ow["type"]), str(ow["id"])): ow for ow in overwrites}
    permissions = base
    everyone = by_target.get((ROLE_OVERWRITE, guild_id))
    if everyone is not None:
        permissions = (permissions & ~int(everyone.get("deny", 0))) | int(everyone.get("allow", 0))
    allow = deny = 0
    for role_id in member_role_ids - {guild_id}:
        overwrite = by_target.get((ROLE_OVERWRITE, role_id))
        if overwrite is not None:
            allow |= int(overwrite.get("allow", 0))
            deny |= int(overwrite.get("deny", 0))
    permissions = (permissions & ~deny) | allow
    member = by_target.get((MEMBER_OVERWRITE, member_id))
    if member is not None:
        permissions = (permissions & ~int(member.get("deny", 0))) | int(member.get("allow", 0))
    return permissions
