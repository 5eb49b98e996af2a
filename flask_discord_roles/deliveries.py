"""The Python API for a store owner's dashboard: list, retry, assign, remove, stats.

Every function works on the current app, in your database session: changes are part of your transaction
and run once you commit (never if you roll back). The tenant HTTP API exposes the same calls.

    from flask_discord_roles import deliveries

    page = deliveries.list_deliveries("store-1", status="failed")
    deliveries.retry_deliveries("store-1", reason_code="member_not_in_guild")
    deliveries.assign_role("store-1", customer_id="42", guild_id=guild_id, role_id=role_id)
    db.session.commit()
"""

from __future__ import annotations

from flask_discord_roles._core import manual_changes as _manual
from flask_discord_roles._core.deliveries import (
    MAX_ID,
    MAX_PAGE_SIZE,
    SOURCES,
    STATUSES,
    DayCount,
    DeliveryNotFound,
    DeliveryPage,
    Retried,
    StoreStats,
    claim,
    deliveries_per_day,
    get_delivery,
    list_deliveries,
    retry_deliveries,
    retry_delivery,
    store_stats,
)
from flask_discord_roles._core.records import DeliveryInfo
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.errors import ValidationError

__all__ = [
    "MAX_ID",
    "MAX_PAGE_SIZE",
    "SOURCES",
    "STATUSES",
    "DayCount",
    "DeliveryInfo",
    "DeliveryNotFound",
    "DeliveryPage",
    "Retried",
    "StoreStats",
    "ValidationError",
    "assign_role",
    "claim",
    "deliveries_per_day",
    "get_delivery",
    "list_deliveries",
    "remove_role",
    "retry_deliveries",
    "retry_delivery",
    "store_stats",
]


def assign_role(
    store_id: str,
    *,
    guild_id: str,
    role_id: str,
    discord_user_id: str | None = None,
    customer_id: str | int | None = None,
    role_name: str | None = None,
) -> DeliveryInfo:
    """Give a member a role of a linked server by hand (source ``manual``); runs once you commit.

    The role goes to ``discord_user_id``, by default the linked account of ``customer_id`` (the id your
    app gives the customer); give either. ``role_name`` defaults to the name the store's mappings know.
    Raises :class:`ValidationError` for a malformed id, a server not linked to the store, or no Discord
    user to give the role to. The role gate still decides when the row runs.
    """
    return _manual.assign_role(
        get_state(),
        store_id,
        guild_id=guild_id,
        role_id=role_id,
        discord_user_id=discord_user_id,
        customer_id=None if customer_id is None else str(customer_id),
        role_name=role_name,
    )


def remove_role(
    store_id: str,
    *,
    guild_id: str,
    role_id: str,
    discord_user_id: str | None = None,
    customer_id: str | int | None = None,
    role_name: str | None = None,
) -> DeliveryInfo:
    """Take a role of a linked server away by hand, whoever granted it; runs once you commit.

    Taken from ``discord_user_id``, by default the linked account of ``customer_id``, else whoever that
    customer's latest delivery of the role went to. It also ends our grants of that role to that person,
    so a later ``/claim`` does not give it back. Raises :class:`ValidationError` as :func:`assign_role`
    does.
    """
    return _manual.remove_role(
        get_state(),
        store_id,
        guild_id=guild_id,
        role_id=role_id,
        discord_user_id=discord_user_id,
        customer_id=None if customer_id is None else str(customer_id),
        role_name=role_name,
    )
