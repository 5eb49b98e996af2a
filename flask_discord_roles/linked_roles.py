"""Discord Linked Roles for a store: the fields its application declares, and each linked customer's
role connection (inside an app context)::

    from flask_discord_roles import linked_roles, store_settings

    store_settings.update_settings(store.id, linked_roles_enabled=True)  # registers the fields
    db.session.commit()
    linked_roles.connection_of(store.id, customer.id)  # what we last pushed, and its status

Once a store has ``linked_roles_enabled``, linking asks for the ``role_connections.write`` scope and
each linked customer's connection (``verified_buyer``, ``active_subscription``, ``total_orders``,
``customer_since``) is queued whenever their orders or time-limited grants change, and pushed by the
runners with the customer's own token. See the Linked Roles page of the docs.
"""

from __future__ import annotations

from typing import Any

from flask_discord_roles._core import linked_roles as _service
from flask_discord_roles._core.linked_roles import ConnectionInfo
from flask_discord_roles._core.role_connection_metadata import (
    METADATA,
    LinkedRolesUnavailable,
)
from flask_discord_roles._core.role_connection_metadata import register_metadata as _register
from flask_discord_roles._runtime.state import get_state

__all__ = [
    "METADATA",
    "ConnectionInfo",
    "LinkedRolesUnavailable",
    "connection_of",
    "connection_values",
    "refresh_connection",
    "register_metadata",
]


def register_metadata(store_id: object) -> list[dict[str, Any]]:
    """Declare the store's Linked Roles fields (:data:`METADATA`) on its Discord application now.

    Discord replaces what was declared, so calling it again changes nothing. Returns the records as
    Discord kept them. Raises :class:`LinkedRolesUnavailable` with the fix when there is no application
    to declare them on, or Discord refuses or does not answer. Turning ``linked_roles_enabled`` on
    calls this for you.
    """
    return [record.to_json() for record in _register(get_state(), str(store_id))]


def connection_values(store_id: object, customer_id: object) -> dict[str, Any]:
    """The customer's Linked Roles values as they are now, computed from their orders and grants."""
    return _service.connection_values(get_state(), str(store_id), str(customer_id))


def refresh_connection(store_id: object, customer_id: object) -> bool:
    """Queue the customer's connection with fresh values (added to your session: commit); False when
    the store has Linked Roles off or the customer has no linked account. The runners push it."""
    return _service.queue_connection(get_state(), str(store_id), str(customer_id))


def connection_of(store_id: object, customer_id: object) -> ConnectionInfo | None:
    """What we last queued or pushed for the customer, with its status (``pending``, ``sent``,
    ``failed`` and a ``reason_code``); None when nothing was."""
    return _service.connection_of(get_state(), str(store_id), str(customer_id))
