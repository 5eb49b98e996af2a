"""Rows the queue writes for itself (removals, tier changes), and inserting them once whatever runs twice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.order_rows import order_removal_key
from flask_discord_roles._runtime.dialects import supported_insert
from flask_discord_roles._runtime.models import Delivery
from flask_discord_roles.codes import Action, ReasonCode, Source, Status

KEPT_ON_END_REASON = "Kept: the role's mapping keeps it when the purchase ends (keep_on_end)."
"""Why a removal completed without a role change because the role is sticky."""


def follow_up_row(
    grant: Any, *, action: Action, key: str, order_id: str | None, now: datetime
) -> dict[str, Any]:
    """A row (source ``auto``, due now) that changes the role ``grant`` is about, for the same person."""
    return {
        "store_id": grant.store_id,
        "idempotency_key": key,
        "action": action,
        "status": Status.PENDING,
        "source": Source.AUTO,
        "guild_id": grant.guild_id,
        "role_id": grant.role_id,
        "role_name": grant.role_name,
        "discord_user_id": grant.discord_user_id,
        "customer_id": grant.customer_id,
        "order_id": order_id,
        "package_id": grant.package_id,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def removal_row(grant: Any, order_id: str, now: datetime) -> dict[str, Any]:
    """The row that takes back the role ``grant`` gave, because ``order_id`` was revoked; due now."""
    key = order_removal_key(order_id, grant.guild_id, grant.role_id)
    return follow_up_row(grant, action=Action.REMOVE, key=key, order_id=order_id, now=now)


def kept_row(grant: Any, order_id: str, now: datetime) -> dict[str, Any]:
    """The record that a revoked order's role stays because its mapping keeps it (``keep_on_end``)."""
    return {
        **removal_row(grant, order_id, now),
        "status": Status.COMPLETED,
        "next_attempt_at": None,
        "completed_at": now,
        "reason_code": ReasonCode.KEPT_ON_END,
        "reason": KEPT_ON_END_REASON,
    }


def insert_new(connection: sa.Connection, model: type[Delivery], rows: list[dict[str, Any]]) -> list[int]:
    """INSERT the rows whose idempotency key is new, atomically even against a concurrent signal; their ids.

    ON CONFLICT DO NOTHING keeps a duplicate from raising inside the host's transaction (which would
    abort it on PostgreSQL).
    """
    if not rows:
        return []
    table = model.__table__  # type: ignore[attr-defined]
    # Rows as parameters, not .values(rows): the statement is then compiled once and cached, and
    # SQLAlchemy still sends a single multi-row INSERT ("insertmanyvalues").
    statement = (
        supported_insert(connection.dialect.name)(table)
        .on_conflict_do_nothing(index_elements=["store_id", "idempotency_key"])
        .returning(table.c.id)
    )
    return [row_id for (row_id,) in connection.execute(statement, rows)]
