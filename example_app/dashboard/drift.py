"""``/dashboard/drift``: whether members hold what they bought, server by server (drift repair).

The page shows the store's ``reconcile_mode`` (with a form to change it), a button that starts a run in
every linked server, and each server's latest run: its counts by kind and a few examples. The worker
(here, the thread executor's) steps a run a page of members at a time.
"""

from __future__ import annotations

from flask import render_template, request
from werkzeug.wrappers import Response

from flask_discord_roles import reconcile, store_settings
from flask_discord_roles.store_settings import ValidationError

from . import dashboard
from .common import refused, saved, store_id
from .servers import linked_guilds

KIND_TITLES = {
    "role_missing": "Role missing: a paying member lost a role we gave",
    "role_not_ended": "Role not ended: a role we gave outlived its purchase",
    "member_absent": "Member absent: a paying member is not in the server",
}
MODES = {
    "off": "Off: no scheduled runs (a run started here only reports)",
    "report": "Report: record drift, change nothing",
    "repair": "Repair: give back lost roles, take back ended ones we gave",
}


@dashboard.get("/drift", endpoint="drift")
def drift_page() -> str:
    store = store_id()
    latest: dict[str, reconcile.RunInfo] = {}
    for run in reconcile.list_runs(store):  # newest first: the first seen is the latest
        latest.setdefault(run.guild_id, run)
    return render_template(
        "dashboard/drift.html",
        servers=linked_guilds(store),
        latest=latest,
        mode=store_settings.get_settings(store)["reconcile_mode"],
        modes=MODES,
        kinds=KIND_TITLES,
    )


@dashboard.post("/drift/start")
def start_drift_run() -> Response:
    runs = reconcile.start_reconcile(store_id())
    if not runs:
        return refused("Link a server first: drift is checked in linked servers.", "dashboard.drift")
    return saved(
        f"Checking {len(runs)} server(s): the results show below as the members are read.", "dashboard.drift"
    )


@dashboard.post("/drift/mode")
def set_drift_mode() -> Response:
    try:
        store_settings.update_settings(store_id(), reconcile_mode=request.form.get("reconcile_mode", ""))
    except ValidationError as error:
        return refused(error, "dashboard.drift")
    return saved("Drift mode saved.", "dashboard.drift")
