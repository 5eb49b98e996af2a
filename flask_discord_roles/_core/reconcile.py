"""Reconciliation runs: one pass over one server's members, a page at a time, finding and repairing drift.

A run (:class:`~._runtime.models.ReconcileRun`) is a job row like a backfill's: started by the store
owner, the CLI or a schedule, then *stepped* by workers (:func:`step_runs`). A step leases the run,
reads the next page of List Guild Members from ``cursor`` with no transaction open (the Discord call may
wait on the rate limiter), then in one short transaction finds the page's drift (:mod:`.drift`), queues
the repairs (``repair`` mode) and moves the cursor, counts and lease on together. A worker killed
mid-step leaves the last committed cursor; the next step reads that page again, and the repairs it
queues carry idempotency keys made from the run, so nothing is done twice.

The mode is fixed when the run starts: the store's ``reconcile_mode``, or ``report`` for a run asked for
on demand while the setting is ``off`` (scheduled runs skip those stores).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.bots import token_of
from flask_discord_roles._core.delivery_rows import insert_new
from flask_discord_roles._core.drift import Drift, find_drift, page_of, repair_row
from flask_discord_roles._core.leasing import lease_running_jobs
from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.dialects import supported_insert
from flask_discord_roles._runtime.models import ReconcileRun, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles._runtime.timestamps import format_timestamp
from flask_discord_roles.codes import DriftKind, ReasonCode, ReconcileMode, ReconcileStatus
from flask_discord_roles.discord.errors import (
    DiscordError,
    Forbidden,
    PermanentDiscordError,
    TransientDiscordError,
    Unauthorized,
)
from flask_discord_roles.discord.errors import (
    NotFound as DiscordNotFound,
)
from flask_discord_roles.errors import NotFound

logger = logging.getLogger("flask_discord_roles.worker")

MEMBERS_PAGE = 1000
"""Members read per step: the most List Guild Members returns at once."""
EXAMPLES_PER_KIND = 5
"""Differences a run keeps as examples of each kind (the counts have them all)."""
MAX_LISTED = 100
RUNS_PER_PASS = 5
"""Running runs one worker leases and steps per pass."""
RUNNING_ONLY = sa.text(f"status = '{ReconcileStatus.RUNNING.value}'")
"""The condition of the unique index of running runs (one per store and server)."""
MISSING_ACCESS = 50001

_FAILURES = {
    ReasonCode.MEMBERS_INTENT_MISSING: "Discord refused to list the server's members: the bot does not have "
    "the Server Members Intent (GUILD_MEMBERS).",
    ReasonCode.BOT_NOT_IN_GUILD: "The bot is not in the server (it was removed, or the server deleted).",
    ReasonCode.TOKEN_REVOKED: "Discord refused the bot token.",
    ReasonCode.TOKEN_UNREADABLE: "The bot token cannot be decrypted with DISCORD_ROLES_ENCRYPTION_KEYS.",
    ReasonCode.NO_BOT: "The store has no Discord bot saved.",
    ReasonCode.BOT_DISABLED: "The store's bot is switched off.",
    ReasonCode.GUILD_UNLINKED: "The server was unlinked from the store during the run.",
}


class RunNotFound(NotFound):
    """No reconciliation run with that id in the store."""


class GuildNotLinked(NotFound):
    """The server asked for is not linked to the store."""


@dataclass(frozen=True)
class RunInfo:
    """One reconciliation run of one server: where it stands and what it found.

    ``drift`` counts differences by :class:`~flask_discord_roles.codes.DriftKind` (every kind present,
    zero if none); ``examples`` holds a few of each (``kind``, ``discord_user_id``, ``role_id``);
    ``repairs`` counts the deliveries queued to put them right (``repair`` mode only).
    """

    id: int
    store_id: str
    guild_id: str
    mode: str
    status: str
    members_seen: int
    drift: dict[str, int]
    examples: list[dict[str, str]]
    repairs: int
    reason_code: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ``2025-01-20T14:30:00Z``."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = format_timestamp(value)
        return data


def info_of(run: ReconcileRun | sa.Row[Any]) -> RunInfo:
    counts = {str(kind): int((run.drift or {}).get(kind, 0)) for kind in DriftKind}
    return RunInfo(
        id=run.id,
        store_id=run.store_id,
        guild_id=run.guild_id,
        mode=run.mode,
        status=run.status,
        members_seen=run.members_seen,
        drift=counts,
        examples=list(run.examples or []),
        repairs=run.repairs,
        reason_code=run.reason_code,
        reason=run.reason,
        created_at=run.created_at,
        updated_at=run.updated_at,
        finished_at=run.finished_at,
    )


# -- starting and reading runs ------------------------------------------------------------------------------


def start_runs(
    state: DiscordRolesState,
    store_id: str,
    guild_id: str | None = None,
    *,
    scheduled: bool = False,
    now: datetime | None = None,
) -> list[ReconcileRun]:
    """Start a run for each server linked to the store (or only ``guild_id``); the runs.

    A server with a run going already keeps it (returned as it is). ``scheduled``: a store whose
    ``reconcile_mode`` is ``off`` is skipped (nothing returned); on demand it is reported on. Raises
    :class:`GuildNotLinked` for a ``guild_id`` the store has not linked. In the host's session.
    """
    now = now or utcnow()
    session = state.db.session
    linked = state.models.LinkedGuild
    guild_ids = list(
        session.scalars(sa.select(linked.guild_id).where(linked.store_id == store_id).order_by(linked.id))
    )
    if guild_id is not None:
        if guild_id not in guild_ids:
            raise GuildNotLinked(f"server {guild_id} is not linked to this store")
        guild_ids = [guild_id]
    mode = _mode(state, store_id)
    if mode == ReconcileMode.OFF:
        if scheduled:
            return []
        mode = ReconcileMode.REPORT
    model = state.models.ReconcileRun
    table = model.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    runs = []
    for guild in guild_ids:
        # ON CONFLICT on the unique index of running runs: a concurrent start loses quietly.
        connection.execute(
            supported_insert(connection.dialect.name)(table)
            .values(
                store_id=store_id,
                guild_id=guild,
                mode=mode,
                status=ReconcileStatus.RUNNING,
                members_seen=0,
                drift={},
                examples=[],
                repairs=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["store_id", "guild_id"], index_where=RUNNING_ONLY)
        )
        run = session.scalar(
            sa.select(model).where(
                model.store_id == store_id, model.guild_id == guild, model.status == ReconcileStatus.RUNNING
            )
        )
        if run is not None:
            runs.append(run)
    return runs


def scheduled_store_ids(state: DiscordRolesState) -> list[str]:
    """Stores whose ``reconcile_mode`` is not ``off`` and that have a linked server: a schedule's work."""
    settings, linked = state.models.StoreSettings, state.models.LinkedGuild
    query = (
        sa.select(settings.store_id)
        .where(
            settings.reconcile_mode != ReconcileMode.OFF,
            sa.exists().where(linked.store_id == settings.store_id),
        )
        .order_by(settings.store_id)
    )
    return list(state.db.session.scalars(query))


