"""Discord ids (snowflakes) and the URLs built from them."""

from __future__ import annotations

from datetime import UTC, datetime

DISCORD_EPOCH_MS = 1420070400000
CDN = "https://cdn.discordapp.com"
_MAX = 2**64 - 1


def is_snowflake(value: str) -> bool:
    """A decimal unsigned 64-bit id as Discord sends it (17 to 20 digits today)."""
    return value.isascii() and value.isdigit() and 17 <= len(value) <= 20 and int(value) <= _MAX


def created_at(snowflake: str) -> datetime:
    """When the thing with this id was created."""
    return datetime.fromtimestamp(((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)


def default_avatar_url(user_id: str) -> str:
    """The avatar Discord shows for a user who has not set one (new username system)."""
    return f"{CDN}/embed/avatars/{(int(user_id) >> 22) % 6}.png"


def avatar_url(user_id: str, avatar: str | None) -> str:
    """The user's avatar (animated ones as GIF), or Discord's default one for users without one."""
    if not avatar:
        return default_avatar_url(user_id)
    extension = "gif" if avatar.startswith("a_") else "png"
    return f"{CDN}/avatars/{user_id}/{avatar}.{extension}"
