"""Discord's permission arithmetic, written out independently so the fake can judge our own math."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ADD_REACTIONS",
    "ADMINISTRATOR",
    "ALL",
    "ATTACH_FILES",
    "CHANGE_NICKNAME",
    "CREATE_INSTANT_INVITE",
    "DEFAULT_EVERYONE",
    "EMBED_LINKS",
    "MANAGE_GUILD",
    "MANAGE_NICKNAMES",
    "MANAGE_ROLES",
    "MEMBER_OVERWRITE",
    "READ_MESSAGE_HISTORY",
    "ROLE_OVERWRITE",
    "SEND_MESSAGES",
    "USE_APPLICATION_COMMANDS",
    "USE_EXTERNAL_EMOJIS",
    "VIEW_CHANNEL",
    "base_permissions",
    "channel_permissions",
]

CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
MANAGE_NICKNAMES = 1 << 27
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
ALL = (1 << 51) - 1

# What a new guild's @everyone gets on Discord today (a subset that matters for bots and buyers).
DEFAULT_EVERYONE = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
)

ROLE_OVERWRITE = 0
MEMBER_OVERWRITE = 1


def base_permissions(everyone: int, role_permissions: Iterable[int], *, is_owner: bool) -> int:
    """Guild-level permissions: @everyone OR every role; owners and ADMINISTRATOR get everything."""
    if is_owner:
        return ALL
    permissions = everyone
    for bits in role_permissions:
        permissions |= bits
    return ALL if permissions & ADMINISTRATOR else permissions


def channel_permissions(
    base: int,
    *,
    guild_id: str,
    role_ids: Iterable[str],
    user_id: str,
    overwrites: Iterable[Mapping[str, Any]],
) -> int:
    """Apply overwrites in Discord's order: @everyone, then all role overwrites together, then member."""
    if base & ADMINISTRATOR:
        return ALL
    by_target = {(int(ow["type"]), str(ow["id"])): ow for ow in overwrites}
    permissions = base
    everyone = by_target.get((ROLE_OVERWRITE, guild_id))
    if everyone is not None:
        permissions = (permissions & ~int(everyone["deny"])) | int(everyone["allow"])
    allow = deny = 0
    for role_id in role_ids:
        ow = by_target.get((ROLE_OVERWRITE, role_id))
        if ow is not None:
            allow |= int(ow["allow"])
            deny |= int(ow["deny"])
    permissions = (permissions & ~deny) | allow
    member = by_target.get((MEMBER_OVERWRITE, user_id))
    if member is not None:
        permissions = (permissions & ~int(member["deny"])) | int(member["allow"])
    return permissions
