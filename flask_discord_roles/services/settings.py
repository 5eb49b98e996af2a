"""A store's Discord settings, with the documented defaults for a store that never saved any."""

from __future__ import annotations

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
