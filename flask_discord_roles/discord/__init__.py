"""Discord's HTTP API as we use it: no Flask, no database.

The client respects rate limits and retries what is worth retrying; its errors say whether a retry can
help (:class:`TransientDiscordError`) or a person must fix something (:class:`PermanentDiscordError`).
"""

from __future__ import annotations

from flask_discord_roles.discord.client import DiscordClient
from flask_discord_roles.discord.errors import (
    BadRequest,
    DiscordConnectionError,
    DiscordError,
    DiscordServerError,
    DiscordTimeout,
    Forbidden,
    NotFound,
    PermanentDiscordError,
    RateLimited,
    TokenDisabled,
    TransientDiscordError,
    Unauthorized,
)
from flask_discord_roles.discord.role_connections import (
    RoleConnection,
    RoleConnectionMetadata,
    RoleConnectionMetadataType,
)
from flask_discord_roles.discord.routes import Route
from flask_discord_roles.discord.user_client import DiscordUserClient

__all__ = [
    "BadRequest",
    "DiscordClient",
    "DiscordConnectionError",
    "DiscordError",
    "DiscordServerError",
    "DiscordTimeout",
    "DiscordUserClient",
    "Forbidden",
    "NotFound",
    "PermanentDiscordError",
    "RateLimited",
    "RoleConnection",
    "RoleConnectionMetadata",
    "RoleConnectionMetadataType",
    "Route",
    "TokenDisabled",
    "TransientDiscordError",
    "Unauthorized",
]
