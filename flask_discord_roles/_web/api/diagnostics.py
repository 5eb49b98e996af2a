"""``/diagnostics``: everything a store owner could get wrong, each check with its fix in words."""

from __future__ import annotations

from typing import Any

from flask_discord_roles._core.diagnostics import run_diagnostics
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.bot import interactions_url
from flask_discord_roles._web.api.context import iso, state, store_id
from flask_discord_roles._web.api.spec import (
    BOOLEAN,
    DATETIME,
    SNOWFLAKE,
    STRING,
    Schema,
    array,
    documented,
    nullable,
    obj,
)
from flask_discord_roles.codes import CHECK_CODES, schema_enum

TAG = "Diagnostics"

CHECK: Schema = obj(
    {
        "check": {
            "type": "string",
            "description": "What was checked: bot_configured, token_valid (platform_bot_reachable on the "
            "platform's shared bot), commands_registered, interactions_received, guild_linked, and per "
            "linked server bot_in_guild, manage_roles, create_invite (when customers are added to the "
            "server as they link), role_assignable (per mapped role); notification_channel when "
            "notifications are on.",
        },
        "ok": BOOLEAN,
        "reason_code": nullable(
            {
                "enum": schema_enum(CHECK_CODES),
                "description": "Why not, e.g. token_revoked, bot_not_in_guild, missing_manage_roles, "
                "role_above_bot, managed_role, role_deleted, commands_missing, no_interactions, "
                "missing_channel_permissions, discord_unavailable.",
            }
        ),
        "fix": nullable({**STRING, "description": "What to do, in words to show the store owner."}),
        "guild_id": nullable(SNOWFLAKE),
        "role_id": nullable(SNOWFLAKE),
    }
)


@tenant_api.get("/diagnostics")
@documented(
    summary="Run diagnostics",
    description="Checks the bot, its token and commands, the linked servers, every mapped role and the "
    "notification channel against Discord. Never fails because Discord does: a check Discord did not "
    "answer says discord_unavailable.",
    tag=TAG,
    responses={200: obj({"ok": BOOLEAN, "checked_at": DATETIME, "checks": array(CHECK)})},
)
def diagnostics() -> dict[str, Any]:
    diagnosis = run_diagnostics(state(), store_id(), interactions_url=interactions_url())
    return {
        "ok": diagnosis.ok,
        "checked_at": iso(diagnosis.checked_at),
        "checks": [check.to_dict() for check in diagnosis.checks],
    }
