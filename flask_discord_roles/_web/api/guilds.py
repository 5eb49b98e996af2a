"""``/guilds`` and ``/mappings``: linking Discord servers to the store and mapping packages to roles."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core import backfills, guild_admin, guilds, mappings
from flask_discord_roles._runtime.models import RoleMapping
from flask_discord_roles._web.api.backfills import BACKFILL, backfill_json
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.context import commit, iso, json_body, query_text, state, store_id
from flask_discord_roles._web.api.errors import ApiError, invalid, not_found
from flask_discord_roles._web.api.spec import (
    BOOLEAN,
    DATETIME,
    HOST_ID,
    INTEGER,
    MESSAGE,
    SNOWFLAKE,
    STRING,
    Schema,
    array,
    documented,
    nullable,
    obj,
    query,
)
from flask_discord_roles.codes import ROLE_CODES, schema_enum
from flask_discord_roles.discord.snowflake import is_snowflake

GUILDS_TAG = "Guilds"
MAPPINGS_TAG = "Role mappings"

GUILD = obj(
    {
        "guild_id": SNOWFLAKE,
        "name": nullable(STRING),
        "icon_url": nullable({"type": "string", "format": "uri"}),
        "member_count": nullable(INTEGER),
        "linked_at": DATETIME,
        "bot_in_guild": {
            "anyOf": [BOOLEAN, {"type": "null"}],
            "description": "Null when Discord could not be asked: name and member count are as last read.",
        },
    }
)
ROLE = obj(
    {
        "id": SNOWFLAKE,
        "name": STRING,
        "position": INTEGER,
        "color": INTEGER,
        "managed": BOOLEAN,
        "assignable": BOOLEAN,
        "reason_code": nullable(
            {"enum": schema_enum(ROLE_CODES), "description": "Why the bot cannot give this role."}
        ),
        "fix": nullable(MESSAGE),
    }
)
TIER_FIELDS: dict[str, Schema] = {
    "group": nullable(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": mappings.TIER_GROUP_MAX_LENGTH,
            "description": "A tier group (e.g. `membership`): of a group, a member holds only the role "
            "of their highest-ranked active grant. Null: in no group. Needs `rank`.",
        }
    ),
    "rank": nullable(
        {
            "type": "integer",
            "minimum": 0,
            "maximum": mappings.TIER_RANK_MAX,
            "description": "The mapping's rank in its group; higher outranks lower. Mappings of one role "
            "in one group have the same rank. Null without a group.",
        }
    ),
    "keep_on_end": {
        **BOOLEAN,
        "description": "Keep the role when the purchase ends (refund, chargeback or expiry).",
    },
}
MAPPING = obj(
    {
        "id": INTEGER,
        "package_id": HOST_ID,
        "guild_id": SNOWFLAKE,
        "role_id": SNOWFLAKE,
        "role_name": nullable(STRING),
        "created_at": DATETIME,
        **TIER_FIELDS,
    }
)
BACKFILL_FLAG: dict[str, Schema] = {
    "backfill": {
        **BOOLEAN,
        "description": "Also give the role to every customer who already holds the package: starts a "
        "backfill (see Backfills; the running one if the mapping has one), answered as `backfill`.",
    }
}
NEW_MAPPING = {
    "type": "object",
    "properties": {
        "package_id": {**HOST_ID, "description": "The store's id of the package."},
        "guild_id": {**SNOWFLAKE, "description": "A server linked to the store."},
        "role_id": {**SNOWFLAKE, "description": "A role of that server the bot can assign."},
        **TIER_FIELDS,
        **BACKFILL_FLAG,
    },
    "required": ["package_id", "guild_id", "role_id"],
}
MAPPING_CHANGES = {
    "type": "object",
    "properties": {**TIER_FIELDS, **BACKFILL_FLAG},
    "additionalProperties": False,
    "description": "Only the fields to change; the others keep their values. `group: null` clears the "
    "rank too. The package, server and role of a mapping cannot change.",
}


def _not_linked(guild_id: str) -> ApiError:
    return not_found("guild", f"Server {guild_id} is not linked to this store.")


def _guild_id(guild_id: str) -> str:
    """The path's server id; 404 for what cannot be a Discord id (no server is linked under it)."""
    if not is_snowflake(guild_id):
        raise _not_linked(guild_id)
    return guild_id


def _mapping_json(mapping: RoleMapping) -> dict[str, Any]:
    return {
        "id": mapping.id,
        "package_id": mapping.package_id,
        "guild_id": mapping.guild_id,
        "role_id": mapping.role_id,
        "role_name": mapping.role_name,
        "created_at": iso(mapping.created_at),
        "group": mapping.tier_group,
        "rank": mapping.tier_rank,
        "keep_on_end": bool(mapping.keep_on_end),
    }


# -- guilds -----------------------------------------------------------------------------------------