def start_scheduled_runs(
    state: DiscordRolesState, store_id: str | None = None, guild_id: str | None = None
) -> list[ReconcileRun]:
    """What a schedule starts: a run per linked server of every store whose ``reconcile_mode`` is not
    ``off`` (or only ``store_id``, and only ``guild_id``). In the host's session: commit after."""
    store_ids = scheduled_store_ids(state) if store_id is None else [store_id]
    runs: list[ReconcileRun] = []
    for store in store_ids:
        runs += start_runs(state, store, guild_id, scheduled=True)
    return runs


def get_run(state: DiscordRolesState, store_id: str, run_id: int) -> RunInfo:
    """One of the store's runs; :class:`RunNotFound` otherwise."""
    model = state.models.ReconcileRun
    run = None
    if 0 < run_id < 2**63:
        run = state.db.session.scalar(sa.select(model).where(model.store_id == store_id, model.id == run_id))
    if run is None:
        raise RunNotFound(f"no reconciliation run {run_id}")
    return info_of(run)


def list_runs(
    state: DiscordRolesState, store_id: str, *, guild_id: str | None = None, limit: int = MAX_LISTED
) -> list[RunInfo]:
    """The store's runs, newest first (at most ``limit``), optionally of one server."""
    model = state.models.ReconcileRun
    query = sa.select(model).where(model.store_id == store_id)
    if guild_id is not None:
        query = query.where(model.guild_id == guild_id)
    return [info_of(run) for run in state.db.session.scalars(query.order_by(model.id.desc()).limit(limit))]


def _mode(state: DiscordRolesState, store_id: str) -> ReconcileMode:
    model = state.models.StoreSettings
    saved = state.db.session.scalar(sa.select(model.reconcile_mode).where(model.store_id == store_id))
    return ReconcileMode(saved or ReconcileMode.OFF)


# -- the worker's side -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """What one step did: ``members`` read; ``waiting`` seconds to wait before the next (rate limited)."""

    members: int = 0
    waiting: float | None = None


