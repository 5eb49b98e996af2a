"""flask-discord-roles: deliver Discord roles to the people who buy them."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import ConfigurationError
from .extension import DiscordRoles, DiscordRolesState, get_state
from .orders import InvalidOrderEvent, OrderEvent
from .signals import order_completed

__all__ = [
    "ConfigurationError",
    "DiscordRoles",
    "DiscordRolesState",
    "InvalidOrderEvent",
    "OrderEvent",
    "__version__",
    "get_state",
    "order_completed",
]
