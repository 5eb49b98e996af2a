"""``/custom-bot``: the store's own Discord bot, exactly as the custom-bot document describes it."""

from __future__ import annotations

from typing import Any

from flask_discord_roles._core import bots
from flask_discord_roles._core.deliveries import store_stats
from flask_discord_roles._core.invites import store_invite_url
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.context import commit, json_body, state, store_id
from flask_discord_roles._web.api.errors import invalid, not_found
from flask_discord_roles._web.api.spec import (
    BOOLEAN,
    DATETIME,
    INTEGER,
    MESSAGE,
    NUMBER,
    SNOWFLAKE,
    STRING,
    documented,
    nullable,
    obj,
)
from flask_discord_roles._web.urls import store_interactions_url

TAG = "Custom bot"

STATS = obj(
    {
        "total_interactions": INTEGER,
        "total_roles_assigned": INTEGER,
        "total_roles_removed": INTEGER,
        "total_errors": INTEGER,
        "success_rate": NUMBER,
    },
    {"last_interaction_at": nullable(DATETIME), "is_active": BOOLEAN},
)
BOT_SUMMARY = obj(
    {"application_id": SNOWFLAKE, "is_enabled": BOOLEAN, "slash_commands_registered": BOOLEAN},
    {"last_interaction_at": nullable(DATETIME), "stats": STATS},
)
INTERACTIONS_URL = {"type": "string", "format": "uri", "description": "Paste into Interactions Endpoint URL."}
CREDENTIALS = {
    "type": "object",
    "properties": {
        "application_id": {"type": "string", "description": "Numeric snowflake (General Information)."},
        "public_key": {"type": "string", "description": "64 hex characters (General Information)."},
        "bot_token": {"type": "string", "description": "The bot's token (Bot page)."},
        "client_secret": {
            "type": "string",
            "description": "Optional: the application's OAuth2 client secret, so customers link Discord "
            "through the store's own application. Stored encrypted, never shown.",
        },
    },
    "required": ["application_id", "public_key", "bot_token"],
}
NO_BOT = "No custom bot is configured for this store. Save one with POST /custom-bot first."


def _own_bot() -> Any:
    bot = bots.get_bot(state(), store_id())
    if bot is None or bot.uses_platform_bot:
        raise not_found("custom_bot", NO_BOT)
    return bot


def interactions_url() -> str:
    """Where Discord must send this store's interactions, as the public sees this app."""
    return store_interactions_url(state(), store_id())


def _stats() -> dict[str, Any]:
    stats = store_stats(store_id()).to_dict()
    return {
        key: stats[key]
        for key in (
            "total_interactions",
            "total_roles_assigned",
            "total_roles_removed",
            "total_errors",
            "success_rate",
        )
    }


@tenant_api.get("/custom-bot")
@documented(
    summary="Get custom bot configuration",
    tag=TAG,
    responses={
        200: obj({"configured": BOOLEAN, "bot": nullable(BOT_SUMMARY), "interactions_url": INTERACTIONS_URL})
    },
)
def get_custom_bot() -> dict[str, Any]:
    bot = bots.get_bot(state(), store_id())
    if bot is None or bot.uses_platform_bot:
        return {"configured": False, "bot": None, "interactions_url": interactions_url()}
    stats = store_stats(store_id())
    return {
        "configured": True,
        "bot": {
            "application_id": bot.application_id,
            "is_enabled": bot.is_enabled,
            "slash_commands_registered": bot.slash_commands_registered,
            "last_interaction_at": stats.to_dict()["last_interaction_at"],
            "stats": _stats(),
        },
        "interactions_url": interactions_url(),
    }


@tenant_api.post("/custom-bot")
@documented(
    summary="Save custom bot credentials",
    description="Checks the token and application id with Discord, stores the token encrypted and "
    "registers /claim, /check and /help.",
    tag=TAG,
    body=CREDENTIALS,
    responses={
        200: obj(
            {
                "message": MESSAGE,
                "bot": obj(
                    {"application_id": SNOWFLAKE, "is_enabled": BOOLEAN, "slash_commands_registered": BOOLEAN}
                ),
                "interactions_url": INTERACTIONS_URL,
            }
        )
    },
    errors=(422, 503),
)
def save_custom_bot() -> dict[str, Any]:
    body = json_body()
    bot = bots.save_bot(
        state(),
        store_id(),
        # Whatever was sent: save_bot validates each field and names the wrong ones.
        application_id=body.get("application_id"),
        public_key=body.get("public_key"),
        bot_token=body.get("bot_token"),
        client_secret=body.get("client_secret"),
    )
    registered = bot.slash_commands_registered
    commit()
    return {
        "message": "Custom bot configured and commands registered successfully!"
        if registered
        else "Custom bot configured, but Discord did not accept the slash commands yet. "
        "Register them again with POST /custom-bot/register-commands.",
        "bot": {
            "application_id": bot.application_id,
            "is_enabled": bot.is_enabled,
            "slash_commands_registered": registered,
        },
        "interactions_url": interactions_url(),
    }


