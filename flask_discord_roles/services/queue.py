"""Putting deliveries on the queue: a few INSERTs in the host's transaction, never a network call."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..extension import DiscordRolesState
from ..models import utcnow
from ..orders import OrderEvent
from .settings import store_settings


def order_delivery_key(order_id: str, package_id: str, guild_id: str, role_id: str) -> str:
    """What makes one order's delivery of one role unique: the same order signalled again matches it."""
    return f"order:{order_id}:add:{package_id}:{guild_id}:{role_id}"


def enqueue_order(state: DiscordRolesState, event: OrderEvent, *, now: datetime | None = None) -> list[int]:
    """Queue an ``add`` delivery for every role mapped to every package of a completed order.

    Runs in the host's session and transaction; the host commits. Returns the ids of the rows this call
    created (none when the order was already queued). Rows whose Discord user is known and whose store
    delivers automatically are due at once; the others wait (``next_attempt_at`` NULL) for the customer
    to link Discord or run ``/claim``.
    """
    if not event.package_ids:
        return []
    session = state.db.session
    models = state.models
    mapping = models.RoleMapping
    mappings = session.execute(
        sa.select(mapping.package_id, mapping.guild_id, mapping.role_id, mapping.role_name)
        .where(mapping.store_id == event.store_id, mapping.package_id.in_(event.package_ids))
        .order_by(mapping.id)
    ).all()
    if not mappings:
        return []
    now = now or utcnow()
    settings = store_settings(state, event.store_id)
    discord_user_id = event.discord_user_id or _linked_discord_user(state, event)
    due = now if (discord_user_id and settings.delivery_mode == "automatic") else None
    expires_at = now + timedelta(hours=settings.claim_expiry_hours) if settings.claims_expire else None
    rows: list[dict[str, Any]] = [
        {
            "store_id": event.store_id,
            "idempotency_key": order_delivery_key(event.order_id, package_id, guild_id, role_id),
            "action": "add",
            "status": "pending",
            "source": "auto",
            "guild_id": guild_id,
            "role_id": role_id,
            "role_name": role_name,
            "discord_user_id": discord_user_id,
            "customer_id": event.customer_id,
            "order_id": event.order_id,
            "package_id": package_id,
            "attempts": 0,
            "next_attempt_at": due,
            "expires_at": expires_at,
            "created_at": now,
            "updated_at": now,
        }
        for package_id, guild_id, role_id, role_name in mappings
    ]
    return _insert_new(state, rows)


def _linked_discord_user(state: DiscordRolesState, event: OrderEvent) -> str | None:
    if event.customer_id is None:
        return None
    account = state.models.DiscordAccount
    return state.db.session.scalar(
        sa.select(account.discord_user_id).where(
            account.store_id == event.store_id, account.customer_id == event.customer_id
        )
    )


def _insert_new(state: DiscordRolesState, rows: list[dict[str, Any]]) -> list[int]:
    """INSERT the rows whose idempotency key is new, atomically even against a concurrent signal.

    ON CONFLICT DO NOTHING keeps a duplicate from raising inside the host's transaction (which would
    abort it on PostgreSQL); other databases fall back to looking the keys up first.
    """
    session = state.db.session
    delivery = state.models.Delivery
    table = delivery.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(table)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["store_id", "idempotency_key"])
            .returning(table.c.id)
        )
        return [row_id for (row_id,) in session.execute(statement)]
    existing = set(
        session.scalars(
            sa.select(delivery.idempotency_key).where(
                delivery.store_id == rows[0]["store_id"],
                delivery.idempotency_key.in_([row["idempotency_key"] for row in rows]),
            )
        )
    )
    new_rows = [row for row in rows if row["idempotency_key"] not in existing]
    if not new_rows:
        return []
    return [row_id for (row_id,) in session.execute(sa.insert(table).returning(table.c.id), new_rows)]
