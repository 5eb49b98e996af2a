"""A store's Discord settings, for the host's own dashboard (inside an app context)::

    from flask_discord_roles import store_settings

    store_settings.update_settings(store.id, notifications_enabled=True, notification_channel_id="1234…")
    db.session.commit()

The tenant API's ``/settings`` calls the same functions, with the same validation.
"""

from __future__ import annotations

from typing import Any

from flask_discord_roles._core import settings as _service
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.errors import ValidationError

__all__ = ["SETTING_NAMES", "ValidationError", "get_settings", "update_settings"]

SETTING_NAMES = _service.SETTING_NAMES


def get_settings(store_id: object) -> dict[str, Any]:
    """The store's settings by name; the defaults for a store that never saved any."""
    return _service.settings_dict(_service.store_settings(get_state(), str(store_id)))


def update_settings(store_id: object, **changes: Any) -> dict[str, Any]:
    """Change the named settings, keep the others, and return them all. Added to your session: commit.

    Raises :class:`ValidationError` (``errors`` per setting, in words) and changes nothing when any is
    refused. A new notification channel is checked with Discord, so this may also raise
    :class:`~flask_discord_roles.discord.errors.TransientDiscordError` when Discord cannot be reached.
    """
    saved = _service.update_settings(get_state(), str(store_id), changes)
    return _service.settings_dict(saved)
