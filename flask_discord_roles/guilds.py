"""Linking Discord servers to stores and mapping packages to roles, for the host's own dashboard (inside an
app context)::

    from flask_discord_roles import guilds

    issued = guilds.create_link_code(store.id)
    db.session.commit()
    flash(f"In your server, run /link code:{issued.code} before {issued.expires_at:%H:%M} UTC")

Each function adds its changes to your session: commit them. Signals go out after your commit.
"""

from __future__ import annotations

from flask_discord_roles._core import guild_admin as _admin
from flask_discord_roles._core import guilds as _service
from flask_discord_roles._core import mappings as _mappings
from flask_discord_roles._core.guild_admin import (
    BotUnavailable,
    GuildNotLinked,
    GuildRole,
    GuildSummary,
    Unlinked,
)
from flask_discord_roles._core.guilds import LINK_CODE_LIFETIME, IssuedCode, LinkRefusal
from flask_discord_roles._core.mappings import DuplicateMapping, MappingNotFound
from flask_discord_roles._runtime.models import RoleMapping
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.errors import ValidationError

__all__ = [
    "LINK_CODE_LIFETIME",
    "BotUnavailable",
    "DuplicateMapping",
    "GuildNotLinked",
    "GuildRole",
    "GuildSummary",
    "IssuedCode",
    "LinkRefusal",
    "MappingNotFound",
    "Unlinked",
    "ValidationError",
    "create_link_code",
    "create_mapping",
    "delete_mapping",
    "guild_roles",
    "list_guilds",
    "list_mappings",
    "unlink_guild",
    "update_mapping",
]


def create_link_code(store_id: object) -> IssuedCode:
    """A one-time code the store's server manager types as ``/link code:…``; valid 30 minutes, once.

    Added to your session: commit it. Only the code's hash is stored, so show ``code`` now.
    """
    return _service.create_link_code(get_state(), str(store_id))


def list_guilds(store_id: object) -> list[GuildSummary]:
    """The store's linked servers with name, icon and member count from Discord (cached; the last values
    read when Discord cannot be asked). Commit afterwards to keep the refreshed cache."""
    return _admin.list_guilds(get_state(), str(store_id))


def unlink_guild(store_id: object, guild_id: str) -> Unlinked:
    """Unlink a server: its mappings are deleted, its pending deliveries fail (``guild_unlinked``) and
    notifications stop if their channel is in it. Roles members hold are left in place.

    Raises :class:`GuildNotLinked`. Sends :data:`~flask_discord_roles.guild_unlinked` after your commit.
    """
    return _admin.unlink_guild(get_state(), str(store_id), guild_id)


def guild_roles(store_id: object, guild_id: str) -> list[GuildRole]:
    """A linked server's roles, highest first, with whether the store's bot can assign each and why not.

    Raises :class:`GuildNotLinked`, or :class:`BotUnavailable` whose ``fix`` says what to do.
    """
    return _admin.guild_roles(get_state(), str(store_id), guild_id)


def list_mappings(
    store_id: object, *, guild_id: str | None = None, package_id: str | None = None
) -> list[RoleMapping]:
    """The store's role mappings, oldest first, optionally of one server or one package."""
    return _mappings.list_mappings(get_state(), str(store_id), guild_id=guild_id, package_id=package_id)


def create_mapping(
    store_id: object,
    package_id: str,
    guild_id: str,
    role_id: str,
    *,
    group: str | None = None,
    rank: int | None = None,
    keep_on_end: bool = False,
) -> RoleMapping:
    """Map a package to a role of a linked server the store's bot can assign.

    ``group`` and ``rank`` (both or neither; rank 0 to 1000, higher outranks lower) put the mapping in
    a tier group: a member holds only the role of their highest-ranked active grant of the group.
    ``keep_on_end`` keeps the role when the purchase ends (refund or expiry). Raises
    :class:`ValidationError` (with the fix for a role the bot cannot assign), :class:`DuplicateMapping`
    or :class:`BotUnavailable`.
    """
    return _mappings.create_mapping(
        get_state(),
        str(store_id),
        package_id,
        guild_id,
        role_id,
        group=group,
        rank=rank,
        keep_on_end=keep_on_end,
    )


def update_mapping(store_id: object, mapping_id: int, **changes: object) -> RoleMapping:
    """Change a mapping's ``group``, ``rank`` or ``keep_on_end``; the others keep their values::

        guilds.update_mapping(store.id, mapping.id, group="membership", rank=2)

    ``group=None`` takes it out of its group. Raises :class:`MappingNotFound` or
    :class:`ValidationError` (naming each refused field; nothing is changed then).
    """
    return _mappings.update_mapping(get_state(), str(store_id), mapping_id, changes)


def delete_mapping(store_id: object, mapping_id: int) -> None:
    """Delete one of the store's mappings; raises :class:`MappingNotFound`."""
    _mappings.delete_mapping(get_state(), str(store_id), mapping_id)
