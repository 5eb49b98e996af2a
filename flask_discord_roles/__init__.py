"""flask-discord-roles: deliver Discord roles to the people who buy them.

The public API is what this package exports (``__all__``) and its public modules: ``backfills``,
``bots``, ``customers``, ``deliveries``, ``grants``, ``guilds``, ``linked_roles``, ``metrics``,
``reconcile``, ``store_settings``, ``tokens``, ``diagnostics``, ``checkout``, ``celery``, ``codes``,
``errors``, ``signals``, ``orders``, ``discord``, ``testing`` and ``migrations``. Modules whose names
start with ``_`` are internal and may change in any release.
"""

from __future__ import annotations

from typing import Any

from flask_discord_roles import (
    backfills,
    bots,
    customers,
    deliveries,
    diagnostics,
    grants,
    guilds,
    linked_roles,
    metrics,
    reconcile,
    store_settings,
    tokens,
)
from flask_discord_roles._extension import DiscordRoles
from flask_discord_roles._runtime import state as _state
from flask_discord_roles._runtime.api_grant import ApiGrant
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.deprecation import MovedNames
from flask_discord_roles._runtime.version import __version__
from flask_discord_roles.claim_codes import claim_code
from flask_discord_roles.deliveries import DeliveryInfo
from flask_discord_roles.errors import (
    ConfigurationError,
    Conflict,
    DiscordRolesError,
    NotFound,
    ValidationError,
)
from flask_discord_roles.orders import InvalidOrderEvent, OrderEvent
from flask_discord_roles.signals import (
    account_linked,
    account_unlinked,
    delivery_failed,
    grant_ended,
    grant_expiring,
    grant_renewed,
    guild_linked,
    guild_unlinked,
    order_completed,
    order_revoked,
    role_delivered,
    role_removed,
)

__all__ = [
    "ApiGrant",
    "ConfigurationError",
    "Conflict",
    "DeliveryInfo",
    "DiscordRoles",
    "DiscordRolesError",
    "InvalidOrderEvent",
    "NotFound",
    "OrderEvent",
    "ValidationError",
    "__version__",
    "account_linked",
    "account_unlinked",
    "backfills",
    "bots",
    "claim_code",
    "customers",
    "deliveries",
    "delivery_failed",
    "diagnostics",
    "generate_key",
    "grant_ended",
    "grant_expiring",
    "grant_renewed",
    "grants",
    "guild_linked",
    "guild_unlinked",
    "guilds",
    "linked_roles",
    "metrics",
    "order_completed",
    "order_revoked",
    "reconcile",
    "role_delivered",
    "role_removed",
    "store_settings",
    "tokens",
]


# Exported before 0.2; internal now. Reading them still works, with a warning, until 1.0.
_INTERNAL = "it is internal; use DiscordRoles and the public modules (bots, deliveries, ...)"
_MOVED = MovedNames(
    __name__,
    DiscordRolesState=(_state.DiscordRolesState, "it is internal; use DiscordRoles and the public modules"),
    get_state=(
        _state.get_state,
        "it is internal; use DiscordRoles and the public modules (bots, deliveries, ...)",
    ),
)


def __getattr__(name: str) -> Any:
    return _MOVED.get(name)
