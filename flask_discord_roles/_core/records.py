"""Plain, immutable views of queue rows: what signals carry and the Python API returns.

ORM objects are tied to a session and a thread; these can be handed to any receiver, logged, or turned
into JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._runtime.models import Delivery
from flask_discord_roles._runtime.timestamps import json_ready
from flask_discord_roles.codes import Status


@dataclass(frozen=True)
class DeliveryInfo:
    """One delivery: a role change for one customer in one guild, and where it stands."""

    id: int
    store_id: str
    action: str
    status: str
    source: str
    guild_id: str
    role_id: str
    role_name: str | None
    discord_user_id: str | None
    customer_id: str | None
    order_id: str | None
    package_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    reason_code: str | None
    reason: str | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_row(cls, row: Delivery | sa.Row[Any]) -> DeliveryInfo:
        # Every field is the row's column of the same name.
        return cls(**{column.name: getattr(row, column.name) for column in fields(cls)})

    @property
    def waiting_for_customer(self) -> bool:
        """Pending with nothing scheduled: the customer has to link Discord or run /claim."""
        return self.status == Status.PENDING and self.next_attempt_at is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ``2025-01-20T14:30:00Z`` (:mod:`flask_discord_roles._runtime.timestamps`)."""
        return json_ready(self)
