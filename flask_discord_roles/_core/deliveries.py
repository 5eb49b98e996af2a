"""Listing and retrying deliveries for one store: the engine behind :mod:`flask_discord_roles.deliveries`
and the tenant API's delivery operations (roles given or taken by hand are :mod:`.manual_changes`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from flask_discord_roles._core.order_rows import of_order
from flask_discord_roles._core.queue import claim_owed
from flask_discord_roles._core.records import DeliveryInfo
from flask_discord_roles._core.role_gate import REFUSALS, refusal
from flask_discord_roles._core.settings import claim_window_end, store_settings
from flask_discord_roles._runtime.dispatch import dispatch_after_commit
from flask_discord_roles._runtime.models import PENDING, Delivery, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState, get_state
from flask_discord_roles._runtime.timestamps import format_timestamp
from flask_discord_roles.codes import Action, Source, Status
from flask_discord_roles.discord.snowflake import is_snowflake
from flask_discord_roles.errors import NotFound, ValidationError

STATUSES: tuple[str, ...] = tuple(status.value for status in Status)
"""Every delivery status, as stored and as the tenant API writes it (:class:`.codes.Status`)."""
SOURCES: tuple[str, ...] = tuple(source.value for source in Source)
"""Every delivery source (:class:`.codes.Source`)."""
RETRYABLE: tuple[str, ...] = (Status.FAILED.value, Status.EXPIRED.value)
"""The statuses a retry starts from."""
MAX_PAGE_SIZE = 100
MAX_DAYS = 366
"""The longest history :func:`deliveries_per_day` reports: a year, leap day included."""
MAX_ID = 2**63 - 1
"""The largest delivery id a BIGINT holds: anything larger cannot exist, and must not reach the driver."""


class DeliveryNotFound(NotFound):
    """No delivery with that id in that store."""


@dataclass(frozen=True)
class DeliveryPage:
    """One page of deliveries, newest first. Pass ``next_before_id`` as ``before_id`` for the next page."""

    items: list[DeliveryInfo]
    next_before_id: int | None


@dataclass(frozen=True)
class StoreStats:
    """A store's counters, read from one row (never by scanning the queue).

    ``total_roles_assigned`` counts roles we actually gave: a delivery that found the member already
    holding the role completes without adding to it.
    """

    total_interactions: int
    total_roles_assigned: int
    total_roles_removed: int
    total_errors: int
    success_rate: float
    last_interaction_at: datetime | None
    is_active: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the time as ``2025-01-20T14:30:00Z``."""
        data = dict(self.__dict__)
        if self.last_interaction_at is not None:
            data["last_interaction_at"] = format_timestamp(self.last_interaction_at)
        return data