@tenant_api.post("/guilds/link-code")
@documented(
    summary="Generate a link code",
    description="A one-time code, valid 30 minutes, that a server manager types as `/link code:…` in the "
    "server to link. Shown once: only its hash is stored.",
    tag=GUILDS_TAG,
    responses={201: obj({"code": STRING, "expires_at": DATETIME, "command": STRING, "message": MESSAGE})},
)
def create_link_code() -> tuple[dict[str, Any], int]:
    issued = guilds.create_link_code(state(), store_id())
    commit()
    minutes = int(guilds.LINK_CODE_LIFETIME.total_seconds() // 60)
    return {
        "code": issued.code,
        "expires_at": iso(issued.expires_at),
        "command": f"/link code:{issued.code}",
        "message": f"In your Discord server, run this command within {minutes} minutes. The code works once "
        "and is not shown again.",
    }, 201


@tenant_api.get("/guilds")
@documented(
    summary="List linked servers",
    description="Name, icon and member count come from Discord, kept for DISCORD_ROLES_GUILD_CACHE_SECONDS; "
    "when Discord cannot be asked, the values last read (null when never read).",
    tag=GUILDS_TAG,
    responses={200: obj({"guilds": array(GUILD)})},
)
def list_guilds() -> dict[str, Any]:
    summaries = guild_admin.list_guilds(state(), store_id())
    commit()  # the refreshed cache columns
    return {
        "guilds": [
            {
                "guild_id": summary.guild_id,
                "name": summary.name,
                "icon_url": summary.icon_url,
                "member_count": summary.member_count,
                "linked_at": iso(summary.linked_at),
                "bot_in_guild": summary.bot_in_guild,
            }
            for summary in summaries
        ]
    }


@tenant_api.delete("/guilds/<guild_id>")
@documented(
    summary="Unlink a server",
    description="Deletes the server's role mappings, fails its pending deliveries (reason code "
    "`guild_unlinked`; link again and retry to revive them) and switches purchase notifications off "
    "when their channel is in the server. Roles members already hold are not removed.",
    tag=GUILDS_TAG,
    responses={
        200: obj(
            {
                "message": MESSAGE,
                "guild_id": SNOWFLAKE,
                "mappings_deleted": INTEGER,
                "deliveries_stopped": INTEGER,
                "roles_left_in_place": {"const": True},
            }
        )
    },
)
def unlink_guild(guild_id: str) -> dict[str, Any]:
    guild_id = _guild_id(guild_id)
    try:
        unlinked = guild_admin.unlink_guild(state(), store_id(), guild_id)
    except guild_admin.GuildNotLinked:
        raise _not_linked(guild_id) from None
    commit()
    return {
        "message": _unlink_message(unlinked),
        "guild_id": guild_id,
        "mappings_deleted": unlinked.mappings_deleted,
        "deliveries_stopped": unlinked.deliveries_stopped,
        "roles_left_in_place": True,
    }


def _unlink_message(unlinked: guild_admin.Unlinked) -> str:
    parts = [
        f"Server unlinked: {unlinked.mappings_deleted} role mapping(s) deleted and "
        f"{unlinked.deliveries_stopped} pending delivery(ies) stopped "
        "(status failed, reason guild_unlinked); relinking does not bring them back.",
        "Roles already given to members were not removed; remove them by hand in Discord if they should go.",
    ]
    if unlinked.notifications_unchecked is not None:
        parts.append(
            f"Purchase notifications were switched off because {unlinked.notifications_unchecked}; "
            "switch them on again in the store's settings if their channel is in another linked server."
        )
    elif unlinked.notifications_stopped:
        parts.append("Purchase notifications were switched off: their channel is in that server.")
    return " ".join(parts)


@tenant_api.get("/guilds/<guild_id>/roles")
@documented(
    summary="List a server's roles",
    description="Highest first, each saying whether the store's bot can assign it and, if not, why "
    "(`reason_code`) and what to do (`fix`). 409 when the store has no bot or the bot is not in the server.",
    tag=GUILDS_TAG,
    responses={200: obj({"guild_id": SNOWFLAKE, "roles": array(ROLE)})},
    errors=(409, 503),
)
def list_guild_roles(guild_id: str) -> dict[str, Any]:
    guild_id = _guild_id(guild_id)
    try:
        roles = guild_admin.guild_roles(state(), store_id(), guild_id)
    except guild_admin.GuildNotLinked:
        raise _not_linked(guild_id) from None
    except guild_admin.BotUnavailable as unavailable:
        raise ApiError(409, unavailable.fix) from None
    return {
        "guild_id": guild_id,
        "roles": [
            {
                "id": role.id,
                "name": role.name,
                "position": role.position,
                "color": role.color,
                "managed": role.managed,
                "assignable": role.assignable,
                "reason_code": role.reason_code,
                "fix": role.fix,
            }
            for role in roles
        ],
    }


# -- mappings ---------------------------------------------------------------------------------------


@tenant_api.get("/mappings")
@documented(
    summary="List role mappings",
    tag=MAPPINGS_TAG,
    parameters=(
        query("guild_id", SNOWFLAKE, "Only this server's mappings."),
        query("package_id", HOST_ID, "Only this package's mappings."),
    ),
    responses={200: obj({"mappings": array(MAPPING)})},
)
def list_mappings() -> dict[str, Any]:
    package_id = query_text("package_id")
    problems = mappings.package_id_problems(package_id) if package_id is not None else []
    if problems:
        raise invalid({"package_id": problems})
    guild_id = query_text("guild_id", max_length=20)
    if guild_id is not None and not is_snowflake(guild_id):
        raise invalid({"guild_id": ["Must be a Discord id."]})
    found = mappings.list_mappings(state(), store_id(), guild_id=guild_id, package_id=package_id)
    return {"mappings": [_mapping_json(mapping) for mapping in found]}


@tenant_api.post("/mappings")
@documented(
    summary="Create a role mapping",
    description="Buying the package then grants the role. Many packages may map to one role and one "
    "package to many roles. The role must be one the store's bot can assign now. With `group` and "
    "`rank`, the mapping is a tier of a group: an upgrade gives the higher role, then takes back the "
    "lower one we gave; when the higher grant ends the next one's role comes back. With "
    "`keep_on_end`, the role stays when the purchase ends. With `backfill: true`, customers who "
    "already hold the package get the role too (a backfill, answered as `backfill`).",
    tag=MAPPINGS_TAG,
    body=NEW_MAPPING,
    responses={201: obj({"message": MESSAGE, "mapping": MAPPING}, {"backfill": BACKFILL})},
    errors=(409, 503),
)
def create_mapping() -> tuple[dict[str, Any], int]:
    body = json_body()
    backfill = _backfill_flag(body)
    try:
        mapping = mappings.create_mapping(
            state(),
            store_id(),
            body.get("package_id"),
            body.get("guild_id"),
            body.get("role_id"),
            group=body.get("group"),
            rank=body.get("rank"),
            keep_on_end=body.get("keep_on_end", False),
        )
        answer: dict[str, Any] = {"mapping": _mapping_json(mapping)}
        if backfill:
            answer["backfill"] = _backfill(mapping.id)
        commit()
    except mappings.DuplicateMapping:
        raise _duplicate() from None
    except guild_admin.BotUnavailable as unavailable:
        raise ApiError(409, unavailable.fix) from None
    except sa.exc.IntegrityError:
        # The same mapping, made by a concurrent request between our check and our commit.
        state().db.session.rollback()
        raise _duplicate() from None
    role = f"«{mapping.role_name}»" if mapping.role_name else f"role {mapping.role_id}"
    message = f"Buying package {mapping.package_id} now grants {role}."
    if backfill:
        message += " Its existing customers get it too, a batch at a time (see backfill)."
    return {"message": message, **answer}, 201


def _backfill_flag(body: dict[str, Any]) -> bool:
    """The request's ``backfill`` (taken out of the body: it is an instruction, not a mapping field)."""
    flag = body.pop("backfill", False)
    if not isinstance(flag, bool):
        raise invalid({"backfill": ["Must be true or false."]})
    return flag


def _backfill(mapping_id: int) -> dict[str, Any]:
    """Start (or keep) the mapping's backfill, in this request's transaction; its JSON."""
    job = backfills.backfill_mapping(state(), store_id(), mapping_id)
    return backfill_json(backfills.info_of(state(), job))


def _duplicate() -> ApiError:
    return ApiError(409, "This package is already mapped to this role in this server.")


@tenant_api.patch("/mappings/<int:mapping_id>")
@documented(
    summary="Update a role mapping",
    description="Changes the mapping's tier `group` and `rank` and `keep_on_end`; the fields not sent keep "
    "their values. Nothing is saved if any is refused. The new values decide role changes from now on. "
    "With `backfill: true` the role also goes to the package's existing customers (see Backfills).",
    tag=MAPPINGS_TAG,
    body=MAPPING_CHANGES,
    body_required=False,
    responses={200: obj({"message": MESSAGE, "mapping": MAPPING}, {"backfill": BACKFILL})},
    errors=(422,),
)
def update_mapping(mapping_id: int) -> dict[str, Any]:
    body = json_body()
    backfill = _backfill_flag(body)
    try:
        mapping = mappings.update_mapping(state(), store_id(), mapping_id, body)
    except mappings.MappingNotFound:
        raise not_found("mapping", f"This store has no role mapping {mapping_id}.") from None
    answer: dict[str, Any] = {"message": "Role mapping saved.", "mapping": _mapping_json(mapping)}
    if backfill:
        answer["backfill"] = _backfill(mapping.id)
    commit()
    return answer


@tenant_api.delete("/mappings/<int:mapping_id>")
@documented(
    summary="Delete a role mapping",
    description="Future purchases of the package no longer grant the role; roles already given and "
    "deliveries already queued are not changed.",
    tag=MAPPINGS_TAG,
    responses={200: obj({"message": MESSAGE})},
)
def delete_mapping(mapping_id: int) -> dict[str, Any]:
    try:
        mappings.delete_mapping(state(), store_id(), mapping_id)
    except mappings.MappingNotFound:
        raise not_found("mapping", f"This store has no role mapping {mapping_id}.") from None
    commit()
    return {"message": "Role mapping deleted. Roles already given stay with their members."}
