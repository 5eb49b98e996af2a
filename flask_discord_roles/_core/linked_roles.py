"""Each linked customer's Discord role connection (Linked Roles): what it says, and queueing it to push.

The values come from our own tables by one function, :func:`connection_values`. Whenever a customer's
state changes (an order, a time-limited grant starting, renewing or ending, a revocation, a link), the
caller queues their connection in the same transaction: one row per store and Discord user holding the
latest values, due now. :mod:`.role_connection_sender` pushes it. Nothing here calls Discord.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.role_connection_metadata import (
    ACTIVE_SUBSCRIPTION,
    CUSTOMER_SINCE,
    TOTAL_ORDERS,
    VERIFIED_BUYER,
)
from flask_discord_roles._runtime.dialects import supported_insert
from flask_discord_roles._runtime.models import RoleConnectionUpdate, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles._runtime.timestamps import format_timestamp
from flask_discord_roles.codes import Action, GrantEnd, GrantStatus, SendStatus
from flask_discord_roles.discord.oauth import ROLE_CONNECTIONS_WRITE

__all__ = ["ConnectionInfo", "connection_of", "connection_values", "queue_connection", "queue_connections"]


@dataclass(frozen=True)
class ConnectionInfo:
    """What we last queued or pushed as a customer's role connection, and where it stands."""

    store_id: str
    customer_id: str | None
    discord_user_id: str
    metadata: dict[str, Any]
    status: str
    attempts: int
    reason_code: str | None
    reason: str | None
    next_attempt_at: datetime | None
    pushed_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RoleConnectionUpdate) -> ConnectionInfo:
        return cls(
            store_id=row.store_id,
            customer_id=row.customer_id,
            discord_user_id=row.discord_user_id,
            metadata=dict(row.metadata_values or {}),
            status=row.status,
            attempts=row.attempts,
            reason_code=row.reason_code,
            reason=row.reason,
            next_attempt_at=row.next_attempt_at if row.status == SendStatus.PENDING else None,
            pushed_at=row.pushed_at,
            updated_at=row.updated_at,
        )


def connection_values(state: DiscordRolesState, store_id: str, customer_id: str) -> dict[str, Any]:
    """The customer's Linked Roles values, from their orders' deliveries and time-limited grants.

    ``total_orders`` counts distinct orders that queued a role (not revoked) and time-limited grants
    with their renewals (not ended by a revocation); ``verified_buyer`` is ``total_orders > 0``;
    ``active_subscription`` is any active time-limited grant; ``customer_since`` the first such order
    (None when there is none, and then it is left out of what Discord gets).
    """
    session = state.db.session
    delivery, grant = state.models.Delivery, state.models.Grant
    order_rows = session.execute(
        sa.select(delivery.order_id, sa.func.min(delivery.created_at))
        .where(
            delivery.store_id == store_id,
            delivery.customer_id == customer_id,
            delivery.action == Action.ADD,
            delivery.order_id.is_not(None),
            delivery.revoked_at.is_(None),
        )
        .group_by(delivery.order_id)
    ).all()
    grant_rows = session.execute(
        sa.select(grant.order_id, grant.created_at, grant.renewals, grant.status).where(
            grant.store_id == store_id,
            grant.customer_id == customer_id,
            sa.or_(grant.end_reason.is_(None), grant.end_reason != GrantEnd.REVOKED),
        )
    ).all()
    orders = {order_id for order_id, _ in order_rows} | {row.order_id for row in grant_rows}
    total = len(orders) + sum(row.renewals for row in grant_rows)
    firsts = [first for _, first in order_rows] + [row.created_at for row in grant_rows]
    since = min(firsts) if firsts else None
    return {
        VERIFIED_BUYER: total > 0,
        ACTIVE_SUBSCRIPTION: any(row.status == GrantStatus.ACTIVE for row in grant_rows),
        TOTAL_ORDERS: total,
        CUSTOMER_SINCE: format_timestamp(since) if since is not None else None,
    }


def _enabled(state: DiscordRolesState, store_id: str) -> bool:
    model = state.models.StoreSettings
    return bool(
        state.db.session.scalar(sa.select(model.linked_roles_enabled).where(model.store_id == store_id))
    )


