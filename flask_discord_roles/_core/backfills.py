"""Backfills: granting a new (or edited) mapping to every customer who already holds its package.

A backfill is a job row that queues ordinary ``add`` deliveries, each with the idempotency key the
customer's order would have given it (:func:`~._core.queue.order_delivery_key`): an order that already
has the delivery (it was re-sent, or bought after the mapping existed) is skipped, and running a
backfill again queues nothing twice. Who holds the package:

- every order with an active ``add`` delivery of the package (pending or completed, not revoked);
- every active time-limited grant (:class:`~._runtime.models.Grant`) of the package: its roles are its
  first order's deliveries, so it also finds orders made while the package had no mapping at all.

Orders of a package that never had a mapping and were not time-limited left no row behind: nothing
finds them.

Pacing: a worker pass *steps* each running backfill (:func:`step_backfills`). A step queues the next
holders, in ``order_id`` order from ``cursor``, only while fewer than ``DISCORD_ROLES_BACKFILL_WINDOW``
of its deliveries are scheduled for the runners, so a purchase made meanwhile never waits behind ten
thousand backfilled rows; the runners pace the Discord calls themselves. Rows waiting for their customer
(unknown Discord account, or a store that delivers on /claim) are not scheduled and take no room: they
go out like any order's, when the customer links or claims.

Crash safety: a step is one transaction (deliveries, items, cursor, counts), run under a lease on the
job so two workers never step it at once; a killed worker's step rolls back whole and its lease runs
out, and the next worker carries on from the committed cursor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.delivery_rows import insert_new
from flask_discord_roles._core.leasing import lease_running_jobs
from flask_discord_roles._core.mappings import LARGEST_ID, MappingNotFound
from flask_discord_roles._core.queue import order_grant_row, unleased
from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._core.settings import queue_settings_on
from flask_discord_roles._runtime.dialects import supported_insert
from flask_discord_roles._runtime.models import PENDING, Backfill, Models, RoleMapping, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles._runtime.timestamps import json_ready
from flask_discord_roles.codes import Action, BackfillStatus, GrantStatus, ReasonCode, Status
from flask_discord_roles.errors import Conflict, NotFound

logger = logging.getLogger("flask_discord_roles.worker")

CANCELLED_REASON = "The backfill that queued this delivery was cancelled before it ran."
MAX_LISTED = 100
"""The most backfills one listing returns (newest first)."""
RUNNING_ONLY = sa.text(f"status = '{BackfillStatus.RUNNING.value}'")
"""The condition of the unique index of running jobs (one per mapping)."""
JOBS_PER_PASS = 10
"""Running backfills one worker leases and steps per pass."""


class BackfillNotFound(NotFound):
    """No backfill with that id in the store."""


class BackfillRunning(Conflict):
    """The mapping already has a running backfill; ``running_id`` is its id (None if not known)."""

    def __init__(self, running_id: int | None) -> None:
        where = f" (backfill {running_id})" if running_id is not None else ""
        super().__init__(f"this mapping already has a running backfill{where}")
        self.running_id = running_id


class BackfillFinished(Conflict):
    """The backfill completed: there is nothing left to cancel."""


@dataclass(frozen=True)
class BackfillInfo:
    """A backfill and its progress. ``done`` of ``total`` customers are settled.

    ``total`` counts every customer found so far (it grows while the scan runs); ``skipped`` of them
    already had the delivery (their order queued it), and count as done. The rest each have a delivery
    this backfill queued: ``completed``, ``failed`` (``failures_by_reason`` says why, by reason code),
    ``expired`` (cancelled, revoked, or never claimed) or still ``pending``; ``waiting`` of the pending
    ones wait for their customer (to link Discord or run /claim) or for the store (a bot to save or
    enable), like any order's, and do not hold the backfill up.
    """

    id: int
    store_id: str
    mapping_id: int
    package_id: str
    guild_id: str
    role_id: str
    status: str
    total: int
    done: int
    completed: int
    failed: int
    expired: int
    skipped: int
    pending: int
    waiting: int
    failures_by_reason: dict[str, int]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ``2025-01-20T14:30:00Z`` (:mod:`flask_discord_roles._runtime.timestamps`)."""
        return json_ready(self)