@tenant_api.delete("/custom-bot")
@documented(
    summary="Remove custom bot",
    description="Deletes the credentials. Queued deliveries wait (reason no_bot) until a bot is saved again.",
    tag=TAG,
    responses={200: obj({"message": MESSAGE})},
    errors=(404,),
)
def remove_custom_bot() -> dict[str, Any]:
    if not bots.remove_bot(state(), store_id()):
        raise not_found("custom_bot", NO_BOT)
    commit()
    return {"message": "Custom bot removed"}


@tenant_api.post("/custom-bot/test")
@documented(
    summary="Test bot connection",
    tag=TAG,
    responses={
        200: {
            "oneOf": [
                obj(
                    {
                        "connected": {"const": True},
                        "bot_name": STRING,
                        "bot_id": SNOWFLAKE,
                        "bot_avatar": STRING,
                    }
                ),
                obj(
                    {
                        "connected": {"const": False},
                        "error": {
                            "enum": [
                                bots.BOT_REFUSED,
                                bots.BOT_UNREADABLE,
                                bots.DISCORD_UNAVAILABLE,
                            ],
                            "description": "Why not, in fixed words: the custom-bot document's "
                            "`Invalid bot token` when Discord refuses the token.",
                        },
                    },
                    {"detail": MESSAGE},
                ),
            ]
        }
    },
    errors=(404,),
)
def test_custom_bot() -> dict[str, Any]:
    check = bots.check_connection(state(), _own_bot())
    if not check.connected:
        return {"connected": False, "error": check.error, "detail": check.detail}
    return {
        "connected": True,
        "bot_name": check.bot_name,
        "bot_id": check.bot_id,
        "bot_avatar": check.bot_avatar,
    }


@tenant_api.post("/custom-bot/toggle")
@documented(
    summary="Enable or disable the bot",
    tag=TAG,
    body={"type": "object", "properties": {"enabled": BOOLEAN}, "required": ["enabled"]},
    responses={200: obj({"message": MESSAGE, "is_enabled": BOOLEAN})},
    errors=(404, 422),
)
def toggle_custom_bot() -> dict[str, Any]:
    enabled = json_body().get("enabled")
    if not isinstance(enabled, bool):
        raise invalid({"enabled": ["Enabled must be true or false."]})
    _own_bot()
    bots.set_bot_enabled(state(), store_id(), enabled)
    commit()
    return {"message": "Bot enabled" if enabled else "Bot disabled", "is_enabled": enabled}


@tenant_api.post("/custom-bot/register-commands")
@documented(
    summary="Register slash commands",
    description="Re-registers /claim, /check and /help when they are missing.",
    tag=TAG,
    responses={200: obj({"message": MESSAGE, "slash_commands_registered": BOOLEAN})},
    errors=(404,),
)
def register_custom_bot_commands() -> dict[str, Any]:
    bot = _own_bot()
    problem = bots.register_commands(state(), bot)
    commit()
    if problem is not None:
        return {
            "message": f"Discord did not accept the commands: {problem}. Check the bot in the Developer "
            "Portal, then try again.",
            "slash_commands_registered": False,
        }
    return {
        "message": "Commands registered successfully! They may take up to an hour to appear globally.",
        "slash_commands_registered": True,
    }


@tenant_api.get("/custom-bot/invite-url")
@documented(
    summary="Get bot invite URL",
    description="The store's own bot; for a store without one, the platform's shared bot when this app "
    "has one (DISCORD_ROLES_APPLICATION_ID). 404 when there is neither.",
    tag=TAG,
    responses={200: obj({"url": {"type": "string", "format": "uri"}})},
    errors=(404,),
)
def custom_bot_invite_url() -> dict[str, Any]:
    try:
        return {"url": store_invite_url(state(), store_id())}
    except bots.BotNotConfigured as missing:
        raise not_found("custom_bot", str(missing)) from None


@tenant_api.get("/custom-bot/stats")
@documented(summary="Get bot statistics", tag=TAG, responses={200: obj({"stats": STATS})})
def custom_bot_stats() -> dict[str, Any]:
    return {"stats": store_stats(store_id()).to_dict()}
