"""Time-limited grants as plain values, and reading them: what signals carry and the APIs list."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._runtime.models import Grant
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles._runtime.timestamps import json_ready
from flask_discord_roles.codes import GrantStatus
from flask_discord_roles.errors import NotFound, ValidationError

GRANT_STATUSES: tuple[str, ...] = tuple(status.value for status in GrantStatus)
"""The statuses a grant listing may be narrowed to."""

MAX_LISTED_GRANTS = 500
"""The most grants one listing returns (newest first): a customer holds a handful, a store many."""


class GrantNotFound(NotFound):
    """No grant with this id in this store."""


@dataclass(frozen=True)
class GrantInfo:
    """A package one customer holds for a time (a subscription's, or a fixed-term order's).

    ``expires_at`` is what the host sent (None: a subscription with no end yet); ``ends_at`` is when
    its roles go: ``expires_at`` plus the store's ``grace_hours``. ``order_id`` started the grant and
    gave its roles; ``last_order_id`` is the latest order that paid for it (a renewal's).
    """

    id: int
    store_id: str
    customer_id: str | None
    discord_user_id: str | None
    package_id: str
    subscription_id: str | None
    order_id: str
    last_order_id: str
    status: str
    expires_at: datetime | None
    ends_at: datetime | None
    renewals: int
    reminded_at: datetime | None
    # Why the reminder's direct message did not go (e.g. ``dms_closed``); None when it went or is to come.
    reminder_reason_code: str | None
    ended_at: datetime | None
    end_reason: str | None

    @classmethod
    def from_row(cls, row: Grant | sa.Row[Any]) -> GrantInfo:
        # Every field is the row's column of the same name.
        return cls(**{column.name: getattr(row, column.name) for column in fields(cls)})

    @property
    def is_active(self) -> bool:
        return self.status == GrantStatus.ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ``2025-01-20T14:30:00Z`` (:mod:`flask_discord_roles._runtime.timestamps`)."""
        return json_ready(self)


def grant_columns(model: type[Grant]) -> tuple[Any, ...]:
    """The columns :class:`GrantInfo` is read from, in its order."""
    return tuple(getattr(model, column.name) for column in fields(GrantInfo))


def list_grants(
    state: DiscordRolesState,
    store_id: str,
    *,
    customer_id: str | None = None,
    discord_user_id: str | None = None,
    status: str | None = None,
) -> list[GrantInfo]:
    """The store's grants, newest first (at most :data:`MAX_LISTED_GRANTS`), narrowed as asked.

    Raises :class:`ValidationError` for a status that is not ``active`` or ``ended``.
    """
    if status is not None and status not in GRANT_STATUSES:
        raise ValidationError({"status": [f"Must be one of: {', '.join(GRANT_STATUSES)}."]})
    model = state.models.Grant
    query = sa.select(*grant_columns(model)).where(model.store_id == store_id)
    if customer_id is not None:
        query = query.where(model.customer_id == customer_id)
    if discord_user_id is not None:
        query = query.where(model.discord_user_id == discord_user_id)
    if status is not None:
        query = query.where(model.status == status)
    rows = state.db.session.execute(query.order_by(model.id.desc()).limit(MAX_LISTED_GRANTS))
    return [GrantInfo.from_row(row) for row in rows]


def get_grant(state: DiscordRolesState, store_id: str, grant_id: int) -> GrantInfo:
    """One of the store's grants; :class:`GrantNotFound` if it has none with this id."""
    model = state.models.Grant
    row = state.db.session.execute(
        sa.select(*grant_columns(model)).where(model.store_id == store_id, model.id == grant_id)
    ).first()
    if row is None:
        raise GrantNotFound(f"no grant {grant_id} in this store")
    return GrantInfo.from_row(row)
