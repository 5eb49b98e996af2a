"""``/deliveries``: the store's role deliveries: list and filter, read one, retry one or many."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask_discord_roles._core import deliveries
from flask_discord_roles._core.deliveries import MAX_ID, MAX_PAGE_SIZE, RETRYABLE, SOURCES, STATUSES
from flask_discord_roles._core.records import DeliveryInfo
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.context import (
    commit,
    json_body,
    query_int,
    query_text,
    query_time,
    store_id,
)
from flask_discord_roles._web.api.errors import invalid, not_found
from flask_discord_roles._web.api.spec import (
    COUNT,
    DATETIME,
    HOST_ID,
    INTEGER,
    MESSAGE,
    SNOWFLAKE,
    STRING,
    TIME_FILTER,
    Schema,
    array,
    documented,
    nullable,
    obj,
    query,
)
from flask_discord_roles.codes import DELIVERY_CODES, Action, Status, enum_values, schema_enum

TAG = "Deliveries"

DELIVERY = obj(
    {
        "id": INTEGER,
        "store_id": HOST_ID,
        "action": {"enum": enum_values(Action)},
        "status": {"enum": list(STATUSES)},
        "source": {"enum": list(SOURCES)},
        "guild_id": SNOWFLAKE,
        "role_id": SNOWFLAKE,
        "role_name": nullable(STRING),
        "discord_user_id": nullable(SNOWFLAKE),
        "customer_id": nullable(HOST_ID),
        "order_id": nullable(HOST_ID),
        "package_id": nullable(HOST_ID),
        "attempts": INTEGER,
        "next_attempt_at": nullable(DATETIME),
        "reason_code": nullable({"enum": schema_enum(DELIVERY_CODES)}),
        "reason": {**nullable(STRING), "description": "Why it failed or waits, and what to do about it."},
        "expires_at": nullable(DATETIME),
        "created_at": DATETIME,
        "updated_at": DATETIME,
        "completed_at": nullable(DATETIME),
    }
)
"""One delivery as every operation returns it (:meth:`DeliveryInfo.to_dict`)."""


NOT_FOUND = "This store has no delivery with that id."
_CURSOR_PREFIX = "before:"

FILTERS = [
    query("status", {"enum": list(STATUSES)}, "Only deliveries with this status."),
    query("source", {"enum": list(SOURCES)}, "Only deliveries from this source."),
    query("customer_id", HOST_ID, "Only this customer's deliveries (the host's customer id)."),
    query("order_id", HOST_ID, "Only this order's deliveries (the host's order id)."),
    query("discord_user_id", SNOWFLAKE, "Only deliveries to this Discord user."),
    query("guild_id", SNOWFLAKE, "Only deliveries in this Discord server."),
    query("created_after", TIME_FILTER, "Created at or after this time."),
    query("created_before", TIME_FILTER, "Created before this time."),
]
PAGING = [
    query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50},
        "Deliveries per page.",
    ),
    query("cursor", STRING, "The `next_cursor` of the previous page."),
]
# null, like a missing key, means "any": a dashboard form may send its empty filters either way.
RETRY_FIELDS: dict[str, Schema] = {
    "status": {**nullable({"enum": list(RETRYABLE)}), "default": Status.FAILED.value},
    "source": nullable({"enum": list(SOURCES)}),
    "customer_id": nullable(HOST_ID),
    "order_id": nullable(HOST_ID),
    "discord_user_id": nullable(SNOWFLAKE),
    "guild_id": nullable(SNOWFLAKE),
    "reason_code": nullable({"enum": schema_enum(DELIVERY_CODES), "examples": ["member_not_in_guild"]}),
}
RETRY_FILTERS: Schema = {"type": "object", "properties": RETRY_FIELDS, "additionalProperties": False}


def delivery_json(info: DeliveryInfo) -> dict[str, Any]:
    return info.to_dict()


def encode_cursor(before_id: int) -> str:
    """Opaque to callers, so paging may change how it works without breaking a dashboard."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{before_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit() or not 0 < int(number) <= MAX_ID:
        raise invalid({"cursor": ["Cursor is not one we gave out: pass next_cursor from the previous page."]})
    return int(number)