def _filters(
    state: DiscordRolesState,
    store_id: str,
    *,
    status: str | None,
    source: str | None,
    customer_id: str | None,
    order_id: str | None,
    discord_user_id: str | None,
    guild_id: str | None = None,
    reason_code: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> list[Any]:
    errors: dict[str, list[str]] = {}
    if status is not None and status not in STATUSES:
        errors["status"] = [f"Status must be one of {', '.join(STATUSES)}."]
    if source is not None and source not in SOURCES:
        errors["source"] = [f"Source must be one of {', '.join(SOURCES)}."]
    for name, value in (("customer_id", customer_id), ("order_id", order_id), ("reason_code", reason_code)):
        if value is not None and not _is_text(value):
            errors[name] = [f"{name} must be text of 1 to 64 characters."]
    for name, value in (("discord_user_id", discord_user_id), ("guild_id", guild_id)):
        if value is not None and not (isinstance(value, str) and is_snowflake(value)):
            errors[name] = [f"{name} must be a Discord id (a snowflake)."]
    after = _utc(created_after, "created_after", errors)
    before = _utc(created_before, "created_before", errors)
    if after is not None and before is not None and after > before:
        errors["created_after"] = ["created_after must not be later than created_before."]
    if errors:
        raise ValidationError(errors)
    model = state.models.Delivery
    conditions: list[Any] = (
        [model.store_id == store_id]
        if order_id is None
        else of_order(model, store_id, order_id, state.db.session.get_bind().dialect)
    )
    for column, value in (
        (model.status, status),
        (model.source, source),
        (model.customer_id, customer_id),
        (model.discord_user_id, discord_user_id),
        (model.guild_id, guild_id),
        (model.reason_code, reason_code),
    ):
        if value is not None:
            conditions.append(column == value)
    if status is not None and status != Status.PENDING:
        # Implied, but SQLite only uses the index of settled rows when the query says it in its words.
        conditions.append(model.status != PENDING)
    # Half-open, [after, before): consecutive windows of a report never count a row twice.
    if after is not None:
        conditions.append(model.created_at >= after)
    if before is not None:
        conditions.append(model.created_at < before)
    return conditions


def _is_text(value: object) -> bool:
    # PostgreSQL refuses NUL in text outright; a filter that could never match is a mistake worth naming.
    return isinstance(value, str) and 1 <= len(value) <= 64 and "\x00" not in value


def _utc(value: datetime | None, name: str, errors: dict[str, list[str]]) -> datetime | None:
    """``value`` in UTC; a naive or unrepresentable time is an error (a naive one is ambiguous)."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        errors[name] = [f"{name} must be a timezone-aware time."]
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        errors[name] = [f"{name} is out of range."]
        return None


def list_deliveries(
    store_id: str,
    *,
    status: str | None = None,
    source: str | None = None,
    customer_id: str | None = None,
    order_id: str | None = None,
    discord_user_id: str | None = None,
    guild_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> DeliveryPage:
    """A store's deliveries matching every given filter, newest first, ``limit`` (1 to 100) per page.

    ``created_after`` is inclusive and ``created_before`` exclusive; both must be timezone-aware.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError({"limit": [f"Limit must be a whole number from 1 to {MAX_PAGE_SIZE}."]})
    if before_id is not None and (
        isinstance(before_id, bool) or not isinstance(before_id, int) or not 1 <= before_id <= MAX_ID + 1
    ):
        # Checked here, not by the driver: SQLite overflows on a number past BIGINT.
        raise ValidationError({"before_id": ["before_id must be a delivery id from a previous page."]})
    state = get_state()
    model = state.models.Delivery
    conditions = _filters(
        state,
        store_id,
        status=status,
        source=source,
        customer_id=customer_id,
        order_id=order_id,
        discord_user_id=discord_user_id,
        guild_id=guild_id,
        created_after=created_after,
        created_before=created_before,
    )
    if before_id is not None:
        conditions.append(model.id < before_id)
    rows = list(
        state.db.session.scalars(
            sa.select(model).where(*conditions).order_by(model.id.desc()).limit(limit + 1)
        )
    )
    items = [DeliveryInfo.from_row(row) for row in rows[:limit]]
    return DeliveryPage(items, items[-1].id if len(rows) > limit else None)


def get_delivery(store_id: str, delivery_id: int) -> DeliveryInfo:
    """One of the store's deliveries; :class:`DeliveryNotFound` for an unknown id or another store's."""
    state = get_state()
    return DeliveryInfo.from_row(_own_row(state, store_id, delivery_id, lock=False))


def retry_delivery(store_id: str, delivery_id: int) -> DeliveryInfo:
    """Put one failed or expired delivery back to pending (attempts reset). Runs after you commit.

    Raises :class:`ValidationError` when it cannot be retried: it is not failed or expired, its order
    was revoked, or the role gate refuses it (its server was unlinked since it was queued, or its
    package is no longer mapped to the role); the row then says why, if you commit.
    """
    state = get_state()
    row = _own_row(state, store_id, delivery_id, lock=True)
    if row.status not in RETRYABLE:
        raise ValidationError(
            {"status": [f"Only failed or expired deliveries can be retried (this one is {row.status})."]}
        )
    if row.revoked_at is not None:
        raise ValidationError(
            {"status": ["The order behind this delivery was revoked; it cannot be retried."]}
        )
    refused = _refuse_gated(state, [row])
    if refused:
        raise ValidationError({"status": [REFUSALS[refused[row.id]]]})
    due = _reset_for_retry(state, [row])
    _dispatch(state, due)
    return DeliveryInfo.from_row(row)


def _own_row(state: DiscordRolesState, store_id: str, delivery_id: int, *, lock: bool) -> Delivery:
    if isinstance(delivery_id, bool) or not isinstance(delivery_id, int) or not 0 < delivery_id <= MAX_ID:
        raise DeliveryNotFound(f"no delivery {delivery_id!r} in store {store_id}")
    model = state.models.Delivery
    query = sa.select(model).where(model.store_id == store_id, model.id == delivery_id)
    row = state.db.session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise DeliveryNotFound(f"no delivery {delivery_id} in store {store_id}")
    return row


@dataclass(frozen=True)
class Retried:
    """What a bulk retry did: how many rows went back to pending, and how many the role gate refused,
    by reason code (``guild_unlinked``, ``mapping_removed``); refused rows stay as they were, with the
    refusal as their reason."""

    retried: int
    refused: dict[str, int]

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())


