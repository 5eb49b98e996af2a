"""flask-discord-roles: deliver Discord roles to the people who buy them."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import ConfigurationError
from .extension import DiscordRoles, DiscordRolesState, get_state

__all__ = ["ConfigurationError", "DiscordRoles", "DiscordRolesState", "__version__", "get_state"]