@tenant_api.get("/deliveries")
@documented(
    summary="List deliveries",
    description="Newest first. Filters combine; follow `next_cursor` (null on the last page) for more.",
    tag=TAG,
    parameters=[*FILTERS, *PAGING],
    responses={200: obj({"deliveries": array(DELIVERY), "next_cursor": nullable(STRING)})},
)
def list_deliveries() -> dict[str, Any]:
    cursor = query_text("cursor", max_length=128)
    page = deliveries.list_deliveries(
        store_id(),
        status=query_text("status"),
        source=query_text("source"),
        customer_id=query_text("customer_id"),
        order_id=query_text("order_id"),
        discord_user_id=query_text("discord_user_id"),
        guild_id=query_text("guild_id"),
        created_after=query_time("created_after"),
        created_before=query_time("created_before"),
        limit=query_int("limit", minimum=1, maximum=MAX_PAGE_SIZE, default=50) or 50,
        before_id=None if cursor is None else decode_cursor(cursor),
    )
    return {
        "deliveries": [delivery_json(item) for item in page.items],
        "next_cursor": None if page.next_before_id is None else encode_cursor(page.next_before_id),
    }


@tenant_api.get("/deliveries/<int:delivery_id>")
@documented(summary="Get one delivery", tag=TAG, responses={200: obj({"delivery": DELIVERY})})
def get_delivery(delivery_id: int) -> dict[str, Any]:
    try:
        info = deliveries.get_delivery(store_id(), delivery_id)
    except deliveries.DeliveryNotFound:
        raise not_found("delivery", NOT_FOUND) from None
    return {"delivery": delivery_json(info)}


@tenant_api.post("/deliveries/<int:delivery_id>/retry")
@documented(
    summary="Retry one delivery",
    description="A failed or expired delivery goes back to pending with fresh attempts and runs again "
    "at once if we know the customer's Discord account.",
    tag=TAG,
    responses={200: obj({"message": MESSAGE, "delivery": DELIVERY})},
    errors=(422,),
)
def retry_delivery(delivery_id: int) -> dict[str, Any]:
    try:
        info = deliveries.retry_delivery(store_id(), delivery_id)
    except deliveries.DeliveryNotFound:
        raise not_found("delivery", NOT_FOUND) from None
    commit()
    message = (
        "Delivery queued again."
        if info.discord_user_id
        else "Delivery queued again; it runs once the customer links Discord or runs /claim."
    )
    return {"message": message, "delivery": delivery_json(info)}


@tenant_api.post("/deliveries/retry")
@documented(
    summary="Retry every failed delivery matching a filter",
    description="Send no body to retry every failed delivery; `status: expired` retries expired ones "
    "instead. Deliveries of revoked orders are never retried.",
    tag=TAG,
    body=RETRY_FILTERS,
    body_required=False,
    responses={
        200: obj(
            {
                "message": MESSAGE,
                "retried": COUNT,
                "refused": {
                    "type": "object",
                    "description": "Matching deliveries the role gate refused, by reason code "
                    "(guild_unlinked: their server was unlinked since they were queued; mapping_removed: "
                    "their package is no longer mapped to the role). They keep their status.",
                    "additionalProperties": {"type": "integer", "minimum": 1},
                },
            }
        )
    },
)
def retry_deliveries() -> dict[str, Any]:
    body = json_body()
    unknown = sorted(set(body) - set(RETRY_FIELDS))
    if unknown:
        # A misspelt filter would otherwise widen the retry to every failure of the store.
        raise invalid({name: ["Not a filter of this operation."] for name in unknown})
    status = body.get("status")
    if status is None:
        status = Status.FAILED.value
    outcome = deliveries.retry_deliveries(
        store_id(),
        status=status if isinstance(status, str) else "",
        source=body.get("source"),
        customer_id=body.get("customer_id"),
        order_id=body.get("order_id"),
        discord_user_id=body.get("discord_user_id"),
        guild_id=body.get("guild_id"),
        reason_code=body.get("reason_code"),
    )
    commit()
    retried = outcome.retried
    if retried == 0 and not outcome.refused:
        message = f"No {status} deliveries matched; nothing was retried."
    else:
        message = f"{retried} {'delivery' if retried == 1 else 'deliveries'} queued again."
    if outcome.refused:
        refused = outcome.refused_total
        message += (
            f" {refused} {'was' if refused == 1 else 'were'} not: "
            + "; ".join(f"{count} {code}" for code, count in sorted(outcome.refused.items()))
            + " (see each delivery's reason)."
        )
    return {"message": message, "retried": retried, "refused": outcome.refused}
