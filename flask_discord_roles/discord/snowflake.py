"""Discord ids (snowflakes) and the URLs built from them."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

__all__ = [
    "CDN",
    "DISCORD_EPOCH_MS",
    "avatar_url",
    "cdn_for",
    "created_at",
    "default_avatar_url",
    "icon_url",
    "is_snowflake",
]

DISCORD_EPOCH_MS = 1420070400000
CDN = "https://cdn.discordapp.com"
_MAX = 2**64 - 1


def is_snowflake(value: str) -> bool:
    """A decimal unsigned 64-bit id as Discord sends it (17 to 20 digits today)."""
    return value.isascii() and value.isdigit() and 17 <= len(value) <= 20 and int(value) <= _MAX


def created_at(snowflake: str) -> datetime:
    """When the thing with this id was created."""
    return datetime.fromtimestamp(((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)


def cdn_for(api_base_url: str) -> str:
    """Where images are for an API root: Discord's CDN for discord.com, else the API's own host (so a
    FakeDiscord in tests and the demo serves them too)."""
    parts = urlsplit(api_base_url)
    host = parts.hostname or ""
    if host == "discord.com" or host.endswith(".discord.com"):
        return CDN
    return f"{parts.scheme}://{parts.netloc}"


def default_avatar_url(user_id: str, cdn: str = CDN) -> str:
    """The avatar Discord shows for a user who has not set one (new username system)."""
    return f"{cdn}/embed/avatars/{(int(user_id) >> 22) % 6}.png"


def avatar_url(user_id: str, avatar: str | None, cdn: str = CDN) -> str:
    """The user's avatar (animated ones as GIF), or Discord's default one for users without one."""
    if not avatar:
        return default_avatar_url(user_id, cdn)
    extension = "gif" if avatar.startswith("a_") else "png"
    return f"{cdn}/avatars/{user_id}/{avatar}.{extension}"


def icon_url(guild_id: str, icon: str | None, cdn: str = CDN) -> str | None:
    """A server's icon (animated ones as GIF); None for a server without one."""
    if not icon:
        return None
    extension = "gif" if icon.startswith("a_") else "png"
    return f"{cdn}/icons/{guild_id}/{icon}.{extension}"
