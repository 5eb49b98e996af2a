"""``/customers/<customer_id>/role-connection``: what we last pushed as a customer's Discord role
connection (Linked Roles), and where it stands; POST queues it again with fresh values."""

from __future__ import annotations

from typing import Any

from flask_discord_roles._core import linked_roles
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.context import commit, iso, state, store_id
from flask_discord_roles._web.api.spec import (
    BOOLEAN,
    DATETIME,
    HOST_ID,
    INTEGER,
    MESSAGE,
    SNOWFLAKE,
    STRING,
    documented,
    nullable,
    obj,
)
from flask_discord_roles.codes import CONNECTION_CODES, SendStatus, enum_values, schema_enum

TAG = "Customers"

CONNECTION = obj(
    {
        "discord_user_id": SNOWFLAKE,
        "metadata": obj(
            {
                "verified_buyer": BOOLEAN,
                "active_subscription": BOOLEAN,
                "total_orders": INTEGER,
                "customer_since": nullable(DATETIME),
            },
            description="The values as computed when the change was queued (customer_since: the first "
            "order, ISO 8601).",
        ),
        "status": {
            "enum": enum_values(SendStatus),
            "description": "pending: waiting to be pushed (or retried); sent: Discord has these values; "
            "failed: see reason_code.",
        },
        "attempts": INTEGER,
        "reason_code": nullable({"enum": schema_enum(CONNECTION_CODES)}),
        "reason": nullable(STRING),
        "next_attempt_at": nullable(DATETIME),
        "pushed_at": nullable(DATETIME),
        "updated_at": DATETIME,
    }
)
ANSWER = obj({"customer_id": HOST_ID, "connection": nullable(CONNECTION)})


def _json(customer_id: str, info: linked_roles.ConnectionInfo | None) -> dict[str, Any]:
    if info is None:
        return {"customer_id": customer_id, "connection": None}
    return {
        "customer_id": customer_id,
        "connection": {
            "discord_user_id": info.discord_user_id,
            "metadata": info.metadata,
            "status": info.status,
            "attempts": info.attempts,
            "reason_code": info.reason_code,
            "reason": info.reason,
            "next_attempt_at": iso(info.next_attempt_at),
            "pushed_at": iso(info.pushed_at),
            "updated_at": iso(info.updated_at),
        },
    }


@tenant_api.get("/customers/<customer_id>/role-connection")
@documented(
    summary="Get a customer's Linked Roles connection",
    description="What we last pushed (or are about to push) as the customer's Discord role connection, "
    "and its status. connection is null when the store has Linked Roles off or the customer never "
    "linked Discord since it was on.",
    tag=TAG,
    responses={200: ANSWER},
)
def get_role_connection(customer_id: str) -> dict[str, Any]:
    return _json(customer_id, linked_roles.connection_of(state(), store_id(), customer_id))


@tenant_api.post("/customers/<customer_id>/role-connection")
@documented(
    summary="Push a customer's Linked Roles connection again",
    description="Recomputes the customer's values and queues them to push (e.g. after they linked "
    "Discord again). connection is null when the store has Linked Roles off or the customer is not "
    "linked.",
    tag=TAG,
    responses={202: obj({"message": MESSAGE, **ANSWER["properties"]})},
)
def refresh_role_connection(customer_id: str) -> tuple[dict[str, Any], int]:
    linked_roles.queue_connection(state(), store_id(), customer_id)
    info = linked_roles.connection_of(state(), store_id(), customer_id)
    commit()
    return {"message": "Role connection queued.", **_json(customer_id, info)}, 202
