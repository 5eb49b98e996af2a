"""Role mappings: buying a package grants a role in a linked server.

Many packages may grant one role and one package many roles: each pair is its own row. A mapping is
only made for a role the store's bot can assign right now, so a store owner learns of a hierarchy or
permission problem while mapping, not from a customer who paid and got nothing.

A mapping may also sit in a tier ``group`` with a ``rank`` (a member holds only the highest-ranked role
of a group they have an active grant of, see :mod:`.tiers`), and may ``keep_on_end`` (its role stays
when the purchase ends). These three can change later (:func:`update_mapping`); the package, server
and role of a mapping cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.guild_admin import describe_role, get_link, read_roles
from flask_discord_roles._runtime.models import RoleMapping, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.discord.snowflake import is_snowflake
from flask_discord_roles.errors import Conflict, NotFound, ValidationError

PACKAGE_ID_MAX_LENGTH = 64
ROLE_NAME_MAX_LENGTH = 100
TIER_GROUP_MAX_LENGTH = 64
TIER_RANK_MAX = 1000
TIER_FIELDS = ("group", "rank", "keep_on_end")
"""What a mapping may change after it is made, by their API names (columns tier_group, tier_rank,
keep_on_end)."""
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
    state: DiscordRolesState,
    store_id: str,
    package_id: object,
    guild_id: object,
    role_id: object,
    *,
    group: object = None,
    rank: object = None,
    keep_on_end: object = False,
) -> RoleMapping:
    """Map ``package_id`` to a role of a server linked to the store, if the bot can assign that role.

    ``group`` and ``rank`` (both or neither) put it in a tier group; ``keep_on_end`` keeps its role
    when a purchase ends. Raises :class:`ValidationError` (malformed fields, server not linked, role
    unknown or never
    assignable by the bot, with the fix), :class:`DuplicateMapping`, or from
    :func:`~.guild_admin.read_roles` :class:`~.guild_admin.BotUnavailable` and
    :class:`~..discord.errors.TransientDiscordError`. Adds to the session; the caller commits (a
    concurrent identical mapping then fails the commit with an ``IntegrityError``).
    """
    wanted = check_request(package_id, guild_id, role_id)
    tier = _tier_values({"group": group, "rank": rank, "keep_on_end": keep_on_end}, None)
    _check_rank_agrees(state, store_id, wanted.guild_id, wanted.role_id, tier, None)
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
        **tier,
    )
    state.db.session.add(mapping)
    state.db.session.flush()
    return mapping


def update_mapping(
    state: DiscordRolesState, store_id: str, mapping_id: int, changes: Mapping[str, object]
) -> RoleMapping:
    """Change a mapping's ``group``, ``rank`` or ``keep_on_end``; the fields not sent keep their values.

    Clearing ``group`` (None) clears ``rank`` too. Raises :class:`MappingNotFound`, or
    :class:`ValidationError` naming each refused field (the package, server and role of a mapping do
    not change: delete it and map again), and then changes nothing. The new values decide role changes
    from now on; roles already given are not re-examined until their member's next role change. The
    caller commits.
    """
    mapping = _get(state, store_id, mapping_id)
    unknown = sorted(str(name) for name in changes if name not in TIER_FIELDS)
    if unknown:
        raise ValidationError(
            {
                name: [
                    "Only group, rank and keep_on_end of a mapping can change; delete the mapping and "
                    "create another for a different package, server or role."
                ]
                for name in unknown
            }
        )
    merged: dict[str, object] = {
        "group": mapping.tier_group,
        "rank": mapping.tier_rank,
        "keep_on_end": mapping.keep_on_end,
        **changes,
    }
    if "group" in changes and changes["group"] is None and "rank" not in changes:
        merged["rank"] = None
    tier = _tier_values(merged, changes)
    _check_rank_agrees(state, store_id, mapping.guild_id, mapping.role_id, tier, mapping.id)
    for column, value in tier.items():
        setattr(mapping, column, value)
    state.db.session.flush()
    return mapping


def _tier_values(values: Mapping[str, object], sent: Mapping[str, object] | None) -> dict[str, Any]:
    """The tier columns for ``values`` (API names), or :class:`ValidationError` naming each bad field.

    ``sent`` is what the caller sent (None: everything), so a missing partner is blamed on the field
    that was left out.
    """
    errors: dict[str, list[str]] = {}
    group, rank, keep = values.get("group"), values.get("rank"), values.get("keep_on_end", False)
    if group is not None and (
        not isinstance(group, str)
        or not group.strip()
        or len(group) > TIER_GROUP_MAX_LENGTH
        or any(ord(character) < 32 or ord(character) == 127 for character in group)
    ):
        errors["group"] = [
            f"group must be text of 1 to {TIER_GROUP_MAX_LENGTH} characters without control characters, "
            'e.g. "membership", or null for no tier group.'
        ]
    if rank is not None and (
        isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= TIER_RANK_MAX
    ):
        errors["rank"] = [
            f"rank must be a whole number from 0 to {TIER_RANK_MAX}: higher ranks outrank lower."
        ]
    if not isinstance(keep, bool):
        errors["keep_on_end"] = ["keep_on_end must be true or false."]
    if not errors and (group is None) != (rank is None):
        missing = "rank" if rank is None else "group"
        errors[missing] = [
            "A mapping in a tier group needs a rank."
            if missing == "rank"
            else "A rank needs a group: set group too, or send rank null."
        ]
    if errors:
        raise ValidationError(errors)
    return {"tier_group": group, "tier_rank": rank, "keep_on_end": keep}


def _check_rank_agrees(
    state: DiscordRolesState,
    store_id: str,
    guild_id: str,
    role_id: str,
    tier: Mapping[str, Any],
    mapping_id: int | None,
) -> None:
    """Within one server and group a role has one rank: another mapping of it there must agree."""
    if tier["tier_group"] is None:
        return
    model = state.models.RoleMapping
    query = sa.select(model.id, model.tier_rank).where(
        model.store_id == store_id,
        model.guild_id == guild_id,
        model.role_id == role_id,
        model.tier_group == tier["tier_group"],
        model.tier_rank != tier["tier_rank"],
    )
    if mapping_id is not None:
        query = query.where(model.id != mapping_id)
    other = state.db.session.execute(query.limit(1)).first()
    if other is not None:
        raise ValidationError(
            {
                "rank": [
                    f"Mapping {other.id} already gives this role rank {other.tier_rank} in group "
                    f"{tier['tier_group']!r}; mappings of one role in one group must have the same rank."
                ]
            }
        )


def delete_mapping(state: DiscordRolesState, store_id: str, mapping_id: int) -> RoleMapping:
    """Delete one of the store's mappings; :class:`MappingNotFound` when the store has no such mapping.

    Deliveries already queued for past orders stay queued: the mapping only decides what future
    purchases grant. The caller commits.
    """
    mapping = _get(state, store_id, mapping_id)
    state.db.session.delete(mapping)
    state.db.session.flush()
    return mapping


def _get(state: DiscordRolesState, store_id: str, mapping_id: int) -> RoleMapping:
    if not 0 < mapping_id <= LARGEST_ID:
        raise MappingNotFound(mapping_id)
    model = state.models.RoleMapping
    mapping = state.db.session.scalar(
        sa.select(model).where(model.store_id == store_id, model.id == mapping_id)
    )
    if mapping is None:
        raise MappingNotFound(mapping_id)
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
