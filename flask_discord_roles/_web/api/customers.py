"""``/customers/<customer_id>``: a customer's Discord link and roles, and roles given or taken by hand."""

from __future__ import annotations

from typing import Any

from flask import request

from flask_discord_roles._core import customers, manual_changes
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.context import commit, iso, json_body, state, store_id
from flask_discord_roles._web.api.deliveries import DELIVERY, delivery_json
from flask_discord_roles._web.api.spec import (
    BOOLEAN,
    COUNT,
    DATETIME,
    HOST_ID,
    INTEGER,
    MESSAGE,
    SNOWFLAKE,
    STRING,
    array,
    documented,
    nullable,
    obj,
    query,
)
from flask_discord_roles.codes import DELIVERY_CODES, schema_enum

TAG = "Customers"

CUSTOMER = obj(
    {
        "customer_id": HOST_ID,
        "discord": obj(
            {
                "linked": BOOLEAN,
                "discord_user_id": nullable(SNOWFLAKE),
                "username": nullable(STRING),
                "avatar_url": nullable({"type": "string", "format": "uri"}),
                "linked_at": nullable(DATETIME),
            }
        ),
        "roles": array(
            obj(
                {
                    "guild_id": SNOWFLAKE,
                    "role_id": SNOWFLAKE,
                    "role_name": nullable(STRING),
                    "status": {
                        "enum": list(customers.ROLE_STATUSES),
                        "description": "held: given (or kept by another purchase); pending: queued or "
                        "waiting for the customer; failed/expired: see reason_code; removed; "
                        "removal_pending: a removal is queued.",
                    },
                    "delivery_id": INTEGER,
                    "reason_code": nullable({"enum": schema_enum(DELIVERY_CODES)}),
                    "updated_at": DATETIME,
                }
            )
        ),
        "counts": obj(dict.fromkeys(customers.COUNTED_STATUSES, COUNT)),
    }
)
CHANGED = obj({"message": MESSAGE, "delivery": DELIVERY})
ASSIGNMENT = {
    "type": "object",
    "properties": {
        "guild_id": {**SNOWFLAKE, "description": "A server linked to this store."},
        "role_id": SNOWFLAKE,
        "discord_user_id": {**SNOWFLAKE, "description": "Defaults to the customer's linked account."},
        "role_name": {"type": "string", "minLength": 1, "maxLength": 100},
    },
    "required": ["guild_id", "role_id"],
}


@tenant_api.get("/customers/<customer_id>")
@documented(
    summary="Get a customer's Discord link and roles",
    description="Each role the store ever queued for the customer, as its latest delivery leaves it. "
    "A customer we have not seen yet is simply not linked and has no roles.",
    tag=TAG,
    responses={200: CUSTOMER},
    errors=(422,),
)
def get_customer(customer_id: str) -> dict[str, Any]:
    found = customers.customer_status(state(), store_id(), customer_id)
    return {
        "customer_id": found.customer_id,
        "discord": _discord(found.account),
        "roles": [
            {
                "guild_id": role.guild_id,
                "role_id": role.role_id,
                "role_name": role.role_name,
                "status": role.status,
                "delivery_id": role.delivery_id,
                "reason_code": role.reason_code,
                "updated_at": iso(role.updated_at),
            }
            for role in found.roles
        ],
        "counts": found.counts,
    }


def _discord(account: customers.LinkedAccount | None) -> dict[str, Any]:
    if account is None:
        return {"linked": False} | dict.fromkeys(("discord_user_id", "username", "avatar_url", "linked_at"))
    return {
        "linked": True,
        "discord_user_id": account.discord_user_id,
        "username": account.username,
        "avatar_url": account.avatar_url,
        "linked_at": iso(account.linked_at),
    }


@tenant_api.post("/customers/<customer_id>/roles")
@documented(
    summary="Give a customer a role by hand",
    description="Queued as a manual delivery and carried out right after; the delivery shows how it went.",
    tag=TAG,
    body=ASSIGNMENT,
    responses={202: CHANGED},
)
def assign_customer_role(customer_id: str) -> tuple[dict[str, Any], int]:
    body = json_body()
    info = manual_changes.assign_role(
        state(),
        store_id(),
        customer_id=customer_id,
        guild_id=body.get("guild_id"),
        role_id=body.get("role_id"),
        discord_user_id=body.get("discord_user_id"),
        role_name=body.get("role_name"),
    )
    commit()
    return {"message": "Role assignment queued.", "delivery": delivery_json(info)}, 202


@tenant_api.delete("/customers/<customer_id>/roles/<guild_id>/<role_id>")
@documented(
    summary="Take a role from a customer by hand",
    description="Removes the role whoever granted it, and ends the store's grants of it to this person so "
    "a later /claim does not give it back.",
    tag=TAG,
    parameters=[
        query(
            "discord_user_id",
            SNOWFLAKE,
            "Whose role to remove; defaults to the customer's linked account, then to whoever the "
            "customer's latest delivery of this role went to.",
        )
    ],
    responses={202: CHANGED},
)
def remove_customer_role(customer_id: str, guild_id: str, role_id: str) -> tuple[dict[str, Any], int]:
    info = manual_changes.remove_role(
        state(),
        store_id(),
        customer_id=customer_id,
        guild_id=guild_id,
        role_id=role_id,
        discord_user_id=request.args.get("discord_user_id") or None,
    )
    commit()
    return {"message": "Role removal queued.", "delivery": delivery_json(info)}, 202
