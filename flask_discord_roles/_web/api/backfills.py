"""``/mappings/<id>/backfill`` and ``/backfills``: a mapping granted to those who hold its package."""

from __future__ import annotations

from typing import Any

from flask_discord_roles._core import backfills
from flask_discord_roles._core.mappings import MappingNotFound
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.context import commit, query_text, state, store_id
from flask_discord_roles._web.api.errors import ApiError, invalid, not_found
from flask_discord_roles._web.api.spec import (
    COUNT,
    DATETIME,
    HOST_ID,
    INTEGER,
    MESSAGE,
    SNOWFLAKE,
    array,
    documented,
    nullable,
    obj,
    query,
)
from flask_discord_roles.codes import BackfillStatus

BACKFILLS_TAG = "Backfills"

STATUSES = [str(status) for status in BackfillStatus]
BACKFILL = obj(
    {
        "id": INTEGER,
        "mapping_id": INTEGER,
        "package_id": HOST_ID,
        "guild_id": SNOWFLAKE,
        "role_id": SNOWFLAKE,
        "status": {"enum": STATUSES},
        "total": {**COUNT, "description": "Customers found so far (grows while the scan runs)."},
        "done": {**COUNT, "description": "Settled: completed, failed, expired or skipped."},
        "completed": COUNT,
        "failed": COUNT,
        "expired": {**COUNT, "description": "Cancelled with the backfill, revoked, or never claimed."},
        "skipped": {**COUNT, "description": "Already had the role's delivery from their own order."},
        "pending": COUNT,
        "waiting": {
            **COUNT,
            "description": "Pending ones waiting for their customer (to link Discord or run /claim) or "
            "for the store's bot; they do not hold the backfill up.",
        },
        "failures_by_reason": {
            "type": "object",
            "additionalProperties": COUNT,
            "description": "Failed deliveries by reason code (see the troubleshooting page for each fix).",
        },
        "created_at": DATETIME,
        "updated_at": DATETIME,
        "finished_at": nullable(DATETIME),
    }
)


def backfill_json(info: backfills.BackfillInfo) -> dict[str, Any]:
    """A backfill as the tenant API answers it."""
    data = info.to_dict()
    del data["store_id"]  # the caller's own store
    return data


def _backfill_not_found(backfill_id: int) -> ApiError:
    return not_found("backfill", f"This store has no backfill {backfill_id}.")


@tenant_api.post("/mappings/<int:mapping_id>/backfill")
@documented(
    summary="Backfill a role mapping",
    description="Grants the mapping's role to every customer who already holds its package (an active "
    "delivery of the package, or an active time-limited grant), a window of "
    "DISCORD_ROLES_BACKFILL_WINDOW deliveries at a time so new purchases are not held up. Customers who "
    "already have the role's delivery are skipped; starting again after it completed queues nothing twice. "
    "409 while the mapping has a running backfill. Needs a worker (or Celery's process_due) to progress.",
    tag=BACKFILLS_TAG,
    responses={202: obj({"message": MESSAGE, "backfill": BACKFILL})},
    errors=(404, 409),
)
def start_backfill(mapping_id: int) -> tuple[dict[str, Any], int]:
    try:
        job = backfills.start_backfill(state(), store_id(), mapping_id)
    except MappingNotFound:
        raise not_found("mapping", f"This store has no role mapping {mapping_id}.") from None
    except backfills.BackfillRunning as running:
        where = f" (backfill {running.running_id})" if running.running_id is not None else ""
        raise ApiError(
            409, f"This mapping already has a running backfill{where}: follow it, or cancel it first."
        ) from None
    info = backfills.info_of(state(), job)
    commit()
    return {
        "message": "Backfill started: the role goes to the package's existing customers a batch at a time.",
        "backfill": backfill_json(info),
    }, 202


@tenant_api.get("/backfills")
@documented(
    summary="List backfills",
    description=f"Newest first, at most {backfills.MAX_LISTED}, each with its progress.",
    tag=BACKFILLS_TAG,
    parameters=(query("status", {"enum": STATUSES}, "Only backfills in this status."),),
    responses={200: obj({"backfills": array(BACKFILL)})},
)
def list_backfills() -> dict[str, Any]:
    status = query_text("status", max_length=16)
    if status is not None and status not in STATUSES:
        raise invalid({"status": [f"Must be one of {', '.join(STATUSES)}."]})
    found = backfills.list_backfills(state(), store_id(), status=status)
    return {"backfills": [backfill_json(info) for info in found]}


@tenant_api.get("/backfills/<int:backfill_id>")
@documented(
    summary="Get a backfill",
    description="Its progress: `done` of `total`, and failures by reason code.",
    tag=BACKFILLS_TAG,
    responses={200: obj({"backfill": BACKFILL})},
    errors=(404,),
)
def get_backfill(backfill_id: int) -> dict[str, Any]:
    try:
        info = backfills.get_backfill(state(), store_id(), backfill_id)
    except backfills.BackfillNotFound:
        raise _backfill_not_found(backfill_id) from None
    return {"backfill": backfill_json(info)}


@tenant_api.post("/backfills/<int:backfill_id>/cancel")
@documented(
    summary="Cancel a backfill",
    description="Nothing more is queued; its deliveries not yet sent end `expired` (reason code "
    "`backfill_cancelled`). Roles already given stay. Cancelling a cancelled backfill changes nothing; "
    "a completed one is a 409.",
    tag=BACKFILLS_TAG,
    responses={200: obj({"message": MESSAGE, "backfill": BACKFILL})},
    errors=(404, 409),
)
def cancel_backfill(backfill_id: int) -> dict[str, Any]:
    try:
        info = backfills.cancel_backfill(state(), store_id(), backfill_id)
    except backfills.BackfillNotFound:
        raise _backfill_not_found(backfill_id) from None
    except backfills.BackfillFinished:
        raise ApiError(409, "This backfill has completed: there is nothing left to cancel.") from None
    commit()
    return {
        "message": "Backfill cancelled. Roles already given stay with their members.",
        "backfill": backfill_json(info),
    }
