"""A customer's Discord link and roles, for the host's own dashboard (inside an app context)::

    from flask_discord_roles import customers, deliveries

    status = customers.customer_status(store.id, customer.id)
    deliveries.assign_role(store.id, customer_id=customer.id, guild_id=guild_id, role_id=role_id)
    db.session.commit()  # the change runs once you commit

Customers are known by the id your app gives them (Flask-Login's user id by default). Reading costs no
Discord call: a role's status is what the customer's latest delivery of it says. The tenant API's
``/customers`` operations call the same functions. Roles are given and taken by hand with
:func:`flask_discord_roles.deliveries.assign_role` and ``remove_role`` (this module's ``assign_role`` and
``remove_role`` are deprecated aliases of them).
"""

from __future__ import annotations

import warnings

from flask_discord_roles._core import customers as _service
from flask_discord_roles._core.customers import ROLE_STATUSES, CustomerStatus, LinkedAccount, RoleStatus
from flask_discord_roles._runtime.deprecation import REMOVED_IN
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.deliveries import DeliveryInfo
from flask_discord_roles.deliveries import assign_role as _assign_role
from flask_discord_roles.deliveries import remove_role as _remove_role
from flask_discord_roles.errors import ValidationError

__all__ = [
    "ROLE_STATUSES",
    "CustomerStatus",
    "LinkedAccount",
    "RoleStatus",
    "ValidationError",
    "assign_role",
    "customer_status",
    "remove_role",
]


def customer_status(store_id: object, customer_id: str | int) -> CustomerStatus:
    """The customer's linked Discord account (or None) and where each role ever queued for them stands.

    A customer the extension has never seen is simply not linked and has no roles. Raises
    :class:`ValidationError` for an id that cannot be a customer's (empty, over 64 characters).
    """
    return _service.customer_status(get_state(), str(store_id), str(customer_id))


def assign_role(
    store_id: object,
    customer_id: str | int,
    *,
    guild_id: str,
    role_id: str,
    discord_user_id: str | None = None,
    role_name: str | None = None,
) -> DeliveryInfo:
    """Deprecated: call :func:`flask_discord_roles.deliveries.assign_role` with ``customer_id=``."""
    warnings.warn(
        f"flask_discord_roles.customers.assign_role is deprecated and goes away in {REMOVED_IN}: call "
        "deliveries.assign_role(store_id, customer_id=..., guild_id=..., role_id=...) instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return _assign_role(
        str(store_id),
        customer_id=customer_id,
        guild_id=guild_id,
        role_id=role_id,
        discord_user_id=discord_user_id,
        role_name=role_name,
    )


def remove_role(
    store_id: object,
    customer_id: str | int,
    *,
    guild_id: str,
    role_id: str,
    discord_user_id: str | None = None,
) -> DeliveryInfo:
    """Deprecated: call :func:`flask_discord_roles.deliveries.remove_role` with ``customer_id=``."""
    warnings.warn(
        f"flask_discord_roles.customers.remove_role is deprecated and goes away in {REMOVED_IN}: call "
        "deliveries.remove_role(store_id, customer_id=..., guild_id=..., role_id=...) instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return _remove_role(
        str(store_id),
        customer_id=customer_id,
        guild_id=guild_id,
        role_id=role_id,
        discord_user_id=discord_user_id,
    )