@dataclass
class _Counts:
    """How a backfill's items stand, from their deliveries."""

    by_status: dict[str, int] = field(default_factory=dict)
    waiting: int = 0
    failures: dict[str, int] = field(default_factory=dict)


# -- the store owner's side ------------------------------------------------------------------------------


def start_backfill(
    state: DiscordRolesState, store_id: str, mapping_id: int, *, now: datetime | None = None
) -> Backfill:
    """Start granting the mapping to every customer who holds its package; the job row (``running``).

    In the host's session; a worker steps it once the caller commits. Raises
    :class:`~._core.mappings.MappingNotFound` for a mapping the store does not have, and
    :class:`BackfillRunning` when the mapping has a running backfill already.
    """
    now = now or utcnow()
    mapping = _mapping(state, store_id, mapping_id)
    running = _running_for(state, mapping.id)
    if running is not None:
        raise BackfillRunning(running.id)
    model = state.models.Backfill
    table = model.__table__  # type: ignore[attr-defined]
    connection = state.db.session.connection()
    # ON CONFLICT on the unique index of running jobs: a concurrent start loses quietly, not with an
    # error that would abort the host's transaction on PostgreSQL.
    statement = (
        supported_insert(connection.dialect.name)(table)
        .values(
            store_id=store_id,
            mapping_id=mapping.id,
            package_id=mapping.package_id,
            guild_id=mapping.guild_id,
            role_id=mapping.role_id,
            status=BackfillStatus.RUNNING,
            total=0,
            skipped=0,
            scan_done=False,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["mapping_id"], index_where=RUNNING_ONLY)
        .returning(table.c.id)
    )
    backfill_id = connection.scalar(statement)
    if backfill_id is None:
        raise BackfillRunning(None)
    job = state.db.session.get(model, backfill_id)
    assert job is not None
    return job


def backfill_mapping(
    state: DiscordRolesState, store_id: str, mapping_id: int, *, now: datetime | None = None
) -> Backfill:
    """What a mapping's create or edit view calls when asked to backfill: start one, or keep the running one.

    A running backfill of the mapping as it is now is returned as it is; one started before the mapping
    changed role (an edit) is cancelled and a new one started. In the host's session.
    """
    now = now or utcnow()
    mapping = _mapping(state, store_id, mapping_id)
    running = _running_for(state, mapping.id)
    if running is not None:
        if _same_role(running, mapping):
            return running
        _cancel(state, running, now)
        state.db.session.flush()
    return start_backfill(state, store_id, mapping_id, now=now)


def get_backfill(state: DiscordRolesState, store_id: str, backfill_id: int) -> BackfillInfo:
    """One of the store's backfills with its progress; :class:`BackfillNotFound` otherwise."""
    return info_of(state, _own(state, store_id, backfill_id))


def list_backfills(
    state: DiscordRolesState, store_id: str, *, status: str | None = None, limit: int = MAX_LISTED
) -> list[BackfillInfo]:
    """The store's backfills, newest first (at most ``limit``), optionally only those of ``status``."""
    model = state.models.Backfill
    query = sa.select(model).where(model.store_id == store_id)
    if status is not None:
        query = query.where(model.status == BackfillStatus(status))
    jobs = list(state.db.session.scalars(query.order_by(model.id.desc()).limit(limit)))
    counts = _counts(state.db.session.connection(), state.models, [job.id for job in jobs])
    return [_info(job, counts.get(job.id, _Counts())) for job in jobs]


def cancel_backfill(
    state: DiscordRolesState, store_id: str, backfill_id: int, *, now: datetime | None = None
) -> BackfillInfo:
    """Stop a backfill: nothing more is queued, and its deliveries not yet run end ``expired``
    (reason code ``backfill_cancelled``); one a runner is sending right now still goes out.

    Cancelling a cancelled backfill changes nothing; a completed one raises :class:`BackfillFinished`
    (its roles are given: take one back by hand, or revoke the order). In the host's session.
    """
    job = _own(state, store_id, backfill_id, lock=True)
    if job.status == BackfillStatus.COMPLETED:
        raise BackfillFinished(f"backfill {job.id} has completed; there is nothing left to cancel")
    if job.status == BackfillStatus.RUNNING:
        _cancel(state, job, now or utcnow())
        state.db.session.flush()
    return info_of(state, job)


