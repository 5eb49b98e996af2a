"""When a time-limited grant ends and when its reminder goes, from the store's settings.

Apart from :mod:`.grants` so the settings service can reschedule grants without importing the queue
(which reads the settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import GrantStatus


@dataclass(frozen=True)
class GrantTimes:
    """The store's settings that place a grant's end and its reminder."""

    grace_hours: int = 0
    reminder_hours: int | None = None

    def ends_at(self, expires_at: datetime | None) -> datetime | None:
        """When the roles go: the expiry plus the grace period; never for a grant without an expiry."""
        return None if expires_at is None else expires_at + timedelta(hours=self.grace_hours)

    def remind_at(self, expires_at: datetime | None, now: datetime) -> datetime | None:
        """When to remind: ``reminder_hours`` before the expiry. A period that is already inside that
        window when it is set (a one-day pass with a three-day reminder) gets no reminder: the member
        has just paid, and a message that it is about to end would be noise."""
        if expires_at is None or self.reminder_hours is None:
            return None
        moment = expires_at - timedelta(hours=self.reminder_hours)
        return moment if moment > now else None


def grant_times(state: DiscordRolesState, store_id: str) -> GrantTimes:
    """The store's saved grace and reminder hours (no grace, no reminder for a store that saved none)."""
    model = state.models.StoreSettings
    row = state.db.session.execute(
        sa.select(model.grace_hours, model.expiry_reminder_hours).where(model.store_id == store_id)
    ).first()
    return GrantTimes() if row is None else GrantTimes(row[0] or 0, row[1])


# -- the store changed its grace period or reminder -------------------------------------------------------


def reschedule_store_grants(state: DiscordRolesState, store_id: str, *, now: datetime | None = None) -> int:
    """Recompute ``ends_at`` and the reminder of the store's active grants from its current settings.

    Called when ``grace_hours`` or ``expiry_reminder_hours`` change, in the same transaction. A reminder
    already sent for the current period stays sent. Returns how many grants were looked at.
    """
    now = now or utcnow()
    times = grant_times(state, store_id)
    model = state.models.Grant
    session = state.db.session
    rows = session.execute(
        sa.select(model.id, model.expires_at, model.remind_at, model.reminded_at).where(
            model.store_id == store_id,
            model.status == GrantStatus.ACTIVE,
            model.expires_at.is_not(None),
        )
    ).all()
    changes = [
        {
            "grant_id": grant_id,
            "new_ends_at": times.ends_at(expires_at),
            "new_remind_at": remind_at if reminded_at is not None else times.remind_at(expires_at, now),
            "new_updated_at": now,
        }
        for grant_id, expires_at, remind_at, reminded_at in rows
    ]
    if changes:
        table = model.__table__  # type: ignore[attr-defined]
        session.connection().execute(
            table.update()
            .where(table.c.id == sa.bindparam("grant_id"))
            .values(
                ends_at=sa.bindparam("new_ends_at", type_=table.c.ends_at.type),
                remind_at=sa.bindparam("new_remind_at", type_=table.c.remind_at.type),
                updated_at=sa.bindparam("new_updated_at", type_=table.c.updated_at.type),
            ),
            changes,
        )
    return len(changes)
