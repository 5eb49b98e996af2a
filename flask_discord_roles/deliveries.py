"""The Python API for a store owner's dashboard: list, retry, assign, remove, stats.

Every function works on the current app, in your database session: changes are part of your transaction
and run once you commit (never if you roll back). The tenant HTTP API exposes the same calls.

    from flask_discord_roles import deliveries

    page = deliveries.list_deliveries("store-1", status="failed")
    deliveries.retry_deliveries("store-1", reason_code="member_not_in_guild")
    db.session.commit()
"""

from __future__ import annotations

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
    assign_role,
    claim,
    deliveries_per_day,
    get_delivery,
    list_deliveries,
    remove_role,
    retry_deliveries,
    retry_delivery,
    store_stats,
)
from flask_discord_roles._core.records import DeliveryInfo
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
