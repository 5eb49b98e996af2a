"""A store's Discord settings, with the documented defaults for a store that never saved any."""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa

from ..extension import DiscordRolesState
from ..models import StoreSettings

DEFAULT_CLAIM_EXPIRY_HOURS = 72


def store_settings(state: DiscordRolesState, store_id: str) -> StoreSettings:
    """The store's saved settings, or an unsaved object holding the defaults."""
    model = state.models.StoreSettings
    saved = state.db.session.scalar(sa.select(model).where(model.store_id == store_id))
    if saved is not None:
        return saved
    return model(
        store_id=store_id,
        linking_enabled=True,
        require_link=False,
        join_guilds_on_link=False,
        notifications_enabled=False,
        delivery_mode="automatic",
        claims_expire=True,
        claim_expiry_hours=DEFAULT_CLAIM_EXPIRY_HOURS,
    )


class QueueSettings(NamedTuple):
    """The settings queueing needs, read in one cached Core query (this runs in every checkout)."""

    delivery_mode: str = "automatic"
    claims_expire: bool = True
    claim_expiry_hours: int = DEFAULT_CLAIM_EXPIRY_HOURS
    notifications_enabled: bool = False
    notification_channel_id: str | None = None


def settings_columns(model: type[StoreSettings]) -> tuple[Any, ...]:
    """The columns behind :class:`QueueSettings`, in its order, for queries that join them in."""
    return (
        model.delivery_mode,
        model.claims_expire,
        model.claim_expiry_hours,
        model.notifications_enabled,
        model.notification_channel_id,
    )


def queue_settings(state: DiscordRolesState, store_id: str) -> QueueSettings:
    """The store's queueing settings, or the defaults when it never saved any."""
    model = state.models.StoreSettings
    row = (
        state.db.session.connection()
        .execute(sa.select(*settings_columns(model)).where(model.store_id == store_id))
        .first()
    )
    return QueueSettings(*row) if row is not None else QueueSettings()
