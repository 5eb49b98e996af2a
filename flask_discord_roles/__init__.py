"""flask-discord-roles: deliver Discord roles to the people who buy them."""

from __future__ import annotations

__version__ = "0.1.0"

from . import bots, customers, deliveries, diagnostics, guilds, store_settings, tokens
from .claim_codes import claim_code
from .config import ConfigurationError
from .deliveries import DeliveryInfo
from .extension import DiscordRoles, DiscordRolesState, get_state
from .orders import InvalidOrderEvent, OrderEvent
from .services.api_tokens import ApiGrant
from .signals import (
    account_linked,
    account_unlinked,
    delivery_failed,
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
    "DeliveryInfo",
    "DiscordRoles",
    "DiscordRolesState",
    "InvalidOrderEvent",
    "OrderEvent",
    "__version__",
    "account_linked",
    "account_unlinked",
    "bots",
    "claim_code",
    "customers",
    "deliveries",
    "delivery_failed",
    "diagnostics",
    "get_state",
    "guild_linked",
    "guild_unlinked",
    "guilds",
    "order_completed",
    "order_revoked",
    "role_delivered",
    "role_removed",
    "store_settings",
    "tokens",
]
