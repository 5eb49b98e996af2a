"""``/grants`` and ``/customers/<customer_id>/grants``: time-limited grants (subscriptions, fixed terms)."""

from __future__ import annotations

from typing import Any

from flask_discord_roles._core import grant_records
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.context import query_text, state, store_id
from flask_discord_roles._web.api.spec import (
    COUNT,
    DATETIME,
    HOST_ID,
    INTEGER,
    SNOWFLAKE,
    Schema,
    array,
    documented,
    nullable,
    obj,
    query,
)
from flask_discord_roles.codes import REMINDER_CODES, GrantEnd, enum_values, schema_enum

TAG = "Grants"

STATUS: Schema = {
    "type": "string",
    "enum": list(grant_records.GRANT_STATUSES),
    "description": "active: it entitles the customer; ended: see end_reason.",
}
GRANT = obj(
    {
        "id": INTEGER,
        "store_id": HOST_ID,
        "customer_id": nullable(HOST_ID),
        "discord_user_id": nullable(SNOWFLAKE),
        "package_id": HOST_ID,
        "subscription_id": nullable(HOST_ID),
        "order_id": {**HOST_ID, "description": "The order that started the grant and gave its roles."},
        "last_order_id": {**HOST_ID, "description": "The latest order that paid for it (a renewal's)."},
        "status": STATUS,
        "expires_at": nullable({**DATETIME, "description": "When what was bought expires."}),
        "ends_at": nullable(
            {**DATETIME, "description": "When its roles go: expires_at plus the store's grace_hours."}
        ),
        "renewals": COUNT,
        "reminded_at": nullable({**DATETIME, "description": "When the expiry reminder went."}),
        "reminder_reason_code": nullable(
            {
                "enum": schema_enum(REMINDER_CODES),
                "description": "Why the reminder's direct message did not go (the grant_expiring "
                "signal was sent all the same); it is not tried again.",
            }
        ),
        "ended_at": nullable(DATETIME),
        "end_reason": nullable(
            {
                "enum": enum_values(GrantEnd),
                "description": "expired: expires_at plus grace passed; revoked: order_revoked.",
            }
        ),
    }
)
GRANTS = obj({"grants": array(GRANT)})
STATUS_FILTER = query("status", STATUS, "Only grants with this status.")


@tenant_api.get("/customers/<customer_id>/grants")
@documented(
    summary="List a customer's time-limited grants",
    description="The customer's subscriptions and fixed-term purchases, one grant per package, newest "
    f"first (at most {grant_records.MAX_LISTED_GRANTS}): when each expires, when its roles go, how often "
    "it was renewed.",
    tag=TAG,
    parameters=[STATUS_FILTER],
    responses={200: GRANTS},
    errors=(422,),
)
def list_customer_grants(customer_id: str) -> dict[str, Any]:
    found = grant_records.list_grants(
        state(), store_id(), customer_id=customer_id, status=query_text("status")
    )
    return {"grants": [grant.to_dict() for grant in found]}


@tenant_api.get("/grants")
@documented(
    summary="List time-limited grants",
    description="The store's subscriptions and fixed-term purchases, newest first (at most "
    f"{grant_records.MAX_LISTED_GRANTS}), narrowed by status, customer or Discord user.",
    tag=TAG,
    parameters=[
        STATUS_FILTER,
        query("customer_id", HOST_ID, "Only this customer's grants."),
        query("discord_user_id", SNOWFLAKE, "Only grants bought for this Discord account."),
    ],
    responses={200: GRANTS},
    errors=(422,),
)
def list_grants() -> dict[str, Any]:
    found = grant_records.list_grants(
        state(),
        store_id(),
        customer_id=query_text("customer_id"),
        discord_user_id=query_text("discord_user_id", max_length=20),
        status=query_text("status"),
    )
    return {"grants": [grant.to_dict() for grant in found]}