def linked_customer(state: DiscordRolesState, store_id: str, customer_id: str) -> str | None:
    """The customer's Discord id when the store has Linked Roles on and they are linked; else None.

    One small query, cheap enough for the order signal: the join with the settings answers "is it on"
    and "are they linked" together.
    """
    settings, account = state.models.StoreSettings, state.models.DiscordAccount
    return state.db.session.scalar(
        sa.select(account.discord_user_id)
        .join(settings, settings.store_id == account.store_id)
        .where(
            account.store_id == store_id,
            account.customer_id == customer_id,
            settings.linked_roles_enabled.is_(True),
        )
    )


def queue_connection(
    state: DiscordRolesState,
    store_id: str,
    customer_id: str,
    *,
    discord_user_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue the customer's role connection with their current values, due now, in the host's session.

    Does nothing (False) when the store has Linked Roles off or the customer has no linked account.
    Replaces the values of a row still waiting (only the latest state matters) and puts a pushed or
    failed row back in the queue; the push itself happens in a runner, never here.
    """
    if discord_user_id is None:
        discord_user_id = linked_customer(state, store_id, customer_id)
    elif not _enabled(state, store_id):
        return False
    if discord_user_id is None:
        return False
    now = now or utcnow()
    values = connection_values(state, store_id, customer_id)
    model = state.models.RoleConnectionUpdate
    fresh = {
        "customer_id": customer_id,
        "metadata_values": values,
        "status": SendStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "reason_code": None,
        "reason": None,
        # The real time even when the caller's clock is another: a runner compares it to tell a row
        # queued again while it pushed.
        "updated_at": utcnow(),
    }
    session = state.db.session
    insert = supported_insert(session.get_bind().dialect.name)
    statement = insert(model).values(
        store_id=store_id, discord_user_id=discord_user_id, created_at=now, **fresh
    )
    # A runner pushing the row right now keeps its lease, so no second runner pushes beside it (the
    # older values could land last); seeing ``updated_at`` moved, it leaves the row pending for the next.
    session.execute(
        statement.on_conflict_do_update(index_elements=["store_id", "discord_user_id"], set_=fresh)
    )
    return True


def queue_connections(
    state: DiscordRolesState,
    store_id: str,
    customer_ids: Iterable[str | None],
    *,
    now: datetime | None = None,
) -> int:
    """:func:`queue_connection` for each distinct customer (None skipped); how many were queued."""
    if not _enabled(state, store_id):
        return 0
    return sum(
        queue_connection(state, store_id, customer_id, now=now)
        for customer_id in sorted({c for c in customer_ids if c is not None})
    )


def connection_of(state: DiscordRolesState, store_id: str, customer_id: str) -> ConnectionInfo | None:
    """What we last queued or pushed for the customer's linked Discord account; None when nothing."""
    model, account = state.models.RoleConnectionUpdate, state.models.DiscordAccount
    row = state.db.session.scalar(
        sa.select(model)
        .join(
            account,
            sa.and_(account.store_id == model.store_id, account.discord_user_id == model.discord_user_id),
        )
        .where(model.store_id == store_id, account.customer_id == customer_id)
    )
    return None if row is None else ConnectionInfo.from_row(row)


def has_scope(scopes: str | None) -> bool:
    """Did the customer grant ``role_connections.write`` when they linked?"""
    return ROLE_CONNECTIONS_WRITE in (scopes or "").split()


def queue_for_order(
    state: DiscordRolesState, store_id: str, order_id: str, customer_id: str | None, *, revoked: bool
) -> None:
    """Queue the connection of the customer an order (completed or revoked) changed.

    A completed order without a customer (a guest's) has no linked account to write for: nothing is
    read. A revocation may come without the customer: the order's own rows name them.
    """
    if customer_id is not None:
        queue_connection(state, store_id, customer_id)
    elif revoked and _enabled(state, store_id):
        delivery, grant = state.models.Delivery, state.models.Grant
        customers = state.db.session.scalars(
            sa.select(delivery.customer_id)
            .where(delivery.store_id == store_id, delivery.order_id == order_id)
            .union(
                sa.select(grant.customer_id).where(
                    grant.store_id == store_id,
                    sa.or_(grant.order_id == order_id, grant.last_order_id == order_id),
                )
            )
        )
        queue_connections(state, store_id, list(customers))
