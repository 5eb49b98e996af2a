"""Time-limited grants: an order that sells time starts one, a renewal moves its end, a revocation ends it.

Only orders with ``expires_at`` or ``subscription_id`` have a grant row; plain orders keep the fast
checkout path. A grant's roles are the ordinary ``add`` deliveries of the order that started it
(``grant.order_id``): a renewal queues nothing and changes no role, and ending a grant is
:func:`~._core.queue.revoke_order` of that order's package (the one removal path, with its provenance
rules). The sweeps that end grants and send reminders when their time comes are in :mod:`.grant_sweeps`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

import sqlalchemy as sa

from flask_discord_roles._core.grant_records import GrantInfo
from flask_discord_roles._core.grant_times import GrantTimes, grant_times
from flask_discord_roles._core.queue import Queued, enqueue_order, revoke_order
from flask_discord_roles._runtime.dialects import supported_insert
from flask_discord_roles._runtime.dispatch import current_app_or_none, send_after_commit
from flask_discord_roles._runtime.models import Grant, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import GrantEnd, GrantStatus, ReasonCode
from flask_discord_roles.orders import OrderEvent
from flask_discord_roles.signals import grant_ended, grant_renewed

# -- an order that sells time ------------------------------------------------------------------------


@dataclass
class Recorded:
    """What one time-limited order did: deliveries queued for new grants, grants renewed."""

    queued: Queued = field(default_factory=Queued)
    renewed: list[GrantInfo] = field(default_factory=list)


def record_order(state: DiscordRolesState, event: OrderEvent, *, now: datetime | None = None) -> Recorded:
    """A paid time-limited order (``event.is_time_limited``): start, restart or renew its grants.

    In the host's session and transaction, per package: an *active* grant of the same
    ``subscription_id`` is renewed when ``expires_at`` is later (its end and reminder move, nothing is
    queued, :data:`~flask_discord_roles.signals.grant_renewed` is sent after the commit); otherwise a
    grant starts (or an ended subscription's grant starts again) and the order's deliveries for those
    packages are queued as for any order. Sending the same order again changes nothing. An
    ``expires_at`` already past is accepted: that grant ends at the next expiry sweep.
    """
    now = now or utcnow()
    session = state.db.session
    model = state.models.Grant
    times = grant_times(state, event.store_id)
    recorded = Recorded()
    starting: list[str] = []
    for package_id in dict.fromkeys(event.package_ids):
        grant = session.scalar(
            sa.select(model).where(*_same_grant(model, event, package_id)).with_for_update()
        )
        if grant is None:
            if _insert_grant(state, event, package_id, times, now):
                starting.append(package_id)
        elif event.order_id in (grant.order_id, grant.last_order_id):
            continue  # the same order sent again
        elif grant.status == GrantStatus.ACTIVE:
            if _renew(grant, event, times, now):
                recorded.renewed.append(GrantInfo.from_row(grant))
        else:
            _restart(grant, event, times, now)
            starting.append(package_id)
    session.flush()
    if starting:
        recorded.queued = enqueue_order(state, replace(event, package_ids=tuple(starting)), now=now)
    app = current_app_or_none()
    if app is not None:
        for info in recorded.renewed:
            send_after_commit(session(), app, grant_renewed, grant=info)
    return recorded


def _same_grant(model: type[Grant], event: OrderEvent, package_id: str) -> list[sa.ColumnElement[bool]]:
    """The grant this order's package continues: its subscription's, or (fixed-term) its own."""
    if event.subscription_id is not None:
        mine = model.subscription_id == event.subscription_id
    else:
        mine = model.order_id == event.order_id
    return [model.store_id == event.store_id, model.package_id == package_id, mine]


def _insert_grant(
    state: DiscordRolesState, event: OrderEvent, package_id: str, times: GrantTimes, now: datetime
) -> bool:
    """A new grant row, unless a concurrent signal of the same subscription or order just made it
    (then that one queues the deliveries). ON CONFLICT DO NOTHING: a duplicate must not abort the
    host's transaction on PostgreSQL."""
    connection = state.db.session.connection()
    table = state.models.Grant.__table__  # type: ignore[attr-defined]
    statement = (
        supported_insert(connection.dialect.name)(table)
        .values(
            store_id=event.store_id,
            customer_id=event.customer_id,
            discord_user_id=event.discord_user_id,
            package_id=package_id,
            subscription_id=event.subscription_id,
            order_id=event.order_id,
            last_order_id=event.order_id,
            status=GrantStatus.ACTIVE,
            expires_at=event.expires_at,
            ends_at=times.ends_at(event.expires_at),
            remind_at=times.remind_at(event.expires_at, now),
            renewals=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )
    return connection.execute(statement).first() is not None


def _renew(grant: Grant, event: OrderEvent, times: GrantTimes, now: datetime) -> bool:
    """Move an active grant's end to the order's later expiry; False (nothing changed) if not later."""
    if not _later(event.expires_at, grant.expires_at):
        return False
    grant.expires_at = event.expires_at
    grant.ends_at = times.ends_at(event.expires_at)
    # The new period has its own reminder: one that went for the old period does not count for it.
    grant.remind_at = times.remind_at(event.expires_at, now)
    grant.reminded_at = None
    grant.reminder_reason_code = None
    grant.last_order_id = event.order_id
    grant.renewals += 1
    grant.discord_user_id = grant.discord_user_id or event.discord_user_id
    grant.updated_at = now
    return True


def _later(new: datetime | None, current: datetime | None) -> bool:
    """Is ``new`` a later end than ``current``? No end at all is later than any end."""
    if new is None:
        return current is not None
    return current is not None and new > current


def _restart(grant: Grant, event: OrderEvent, times: GrantTimes, now: datetime) -> None:
    """An ended subscription's grant paid for again: it starts over with this order, whose deliveries
    give the roles back."""
    grant.status = GrantStatus.ACTIVE
    grant.order_id = grant.last_order_id = event.order_id
    grant.customer_id = event.customer_id
    grant.discord_user_id = event.discord_user_id
    grant.expires_at = event.expires_at
    grant.ends_at = times.ends_at(event.expires_at)
    grant.remind_at = times.remind_at(event.expires_at, now)
    grant.reminded_at = grant.reminder_reason_code = None
    grant.ended_at = grant.end_reason = None
    grant.renewals = 0
    grant.updated_at = now


# -- an order revoked ----------------------------------------------------------------------------------


def end_revoked_grants(state: DiscordRolesState, event: OrderEvent, *, now: datetime | None = None) -> Queued:
    """``order_revoked``: the active grants this order started or last paid for, or of its
    ``subscription_id``, end at once (``revoked``) and their roles go by :func:`revoke_order`.

    In the host's session; :data:`~flask_discord_roles.signals.grant_ended` is sent after the commit.
    ``event.package_ids`` narrows it to those packages. Revoking again ends nothing more.
    """
    now = now or utcnow()
    model = state.models.Grant
    session = state.db.session
    theirs = [model.order_id == event.order_id, model.last_order_id == event.order_id]
    if event.subscription_id is not None:
        theirs.append(model.subscription_id == event.subscription_id)
    query = sa.select(model).where(
        model.store_id == event.store_id, model.status == GrantStatus.ACTIVE, sa.or_(*theirs)
    )
    if event.package_ids:
        query = query.where(model.package_id.in_(event.package_ids))
    ended = list(session.scalars(query.order_by(model.id).with_for_update()))
    for grant in ended:
        end_grant(grant, GrantEnd.REVOKED, now)
    session.flush()
    queued = take_back(state, ended, now=now)
    announce_ended(state, ended)
    return queued


def end_grant(grant: Grant, reason: GrantEnd, now: datetime) -> None:
    grant.status = GrantStatus.ENDED
    grant.end_reason = reason
    grant.ended_at = now
    grant.updated_at = now


def take_back(
    state: DiscordRolesState,
    grants: Iterable[Grant | GrantInfo],
    *,
    now: datetime,
    reason_code: ReasonCode = ReasonCode.ORDER_REVOKED,
) -> Queued:
    """:func:`revoke_order` for each ended grant's starting order and package, one call per order."""
    packages: dict[tuple[str, str], list[str]] = {}
    customers: dict[tuple[str, str], str | None] = {}
    for grant in grants:
        key = (grant.store_id, grant.order_id)
        packages.setdefault(key, []).append(grant.package_id)
        customers[key] = grant.customer_id
    queued = Queued()
    # The removals are due at once, whatever clock decided the end: a sweep run with a later ``now``
    # (a test, a demo's clock) must not queue them for that later moment, when no runner would take them.
    due = min(now, utcnow())
    for (store_id, order_id), package_ids in packages.items():
        event = OrderEvent(
            store_id, order_id, customer_id=customers[(store_id, order_id)], package_ids=tuple(package_ids)
        )
        done = revoke_order(state, event, now=due, reason_code=reason_code)
        queued.created += done.created
        queued.due += done.due
    return queued


def announce_ended(state: DiscordRolesState, grants: Iterable[Grant]) -> None:
    """:data:`grant_ended` for each grant, once the session commits (never if it rolls back)."""
    app = current_app_or_none()
    if app is None:
        return
    for grant in grants:
        send_after_commit(state.db.session(), app, grant_ended, grant=GrantInfo.from_row(grant))