def retry_deliveries(
    store_id: str,
    *,
    status: str = Status.FAILED,
    source: str | None = None,
    customer_id: str | None = None,
    order_id: str | None = None,
    discord_user_id: str | None = None,
    guild_id: str | None = None,
    reason_code: str | None = None,
) -> Retried:
    """Retry every failed (or ``status="expired"``) delivery matching the filters; runs after you commit.

    Deliveries of revoked orders are left alone; those the role gate refuses are counted in
    :attr:`Retried.refused`.
    """
    if status not in RETRYABLE:
        raise ValidationError({"status": ["Only failed or expired deliveries can be retried."]})
    state = get_state()
    model = state.models.Delivery
    conditions = _filters(
        state,
        store_id,
        status=status,
        source=source,
        customer_id=customer_id,
        order_id=order_id,
        discord_user_id=discord_user_id,
        guild_id=guild_id,
        reason_code=reason_code,
    )
    rows = list(
        state.db.session.scalars(
            sa.select(model).where(*conditions, model.revoked_at.is_(None)).with_for_update()
        )
    )
    refused = _refuse_gated(state, rows)
    allowed_rows = [row for row in rows if row.id not in refused]
    due = _reset_for_retry(state, allowed_rows)
    _dispatch(state, due)
    by_reason: dict[str, int] = {}
    for code in refused.values():
        by_reason[code] = by_reason.get(code, 0) + 1
    return Retried(len(allowed_rows), by_reason)


def _refuse_gated(state: DiscordRolesState, rows: list[Delivery]) -> dict[int, str]:
    """The rows the role gate refuses, by id, with the reason code; each now says why in its reason."""
    if not rows:
        return {}
    model = state.models.Delivery
    refused: dict[int, str] = dict(
        state.db.session.execute(
            sa.select(model.id, refusal(state.models)).where(
                model.id.in_([row.id for row in rows]), refusal(state.models).is_not(None)
            )
        ).all()
    )
    for row in rows:
        code = refused.get(row.id)
        if code is not None and row.reason_code != code:
            row.reason_code, row.reason, row.updated_at = code, REFUSALS[code], utcnow()
    return refused


def _reset_for_retry(state: DiscordRolesState, rows: list[Any]) -> list[int]:
    now = utcnow()
    due = []
    settings_by_store: dict[str, Any] = {}
    for row in rows:
        settings = settings_by_store.get(row.store_id)
        if settings is None:
            settings = settings_by_store[row.store_id] = store_settings(state, row.store_id)
        row.status = Status.PENDING
        row.attempts = 0
        row.reason_code = None
        row.reason = None
        row.leased_by = None
        row.lease_expires_at = None
        row.completed_at = None
        if row.action == Action.ADD and settings.claims_expire:
            row.expires_at = claim_window_end(settings, now)
        # An owner's retry is a request to deliver now, in either mode, if we know who to deliver to.
        row.next_attempt_at = now if row.discord_user_id else None
        if row.discord_user_id:
            due.append(row.id)
    state.db.session.flush()
    return due


