"""Drift repair: checking that what members hold in each server matches what they bought.

A *run* reads a linked server's member list a page at a time (Discord's List Guild Members, which needs
the bot's **Server Members Intent**), compares each member's roles with the roles their active
purchases give, and records the differences by kind (:class:`~flask_discord_roles.codes.DriftKind`).
With the store's ``reconcile_mode`` set to ``repair`` it also queues the deliveries that put them right;
it never takes away a role we did not grant. For the host's dashboard, inside an app context::

    from flask_discord_roles import reconcile

    runs = reconcile.start_reconcile("store-1")   # one run per linked server
    db.session.commit()
    ...
    run = reconcile.get_run("store-1", runs[0].id)
    print(run.status, run.drift, run.examples)

Workers (``flask discord-roles worker``, the thread executor, Celery's ``process_due``) step running
runs; ``flask discord-roles reconcile`` starts and finishes them itself. See the "Drift repair" page.
"""

from __future__ import annotations

from flask_discord_roles._core import reconcile as _service
from flask_discord_roles._core.reconcile import MAX_LISTED, GuildNotLinked, RunInfo, RunNotFound
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.codes import DriftKind, ReconcileMode, ReconcileStatus

__all__ = [
    "MAX_LISTED",
    "DriftKind",
    "GuildNotLinked",
    "ReconcileMode",
    "ReconcileStatus",
    "RunInfo",
    "RunNotFound",
    "get_run",
    "list_runs",
    "start_reconcile",
]


def start_reconcile(store_id: object, guild_id: str | None = None) -> list[RunInfo]:
    """Start a run for each server linked to the store (or only ``guild_id``); workers step them once
    you commit. A server with a run going keeps it (it is returned). A store whose ``reconcile_mode``
    is ``off`` is reported on (``report``), never repaired. Raises :class:`GuildNotLinked`."""
    state = get_state()
    return [_service.info_of(run) for run in _service.start_runs(state, str(store_id), guild_id)]


def get_run(store_id: object, run_id: int) -> RunInfo:
    """One run and what it found; :class:`RunNotFound` for an unknown id or another store's."""
    return _service.get_run(get_state(), str(store_id), run_id)


def list_runs(store_id: object, *, guild_id: str | None = None) -> list[RunInfo]:
    """The store's runs, newest first (at most :data:`MAX_LISTED`), optionally of one server."""
    return _service.list_runs(get_state(), str(store_id), guild_id=guild_id)
