"""Permission bits and role-hierarchy rules, computed the way Discord computes them.

Used to explain failures before (or instead of) provoking a 403 from Discord: each refused request
counts towards Discord's invalid-request ban.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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