def info_of(state: DiscordRolesState, job: Backfill) -> BackfillInfo:
    """The job's progress, counted from its deliveries."""
    counts = _counts(state.db.session.connection(), state.models, [job.id])
    return _info(job, counts.get(job.id, _Counts()))


def _mapping(state: DiscordRolesState, store_id: str, mapping_id: int) -> RoleMapping:
    model = state.models.RoleMapping
    mapping = None
    if 0 < mapping_id <= LARGEST_ID:
        mapping = state.db.session.scalar(
            sa.select(model).where(model.store_id == store_id, model.id == mapping_id)
        )
    if mapping is None:
        raise MappingNotFound(mapping_id)
    return mapping


def _running_for(state: DiscordRolesState, mapping_id: int) -> Backfill | None:
    model = state.models.Backfill
    return state.db.session.scalar(
        sa.select(model).where(model.mapping_id == mapping_id, model.status == BackfillStatus.RUNNING)
    )


def _same_role(job: Backfill | sa.Row[Any], mapping: RoleMapping | sa.Row[Any]) -> bool:
    return (job.package_id, job.guild_id, job.role_id) == (
        mapping.package_id,
        mapping.guild_id,
        mapping.role_id,
    )


def _own(state: DiscordRolesState, store_id: str, backfill_id: int, *, lock: bool = False) -> Backfill:
    model = state.models.Backfill
    job = None
    if 0 < backfill_id < 2**63:
        query = sa.select(model).where(model.store_id == store_id, model.id == backfill_id)
        job = state.db.session.scalar(query.with_for_update() if lock else query)
    if job is None:
        raise BackfillNotFound(backfill_id)
    return job


def _cancel(state: DiscordRolesState, job: Backfill, now: datetime) -> None:
    job.status = BackfillStatus.CANCELLED
    job.finished_at = job.updated_at = now
    job.leased_by = job.lease_expires_at = None
    state.db.session.flush()
    _expire_unsent(state.db.session.connection(), state.models, job.id, now)