def step_runs(
    state: DiscordRolesState,
    engine: sa.Engine,
    runner_id: str,
    *,
    now: datetime | None = None,
    page_size: int = MEMBERS_PAGE,
    run_ids: list[int] | None = None,
) -> list[Step]:
    """Step the running runs no other worker is stepping (or only ``run_ids``): one page each."""
    now = now or utcnow()
    return [
        step_run(state, engine, runner_id, run_id, now=now, page_size=page_size)
        for run_id in _lease(state, engine, runner_id, now, run_ids)
    ]


def _lease(
    state: DiscordRolesState, engine: sa.Engine, runner_id: str, now: datetime, run_ids: list[int] | None
) -> list[int]:
    """Lease up to :data:`RUNS_PER_PASS` running runs that no live lease holds; their ids."""
    return lease_running_jobs(
        engine,
        state.models.ReconcileRun,
        ReconcileStatus.RUNNING,
        runner_id=runner_id,
        now=now,
        lease_seconds=state.settings.lease_seconds,
        limit=RUNS_PER_PASS,
        among=run_ids,
    )


def step_run(
    state: DiscordRolesState,
    engine: sa.Engine,
    runner_id: str,
    run_id: int,
    *,
    now: datetime,
    page_size: int = MEMBERS_PAGE,
) -> Step:
    """Read the next page of a run this runner has leased, record what it finds, give the lease back."""
    run, bot, linked = _load(state, engine, runner_id, run_id)
    if run is None:
        return Step()  # our lease ran out and another worker has it
    if not linked:
        return _fail(state, engine, runner_id, run_id, ReasonCode.GUILD_UNLINKED, now)
    if bot is None:
        return _fail(state, engine, runner_id, run_id, ReasonCode.NO_BOT, now)
    if not bot.is_enabled:
        return _fail(state, engine, runner_id, run_id, ReasonCode.BOT_DISABLED, now)
    try:
        client = state.clients.for_token(token_of(state, bot.token_ciphertext, bot.uses_platform_bot))
    except DecryptionError:
        return _fail(state, engine, runner_id, run_id, ReasonCode.TOKEN_UNREADABLE, now)
    # No transaction is open here: the call may wait on the rate limiter.
    try:
        members = client.list_members(
            run.guild_id, after=run.cursor, limit=page_size, max_wait=state.settings.rate_limit_wait
        )
    except TransientDiscordError as error:
        _release(state, engine, runner_id, run_id)
        return Step(waiting=float(getattr(error, "retry_after", 1.0) or 1.0))
    except PermanentDiscordError as error:
        code = _refusal(client, run.guild_id, error)
        detail = f"{_FAILURES.get(code, 'Discord refused')} ({error.message})"
        return _fail(state, engine, runner_id, run_id, code, now, detail)
    page = page_of(members, run.cursor, full=len(members) >= page_size)
    _record(state, engine, runner_id, run, page, members, now)
    return Step(members=len(members))


def _refusal(client: Any, guild_id: str, error: PermanentDiscordError) -> ReasonCode:
    """Why Discord refused the member list, as a reason code.

    Discord answers 403 50001 (Missing Access) both to a bot without the GUILD_MEMBERS intent and to a
    bot that is not in the server; reading the server itself tells the two apart.
    """
    if isinstance(error, Unauthorized):
        return ReasonCode.TOKEN_REVOKED
    if isinstance(error, DiscordNotFound):
        return ReasonCode.BOT_NOT_IN_GUILD
    if isinstance(error, Forbidden) and error.code == MISSING_ACCESS:
        try:
            client.get_guild(guild_id)
        except DiscordError:
            return ReasonCode.BOT_NOT_IN_GUILD
        return ReasonCode.MEMBERS_INTENT_MISSING
    return ReasonCode.DISCORD_REJECTED


@survives_transient_db_errors
def _load(state: DiscordRolesState, engine: sa.Engine, runner_id: str, run_id: int) -> tuple[Any, Any, bool]:
    """The leased run (None if the lease is not ours), the store's bot row, and whether the server is
    still linked."""
    models = state.models
    model, bot, linked = models.ReconcileRun, models.StoreBot, models.LinkedGuild
    with engine.connect() as connection:
        run = connection.execute(
            sa.select(model.__table__).where(  # type: ignore[attr-defined]
                model.id == run_id, model.leased_by == runner_id, model.status == ReconcileStatus.RUNNING
            )
        ).first()
        if run is None:
            return None, None, False
        bot_row = connection.execute(
            sa.select(bot.is_enabled, bot.token_ciphertext, bot.uses_platform_bot).where(
                bot.store_id == run.store_id
            )
        ).first()
        is_linked = connection.scalar(
            sa.select(sa.exists().where(linked.store_id == run.store_id, linked.guild_id == run.guild_id))
        )
        return run, bot_row, bool(is_linked)


