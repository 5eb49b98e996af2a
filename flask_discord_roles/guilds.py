"""Linking Discord servers to stores, for the host's dashboard (inside an app context)::

from flask_discord_roles import guilds

issued = guilds.create_link_code(store.id)
db.session.commit()
flash(f"In your server, run /link code:{issued.code} before {issued.expires_at:%H:%M} UTC")
"""

from __future__ import annotations

from .extension import get_state
from .services import guilds as _service
from .services.guilds import LINK_CODE_LIFETIME, IssuedCode, LinkRefusal

__all__ = ["LINK_CODE_LIFETIME", "IssuedCode", "LinkRefusal", "create_link_code"]


def create_link_code(store_id: object) -> IssuedCode:
    """A one-time code the store's server manager types as ``/link code:…``; valid 30 minutes, once.

    Added to your session: commit it. Only the code's hash is stored, so show ``code`` now.
    """
    return _service.create_link_code(get_state(), str(store_id))
