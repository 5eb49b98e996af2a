"""``/reconcile``: checking that members hold what they bought (drift), and putting it right."""

from __future__ import annotations

from typing import Any

from flask_discord_roles._core import reconcile
from flask_discord_roles._web.api.blueprint import tenant_api
from flask_discord_roles._web.api.context import commit, json_body, query_text, state, store_id
from flask_discord_roles._web.api.errors import invalid, not_found
from flask_discord_roles._web.api.spec import (
    COUNT,
    DATETIME,
    INTEGER,
    MESSAGE,
    SNOWFLAKE,
    array,
    documented,
    nullable,
    obj,
    query,
)
from flask_discord_roles.codes import (
    RECONCILE_CODES,
    DriftKind,
    ReconcileMode,
    ReconcileStatus,
    enum_values,
    schema_enum,
)
from flask_discord_roles.discord.snowflake import is_snowflake

TAG = "Reconciliation"

KINDS = [str(kind) for kind in DriftKind]
RUN = obj(
    {
        "id": INTEGER,
        "guild_id": SNOWFLAKE,
        "mode": {
            "enum": enum_values(ReconcileMode, leaving_out={ReconcileMode.OFF}),
            "description": "report: drift recorded only; repair: deliveries queued to put it right.",
        },
        "status": {"enum": enum_values(ReconcileStatus)},
        "members_seen": COUNT,
        "drift": obj(
            dict.fromkeys(KINDS, COUNT),
            description="Differences found so far, by kind: role_missing (a role we gave to a paying "
            "member is gone), role_not_ended (a role we gave is still there though nothing grants it), "
            "member_absent (a paying member is not in the server).",
        ),
        "examples": {
            **array(obj({"kind": {"enum": KINDS}, "discord_user_id": SNOWFLAKE, "role_id": SNOWFLAKE})),
            "description": "A few differences of each kind.",
        },
        "repairs": {**COUNT, "description": "Deliveries queued to put drift right (repair mode)."},
        "reason_code": nullable({"enum": schema_enum(RECONCILE_CODES)}),
        "reason": nullable({"type": "string"}),
        "created_at": DATETIME,
        "updated_at": DATETIME,
        "finished_at": nullable(DATETIME),
    }
)
START = {
    "type": "object",
    "properties": {"guild_id": {**SNOWFLAKE, "description": "Only this linked server (default: all)."}},
    "additionalProperties": False,
}


def run_json(info: reconcile.RunInfo) -> dict[str, Any]:
    """A run as the tenant API answers it."""
    data = info.to_dict()
    del data["store_id"]  # the caller's own store
    return data


@tenant_api.post("/reconcile")
@documented(
    summary="Start reconciling",
    description="Starts a run for each linked server (or `guild_id`): the server's members are read a page "
    "at a time and their roles compared with their active purchases. With `reconcile_mode` `repair`, "
    "deliveries are queued to give back lost roles and take back ended ones we granted (never a role we "
    "did not grant); otherwise drift is only recorded. A server with a run going keeps it. Needs the "
    "bot's Server Members Intent, and a worker (or Celery's process_due) to progress.",
    tag=TAG,
    body=START,
    body_required=False,
    responses={202: obj({"message": MESSAGE, "runs": array(RUN)})},
    errors=(404, 422),
)
def start_reconcile() -> tuple[dict[str, Any], int]:
    body = json_body()
    unknown = sorted(set(body) - {"guild_id"})
    if unknown:
        raise invalid({name: ["Unknown field. The only field is guild_id."] for name in unknown})
    guild_id = body.get("guild_id")
    if guild_id is not None and not (isinstance(guild_id, str) and is_snowflake(guild_id)):
        raise invalid({"guild_id": ['Must be a server id as text, e.g. "1234567890123456789".']})
    try:
        runs = reconcile.start_runs(state(), store_id(), guild_id)
    except reconcile.GuildNotLinked:
        raise not_found("guild", f"Server {guild_id} is not linked to this store.") from None
    infos = [reconcile.info_of(run) for run in runs]
    commit()
    return {
        "message": f"Reconciliation started for {len(infos)} server(s).",
        "runs": [run_json(info) for info in infos],
    }, 202


@tenant_api.get("/reconcile/runs")
@documented(
    summary="List reconciliation runs",
    description=f"Newest first, at most {reconcile.MAX_LISTED}, each with its drift counts and examples.",
    tag=TAG,
    parameters=(query("guild_id", SNOWFLAKE, "Only runs of this server."),),
    responses={200: obj({"runs": array(RUN)})},
)
def list_runs() -> dict[str, Any]:
    guild_id = query_text("guild_id", max_length=20)
    if guild_id is not None and not is_snowflake(guild_id):
        raise invalid({"guild_id": ["Must be a server id."]})
    return {"runs": [run_json(info) for info in reconcile.list_runs(state(), store_id(), guild_id=guild_id)]}


@tenant_api.get("/reconcile/runs/<int:run_id>")
@documented(
    summary="Get a reconciliation run",
    description="Where it stands, the drift it found by kind, examples, and the repairs it queued.",
    tag=TAG,
    responses={200: obj({"run": RUN})},
    errors=(404,),
)
def get_run(run_id: int) -> dict[str, Any]:
    try:
        info = reconcile.get_run(state(), store_id(), run_id)
    except reconcile.RunNotFound:
        raise not_found("reconcile_run", f"This store has no reconciliation run {run_id}.") from None
    return {"run": run_json(info)}