def claim(store_id: str, *, guild_id: str, discord_user_id: str) -> list[int]:
    """What ``/claim`` does: everything this Discord user is owed in this guild comes due now.

    Works in both delivery modes. Returns the ids that will run once you commit.
    """
    state = get_state()
    due = claim_owed(state, store_id, guild_id, discord_user_id)
    _dispatch(state, due)
    return due


def store_stats(store_id: str) -> StoreStats:
    """The store's counters. ``success_rate`` is roles assigned over assignments tried, in percent."""
    state = get_state()
    model = state.models.StoreBot
    bot = state.db.session.scalar(sa.select(model).where(model.store_id == store_id))
    if bot is None:
        return StoreStats(0, 0, 0, 0, 100.0, None, False)
    tried = bot.total_roles_assigned + bot.total_errors
    rate = round(100.0 * bot.total_roles_assigned / tried, 1) if tried else 100.0
    return StoreStats(
        total_interactions=bot.total_interactions,
        total_roles_assigned=bot.total_roles_assigned,
        total_roles_removed=bot.total_roles_removed,
        total_errors=bot.total_errors,
        success_rate=rate,
        last_interaction_at=bot.last_interaction_at,
        is_active=bot.is_enabled,
    )


@dataclass(frozen=True)
class DayCount:
    """The deliveries created on one UTC day, by the status each has now."""

    day: date
    completed: int
    failed: int
    pending: int
    expired: int

    @property
    def total(self) -> int:
        return self.completed + self.failed + self.pending + self.expired


def deliveries_per_day(store_id: str, days: int = 14) -> list[DayCount]:
    """The store's deliveries per UTC day for the last ``days`` days (1 to 366), oldest first, today
    last; a day without deliveries is there with zeros.

    One grouped query. No index covers ``created_at``, so it reads through the store's rows: right for a
    dashboard page, not for something run on every request.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValidationError({"days": [f"days must be a whole number from 1 to {MAX_DAYS}."]})
    state = get_state()
    model = state.models.Delivery
    first = utcnow().date() - timedelta(days=days - 1)
    day = _utc_day(model.created_at, state.db.session.get_bind().dialect.name)
    rows = state.db.session.execute(
        sa.select(day, model.status, sa.func.count())
        .where(model.store_id == store_id, model.created_at >= datetime.combine(first, time(), tzinfo=UTC))
        .group_by(day, model.status)
    )
    counts = {first + timedelta(days=n): dict.fromkeys(STATUSES, 0) for n in range(days)}
    for when, status, count in rows:
        # A row stamped after today (a clock ahead of ours) or with a status we do not count is left out.
        bucket = counts.get(when)
        if bucket is not None and status in bucket:
            bucket[status] = count
    return [DayCount(when, **bucket) for when, bucket in counts.items()]


def _utc_day(column: Any, dialect: str) -> Any:
    """The UTC calendar day of a timestamp column, as a SQL expression read back as a ``date``."""
    if dialect == "postgresql":
        # timestamptz → the wall time in UTC, whatever the connection's TimeZone, then its date.
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    # Elsewhere (SQLite) UTCDateTime is stored as UTC without a zone: date() cuts it to 'YYYY-MM-DD',
    # which the Date type parses.
    return sa.type_coerce(sa.func.date(column), sa.Date)


def _dispatch(state: DiscordRolesState, delivery_ids: list[int]) -> None:
    if delivery_ids:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        dispatch_after_commit(state.db.session(), app, delivery_ids=delivery_ids)
