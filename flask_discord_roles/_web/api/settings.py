"""``/settings``: the store's Discord settings (account linking, notifications, delivery mode, expiry,
time-limited grants)."""

from __future__ import annotations

from typing import Any

from flask_discord_roles._core import settings as service
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.context import commit, json_body, state, store_id
from flask_discord_roles._web.api.spec import (
    BOOLEAN,
    MESSAGE,
    SNOWFLAKE,
    STRING,
    Schema,
    documented,
    nullable,
    obj,
)

TAG = "Settings"

TEXT: Schema = {"type": "string", "maxLength": service.MAX_TEXT_LENGTH}
DELIVERY_MODE: Schema = {
    "type": "string",
    "enum": list(service.DELIVERY_MODES),
    "description": "automatic: roles are given at checkout; claim: buyers run /claim in the server.",
}
EXPIRY_HOURS: Schema = {"type": "integer", "minimum": 1, "maximum": service.MAX_CLAIM_EXPIRY_HOURS}
FIELDS: dict[str, Schema] = {
    "linking_enabled": {**BOOLEAN, "description": "Customers may link their Discord account."},
    "require_link": {**BOOLEAN, "description": "Checkout needs a linked account (needs linking_enabled)."},
    "join_guilds_on_link": {**BOOLEAN, "description": "Linking also adds the customer to linked servers."},
    "notifications_enabled": {**BOOLEAN, "description": "Post each purchase in the notification channel."},
    "notification_channel_id": nullable(
        {**SNOWFLAKE, "description": "A text channel of a linked server where the bot may post."}
    ),
    "welcome_message": nullable({**TEXT, "description": "Shown when a customer links their account."}),
    "checkout_prompt": nullable({**TEXT, "description": "Asks the customer to link during checkout."}),
    "delivery_mode": DELIVERY_MODE,
    "claims_expire": {**BOOLEAN, "description": "Unclaimed roles expire after claim_expiry_hours."},
    "claim_expiry_hours": EXPIRY_HOURS,
    "grace_hours": {
        "type": "integer",
        "minimum": 0,
        "maximum": service.MAX_GRANT_HOURS,
        "description": "Hours a time-limited grant keeps its roles after expires_at (a failed renewal "
        "payment); changing it moves the end of the store's active grants.",
    },
    "expiry_reminder_hours": nullable(
        {
            "type": "integer",
            "minimum": 1,
            "maximum": service.MAX_GRANT_HOURS,
            "description": "Remind the member this many hours before a time-limited grant expires; null: "
            "no reminders.",
        }
    ),
    "expiry_reminder_dm": {
        **BOOLEAN,
        "description": "The reminder is also a direct message from the store's bot (the host's "
        "grant_expiring signal is sent either way).",
    },
    "reconcile_mode": {
        "type": "string",
        "enum": list(service.RECONCILE_MODES),
        "description": "What the reconciler does about drift: off (scheduled runs skip the store), "
        "report (record it) or repair (give back lost roles, take back ended ones we granted).",
    },
    "linked_roles_enabled": {
        **BOOLEAN,
        "description": "Keep each linked customer's Discord role connection (Linked Roles: verified_buyer, "
        "active_subscription, total_orders, customer_since) current. Switching it on registers the fields "
        "with Discord in this request (a 400 names the problem when Discord refuses), and linking asks "
        "for the role_connections.write scope from then on.",
    },
}
SETTINGS = obj(
    {
        **FIELDS,
        "welcome_message": nullable(STRING),
        "checkout_prompt": nullable(STRING),
    }
)
CHANGES: Schema = {
    "type": "object",
    "properties": FIELDS,
    "additionalProperties": False,
    "description": "Only the settings to change; the others keep their values.",
}


@tenant_api.get("/settings")
@documented(
    summary="Get Discord settings",
    description="The store's settings; the defaults for a store that never saved any.",
    tag=TAG,
    responses={200: obj({"settings": SETTINGS})},
)
def get_settings() -> dict[str, Any]:
    return {"settings": service.settings_dict(service.store_settings(state(), store_id()))}


@tenant_api.patch("/settings")
@documented(
    summary="Update Discord settings",
    description="Changes the settings sent and keeps the others. Nothing is saved if any is refused. A new "
    "notification channel is checked with Discord: it must be a text channel of a linked server where the "
    "bot has View Channel, Send Messages and Embed Links.",
    tag=TAG,
    body=CHANGES,
    body_required=False,
    responses={200: obj({"message": MESSAGE, "settings": SETTINGS})},
    errors=(422, 503),
)
def update_settings() -> dict[str, Any]:
    saved = service.update_settings(state(), store_id(), json_body())
    result = service.settings_dict(saved)
    commit()
    return {"message": "Settings saved.", "settings": result}
