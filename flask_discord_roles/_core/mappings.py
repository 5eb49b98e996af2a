"""Role mappings: buying a package grants a role in a linked server.

Many packages may grant one role and one package many roles: each pair is its own row. A mapping is
only made for a role the store's bot can assign right now, so a store owner learns of a hierarchy or
permission problem while mapping, not from a customer who paid and got nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from flask_discord_roles._core.guild_admin import describe_role, get_link, read_roles
from flask_discord_roles._runtime.models import RoleMapping, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.discord.snowflake import is_snowflake
from flask_discord_roles.errors import Conflict, NotFound, ValidationError

PACKAGE_ID_MAX_LENGTH = 64
ROLE_NAME_MAX_LENGTH = 100
LARGEST_ID = 2**31 - 1
"""Mapping ids are 32-bit: a larger one names no mapping (and SQLite cannot even bind one past 64 bits)."""


class MappingNotFound(NotFound):
    """No mapping with that id in the store."""


class DuplicateMapping(Conflict):
    """The store already maps this package to this role in this server."""

    def __init__(self, existing: RoleMapping) -> None:
        super().__init__(f"mapping {existing.id} already grants this role for this package")
        self.existing = existing


@dataclass(frozen=True)
class MappingRequest:
    """What a store owner asked to map, checked for shape only."""

    package_id: str
    guild_id: str
    role_id: str


def list_mappings(
    state: DiscordRolesState, store_id: str, *, guild_id: str | None = None, package_id: str | None = None
) -> list[RoleMapping]:
    """The store's mappings, oldest first, optionally of one server or one package."""
    model = state.models.RoleMapping
    query = sa.select(model).where(model.store_id == store_id).order_by(model.id)
    if guild_id is not None:
        query = query.where(model.guild_id == guild_id)
    if package_id is not None:
        query = query.where(model.package_id == package_id)
    return list(state.db.session.scalars(query))


def check_request(package_id: object, guild_id: object, role_id: object) -> MappingRequest:
    """The three fields, or :class:`ValidationError` naming each that is malformed."""
    errors: dict[str, list[str]] = {}
    package_problems = package_id_problems(package_id)
    if package_problems:
        errors["package_id"] = package_problems
    guild = _snowflake(guild_id, "guild_id", "Server", errors)
    role = _snowflake(role_id, "role_id", "Role", errors)
    if errors or not isinstance(package_id, str) or guild is None or role is None:
        raise ValidationError(errors)
    return MappingRequest(package_id, guild, role)


def package_id_problems(package_id: object) -> list[str]:
    """What is wrong with a package id, in words (empty when it is fine)."""
    if not isinstance(package_id, str) or not package_id.strip():
        return ["Package ID is required: the store's id of the package, as text."]
    if len(package_id) > PACKAGE_ID_MAX_LENGTH:
        return [f"Package ID must be at most {PACKAGE_ID_MAX_LENGTH} characters."]
    # PostgreSQL cannot store NUL in text, and no host's id holds a control character.
    if any(ord(character) < 32 or ord(character) == 127 for character in package_id):
        return ["Package ID must not contain control characters."]
    return []


def _snowflake(value: object, field: str, label: str, errors: dict[str, list[str]]) -> str | None:
    # Discord ids exceed what a JSON number keeps exactly in JavaScript, so only text is accepted.
    if isinstance(value, str) and is_snowflake(value):
        return value
    errors[field] = [
        f'{label} ID must be a Discord id written as text of digits, e.g. "1234567890123456789".'
    ]
    return None


def create_mapping(
    state: DiscordRolesState, store_id: str, package_id: object, guild_id: object, role_id: object
) -> RoleMapping:
    """Map ``package_id`` to a role of a server linked to the store, if the bot can assign that role.

    Raises :class:`ValidationError` (malformed fields, server not linked, role unknown or never
    assignable by the bot, with the fix), :class:`DuplicateMapping`, or from
    :func:`~.guild_admin.read_roles` :class:`~.guild_admin.BotUnavailable` and
    :class:`~..discord.errors.TransientDiscordError`. Adds to the session; the caller commits (a
    concurrent identical mapping then fails the commit with an ``IntegrityError``).
    """
    wanted = check_request(package_id, guild_id, role_id)
    if get_link(state, store_id, wanted.guild_id) is None:
        raise ValidationError(
            {
                "guild_id": [
                    "This server is not linked to the store. Link it with /link and a link code first."
                ]
            }
        )
    existing = _find(state, store_id, wanted)
    if existing is not None:
        raise DuplicateMapping(existing)
    roles, bot_role_ids = read_roles(state, store_id, wanted.guild_id)
    role = next((candidate for candidate in roles if str(candidate["id"]) == wanted.role_id), None)
    if role is None:
        raise ValidationError({"role_id": ["The server has no role with this id. Pick one of its roles."]})
    verdict = describe_role(wanted.guild_id, role, bot_role_ids, roles)
    if not verdict.assignable:
        raise ValidationError({"role_id": [f"The bot cannot assign «{verdict.name}». {verdict.fix}"]})
    mapping = state.models.RoleMapping(
        store_id=store_id,
        package_id=wanted.package_id,
        guild_id=wanted.guild_id,
        role_id=wanted.role_id,
        role_name=verdict.name[:ROLE_NAME_MAX_LENGTH] or None,
        created_at=utcnow(),
    )
    state.db.session.add(mapping)
    state.db.session.flush()
    return mapping


def delete_mapping(state: DiscordRolesState, store_id: str, mapping_id: int) -> RoleMapping:
    """Delete one of the store's mappings; :class:`MappingNotFound` when the store has no such mapping.

    Deliveries already queued for past orders stay queued: the mapping only decides what future
    purchases grant. The caller commits.
    """
    if not 0 < mapping_id <= LARGEST_ID:
        raise MappingNotFound(mapping_id)
    model = state.models.RoleMapping
    mapping = state.db.session.scalar(
        sa.select(model).where(model.store_id == store_id, model.id == mapping_id)
    )
    if mapping is None:
        raise MappingNotFound(mapping_id)
    state.db.session.delete(mapping)
    state.db.session.flush()
    return mapping


def _find(state: DiscordRolesState, store_id: str, wanted: MappingRequest) -> RoleMapping | None:
    model = state.models.RoleMapping
    return state.db.session.scalar(
        sa.select(model).where(
            model.store_id == store_id,
            model.package_id == wanted.package_id,
            model.guild_id == wanted.guild_id,
            model.role_id == wanted.role_id,
        )
    )
