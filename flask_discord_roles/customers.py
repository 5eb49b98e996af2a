"""A customer's Discord link and roles, and roles given or taken by hand, for the host's own dashboard
(inside an app context)::

    from flask_discord_roles import customers

    status = customers.customer_status(store.id, customer.id)
    customers.assign_role(store.id, customer.id, guild_id=guild_id, role_id=role_id)
    db.session.commit()  # the change runs once you commit

Customers are known by the id your app gives them (Flask-Login's user id by default). Reading costs no
Discord call: a role's status is what the customer's latest delivery of it says. The tenant API's
``/customers`` operations call the same functions.
"""

from __future__ import annotations

from flask_discord_roles._core import customers as _service
from flask_discord_roles._core.customers import ROLE_STATUSES, CustomerStatus, LinkedAccount, RoleStatus
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.deliveries import DeliveryInfo
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
    """Give the customer a role of a linked server by hand (source ``manual``); runs once you commit.

    The role goes to ``discord_user_id``, by default the customer's linked account. Raises
    :class:`ValidationError` for a malformed id, a server not linked to the store, or a customer with
    no linked account and no ``discord_user_id``.
    """
    return _service.assign_role(
        get_state(),
        str(store_id),
        str(customer_id),
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
    """Take a role from the customer by hand, whoever granted it; runs once you commit.

    Taken from ``discord_user_id``, by default the customer's linked account, else whoever the
    customer's latest delivery of the role went to. Raises :class:`ValidationError` as
    :func:`assign_role` does.
    """
    return _service.remove_role(
        get_state(),
        str(store_id),
        str(customer_id),
        guild_id=guild_id,
        role_id=role_id,
        discord_user_id=discord_user_id,
    )