@survives_transient_db_errors
def _record(
    state: DiscordRolesState,
    engine: sa.Engine,
    runner_id: str,
    run: sa.Row[Any],
    page: Any,
    members: list[dict[str, Any]],
    now: datetime,
) -> None:
    """The page's drift, repairs, counts and cursor, in one transaction that gives the lease back."""
    models = state.models
    model = models.ReconcileRun
    with engine.begin() as connection:
        # An UPDATE first: it takes the row's lock before anything is read, and proves the lease is ours.
        current = connection.execute(
            sa.update(model)
            .where(model.id == run.id, model.leased_by == runner_id, model.status == ReconcileStatus.RUNNING)
            .values(updated_at=now)
            .returning(model.drift, model.examples)
        ).first()
        if current is None:
            return
        found = find_drift(connection, models, run.store_id, run.guild_id, page)
        repairs = 0
        if run.mode == ReconcileMode.REPAIR:
            rows = [row for drift in found if (row := repair_row(drift, run.id, now)) is not None]
            repairs = len(insert_new(connection, models.Delivery, rows))
        drift, examples = _tally(dict(current.drift or {}), list(current.examples or []), found)
        values: dict[str, Any] = {
            "drift": drift,
            "examples": examples,
            "members_seen": model.members_seen + len(members),
            "repairs": model.repairs + repairs,
            "leased_by": None,
            "lease_expires_at": None,
        }
        if page.roles:
            values["cursor"] = max(page.roles, key=int)
        if page.last is None:
            values.update(status=ReconcileStatus.COMPLETED, finished_at=now)
            logger.info("reconciliation run %s of server %s completed: %s", run.id, run.guild_id, drift)
        connection.execute(sa.update(model).where(model.id == run.id).values(**values))


def _tally(
    drift: dict[str, int], examples: list[dict[str, str]], found: list[Drift]
) -> tuple[dict[str, int], list[dict[str, str]]]:
    for item in found:
        kind = str(item.kind)
        drift[kind] = drift.get(kind, 0) + 1
        if sum(1 for e in examples if e["kind"] == kind) < EXAMPLES_PER_KIND:
            examples.append({"kind": kind, "discord_user_id": item.discord_user_id, "role_id": item.role_id})
    return drift, examples


@survives_transient_db_errors
def _release(state: DiscordRolesState, engine: sa.Engine, runner_id: str, run_id: int) -> None:
    model = state.models.ReconcileRun
    with engine.begin() as connection:
        connection.execute(
            sa.update(model)
            .where(model.id == run_id, model.leased_by == runner_id)
            .values(leased_by=None, lease_expires_at=None)
        )


@survives_transient_db_errors
def _fail(
    state: DiscordRolesState,
    engine: sa.Engine,
    runner_id: str,
    run_id: int,
    code: ReasonCode,
    now: datetime,
    reason: str | None = None,
) -> Step:
    model = state.models.ReconcileRun
    with engine.begin() as connection:
        connection.execute(
            sa.update(model)
            .where(model.id == run_id, model.leased_by == runner_id, model.status == ReconcileStatus.RUNNING)
            .values(
                status=ReconcileStatus.FAILED,
                reason_code=code,
                reason=reason or _FAILURES.get(code, code.fix),
                finished_at=now,
                updated_at=now,
                leased_by=None,
                lease_expires_at=None,
            )
        )
    logger.warning("reconciliation run %s failed: %s", run_id, code)
    return Step()


def run_to_completion(
    state: DiscordRolesState,
    engine: sa.Engine,
    runner_id: str,
    run_ids: list[int],
    *,
    page_size: int = MEMBERS_PAGE,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Step ``run_ids`` until none of them is running (the CLI's way: no worker needed).

    Waits as long as a rate limit asks (``sleep``) between steps that found
    Discord busy; a run another process holds is waited for until its lease runs out.
    """
    model = state.models.ReconcileRun
    while True:
        steps = step_runs(state, engine, runner_id, now=clock(), page_size=page_size, run_ids=run_ids)
        if not steps:
            with engine.connect() as connection:
                running = connection.scalar(
                    sa.select(sa.func.count()).where(
                        model.id.in_(run_ids), model.status == ReconcileStatus.RUNNING
                    )
                )
            if not running:
                return
            sleep(1.0)  # leased by another worker: wait for it to finish or for its lease to run out
            continue
        waits = [step.waiting for step in steps if step.waiting is not None]
        if waits and not any(step.members for step in steps):
            sleep(min(waits))