def _expire_unsent(connection: sa.Connection, models: Models, backfill_id: int, now: datetime) -> int:
    """The job's deliveries still pending and not being sent end ``expired`` (``backfill_cancelled``)."""
    delivery, item = models.Delivery, models.BackfillItem
    result = connection.execute(
        sa.update(delivery)
        .where(
            delivery.id.in_(sa.select(item.delivery_id).where(item.backfill_id == backfill_id)),
            delivery.status == PENDING,
            unleased(delivery, now),
        )
        .values(
            status=Status.EXPIRED,
            next_attempt_at=None,
            reason_code=ReasonCode.BACKFILL_CANCELLED,
            reason=CANCELLED_REASON,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


def _counts(connection: sa.Connection, models: Models, backfill_ids: list[int]) -> dict[int, _Counts]:
    """Each job's items by their delivery's status (and reason, for failures), in one query."""
    if not backfill_ids:
        return {}
    delivery, item = models.Delivery, models.BackfillItem
    # Constants written into the SQL, not bound: PostgreSQL matches a GROUP BY expression to the
    # selected one only when both are the same text, bound parameters included.
    waiting = sa.case((delivery.next_attempt_at.is_(None), sa.true()), else_=sa.false())
    failed = sa.literal_column(f"'{Status.FAILED.value}'", sa.String)
    failure = sa.case((delivery.status == failed, delivery.reason_code), else_=sa.null())
    rows = connection.execute(
        sa.select(item.backfill_id, delivery.status, waiting, failure, sa.func.count())
        .select_from(item)
        .join(delivery, delivery.id == item.delivery_id)
        .where(item.backfill_id.in_(backfill_ids))
        .group_by(item.backfill_id, delivery.status, waiting, failure)
    )
    counts: dict[int, _Counts] = {}
    for backfill_id, status, is_waiting, reason_code, number in rows:
        entry = counts.setdefault(backfill_id, _Counts())
        entry.by_status[status] = entry.by_status.get(status, 0) + number
        if status == Status.PENDING and is_waiting:
            entry.waiting += number
        if status == Status.FAILED:
            code = reason_code or "unknown"
            entry.failures[code] = entry.failures.get(code, 0) + number
    return counts


def _info(job: Backfill, counts: _Counts) -> BackfillInfo:
    by_status = counts.by_status
    completed, failed, expired = (
        by_status.get(s, 0) for s in (Status.COMPLETED, Status.FAILED, Status.EXPIRED)
    )
    return BackfillInfo(
        id=job.id,
        store_id=job.store_id,
        mapping_id=job.mapping_id,
        package_id=job.package_id,
        guild_id=job.guild_id,
        role_id=job.role_id,
        status=job.status,
        total=job.total,
        done=completed + failed + expired + job.skipped,
        completed=completed,
        failed=failed,
        expired=expired,
        skipped=job.skipped,
        pending=by_status.get(Status.PENDING, 0),
        waiting=counts.waiting,
        failures_by_reason=dict(sorted(counts.failures.items())),
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


# -- the worker's side -------------------------------------------------------------------------------------


def step_backfills(
    state: DiscordRolesState, engine: sa.Engine, runner_id: str, *, now: datetime | None = None
) -> int:
    """Step the running backfills no other worker is stepping; how many customers the steps found.

    Called from every worker pass (and so every Celery ``process_due``), before the pass drains the
    queue: what a step queues is run by the same pass. Found customers mean the scan goes on: the
    worker then passes again without sleeping.
    """
    now = now or utcnow()
    found = 0
    for backfill_id in _lease(state, engine, runner_id, now):
        found += _step(state, engine, runner_id, backfill_id, now)
    return found


def _lease(state: DiscordRolesState, engine: sa.Engine, runner_id: str, now: datetime) -> list[int]:
    """Lease up to :data:`JOBS_PER_PASS` running backfills that no live lease holds; their ids."""
    return lease_running_jobs(
        engine,
        state.models.Backfill,
        BackfillStatus.RUNNING,
        runner_id=runner_id,
        now=now,
        lease_seconds=state.settings.lease_seconds,
        limit=JOBS_PER_PASS,
    )


@survives_transient_db_errors
def _step(
    state: DiscordRolesState, engine: sa.Engine, runner_id: str, backfill_id: int, now: datetime
) -> int:
    """One step of one leased job, in one transaction that also gives the lease back; customers found."""
    models = state.models
    model = models.Backfill
    with engine.begin() as connection:
        # An UPDATE first: it takes the row's lock (PostgreSQL) or the write lock (SQLite) before anything
        # is read, so a cancel committed meanwhile is seen, and one that comes later waits for this step.
        job = connection.execute(
            sa.update(model)
            .where(
                model.id == backfill_id, model.leased_by == runner_id, model.status == BackfillStatus.RUNNING
            )
            .values(updated_at=now)
            .returning(*model.__table__.c)  # type: ignore[attr-defined]
        ).first()
        if job is None:
            return 0  # cancelled meanwhile, or our lease ran out and another worker has it
        mapping = _current_mapping(connection, models, job)
        if mapping is None:
            # Deleted (or its server unlinked) since: what it would have granted is no longer sold.
            _expire_unsent(connection, models, job.id, now)
            _update(connection, model, job.id, status=BackfillStatus.CANCELLED, finished_at=now)
            logger.info("backfill %s cancelled: its mapping %s is gone", job.id, job.mapping_id)
            return 0
        values: dict[str, Any] = {}
        found = 0
        scheduled = _scheduled_items(connection, models, job.id)
        room = state.settings.backfill_window - scheduled
        if not job.scan_done and room > 0:
            holders = _holders(connection, models, job, room)
            if holders:
                settings = queue_settings_on(connection, models.StoreSettings, job.store_id)
                rows = [
                    order_grant_row(
                        mapping,
                        order_id=holder.order_id,
                        customer_id=holder.customer_id,
                        discord_user_id=holder.discord_user_id,
                        settings=settings,
                        now=now,
                    )
                    for holder in holders
                ]
                created = insert_new(connection, models.Delivery, rows)
                if created:
                    item_table = models.BackfillItem.__table__  # type: ignore[attr-defined]
                    connection.execute(
                        sa.insert(item_table), [{"backfill_id": job.id, "delivery_id": i} for i in created]
                    )
                found = len(holders)
                values.update(
                    total=model.total + len(holders),
                    skipped=model.skipped + len(holders) - len(created),
                    cursor=holders[-1].order_id,
                )
            if len(holders) < room:
                values["scan_done"] = True
        if (job.scan_done or values.get("scan_done")) and _scheduled_items(connection, models, job.id) == 0:
            values.update(status=BackfillStatus.COMPLETED, finished_at=now)
        _update(connection, model, job.id, **values)
        return found


def _update(connection: sa.Connection, model: type[Backfill], backfill_id: int, **values: Any) -> None:
    """Save the step's changes and give the lease back (the next pass leases it again)."""
    connection.execute(
        sa.update(model)
        .where(model.id == backfill_id)
        .values(**values, leased_by=None, lease_expires_at=None)
    )


def _current_mapping(connection: sa.Connection, models: Models, job: Any) -> sa.Row[Any] | None:
    """The job's mapping, if it still maps the same package to the same role."""
    mapping = models.RoleMapping
    row = connection.execute(
        sa.select(mapping.__table__).where(  # type: ignore[attr-defined]
            mapping.id == job.mapping_id, mapping.store_id == job.store_id
        )
    ).first()
    return row if row is not None and _same_role(job, row) else None


def _scheduled_items(connection: sa.Connection, models: Models, backfill_id: int) -> int:
    """The job's deliveries the runners still have to run: pending with a time set (due or retrying)."""
    delivery, item = models.Delivery, models.BackfillItem
    return int(
        connection.scalar(
            sa.select(sa.func.count())
            .select_from(item)
            .join(delivery, delivery.id == item.delivery_id)
            .where(
                item.backfill_id == backfill_id,
                delivery.status == PENDING,
                delivery.next_attempt_at.is_not(None),
            )
        )
        or 0
    )


def _holders(connection: sa.Connection, models: Models, job: Any, limit: int) -> list[sa.Row[Any]]:
    """The next ``limit`` orders after the cursor that hold the job's package, one row per order:
    ``order_id``, ``customer_id`` and ``discord_user_id`` (the one the order's rows know, else the
    customer's linked account, as checkout picks it)."""
    delivery, grant, account = models.Delivery, models.Grant, models.DiscordAccount
    delivered = sa.select(
        delivery.order_id.label("order_id"),
        delivery.customer_id.label("customer_id"),
        delivery.discord_user_id.label("discord_user_id"),
    ).where(
        delivery.store_id == job.store_id,
        delivery.package_id == job.package_id,
        delivery.action == Action.ADD,
        delivery.status.in_((Status.PENDING, Status.COMPLETED)),
        delivery.revoked_at.is_(None),
        delivery.order_id.is_not(None),
    )
    granted = sa.select(grant.order_id, grant.customer_id, grant.discord_user_id).where(
        grant.store_id == job.store_id,
        grant.package_id == job.package_id,
        grant.status == GrantStatus.ACTIVE,
    )
    if job.cursor is not None:
        delivered = delivered.where(delivery.order_id > job.cursor)
        granted = granted.where(grant.order_id > job.cursor)
    found = sa.union_all(delivered, granted).subquery()
    orders = (
        sa.select(
            found.c.order_id,
            sa.func.max(found.c.customer_id).label("customer_id"),
            sa.func.max(found.c.discord_user_id).label("discord_user_id"),
        )
        .group_by(found.c.order_id)
        .order_by(found.c.order_id)
        .limit(limit)
        .subquery()
    )
    linked = sa.and_(account.store_id == job.store_id, account.customer_id == orders.c.customer_id)
    return list(
        connection.execute(
            sa.select(
                orders.c.order_id,
                orders.c.customer_id,
                sa.func.coalesce(orders.c.discord_user_id, account.discord_user_id).label("discord_user_id"),
            )
            .select_from(orders.outerjoin(account, linked))
            .order_by(orders.c.order_id)
        )
    )
