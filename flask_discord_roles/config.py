"""Every ``DISCORD_ROLES_*`` setting: its default, its validation, and the typed view services read.

Settings are checked once, at ``init_app``, so a mistake fails the app's start-up with a message naming the
key and the fix, instead of a 500 inside some later request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .crypto import EncryptionKeyError, TokenCipher, generate_key, parse_keys

DEFAULTS: dict[str, Any] = {
    # Fernet keys, newest first (list, or text separated by commas/spaces). Required unless TESTING.
    "DISCORD_ROLES_ENCRYPTION_KEYS": None,
    # Discord's REST API; tests and the demo point this at FakeDiscord.
    "DISCORD_ROLES_API_BASE_URL": "https://discord.com/api/v10",
    # Seconds to wait for Discord to accept a connection and to answer.
    "DISCORD_ROLES_HTTP_TIMEOUT": 10.0,
    # Retries of one REST call on 5xx, timeouts and connection errors before it counts as failed.
    "DISCORD_ROLES_HTTP_MAX_RETRIES": 5,
    # Discord's global limit per bot: requests per DISCORD_ROLES_GLOBAL_RATE_PERIOD seconds.
    "DISCORD_ROLES_GLOBAL_RATE_LIMIT": 50,
    "DISCORD_ROLES_GLOBAL_RATE_PERIOD": 1.0,
    # Discord asks every bot to identify itself this way.
    "DISCORD_ROLES_USER_AGENT": (
        "DiscordBot (https://github.com/flask-discord-roles/flask-discord-roles, {version})"
    ),
    # Add our Alembic branch to Flask-Migrate's version locations when Flask-Migrate is set up.
    "DISCORD_ROLES_REGISTER_MIGRATIONS": True,
}


class ConfigurationError(RuntimeError):
    """A ``DISCORD_ROLES_*`` setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    """The validated settings of one app. Holds no secrets in its repr."""

    api_base_url: str
    http_timeout: float
    http_max_retries: int
    global_rate_limit: int
    global_rate_period: float
    user_agent: str
    register_migrations: bool
    ephemeral_encryption_key: bool


def _positive_number(config: Mapping[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    value = config[key]
    if isinstance(value, bool):
        raise ConfigurationError(f"{key} must be a positive number, got {value!r}")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a positive number, got {value!r}") from None
    if number <= 0:
        raise ConfigurationError(f"{key} must be a positive number, got {value!r}")
    return number


def _non_negative_int(config: Mapping[str, Any], key: str) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigurationError(f"{key} must be a whole number ≥ 0, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{key} must be a whole number ≥ 0, got {value!r}") from None
    if number < 0:
        raise ConfigurationError(f"{key} must be a whole number ≥ 0, got {value!r}")
    return number


def _http_url(config: Mapping[str, Any], key: str) -> str:
    value = config[key]
    parts = urlsplit(str(value)) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{key} must be an http(s) URL such as https://discord.com/api/v10, got {value!r}"
        )
    return str(value).rstrip("/")


def build_cipher(config: Mapping[str, Any], *, testing: bool) -> tuple[TokenCipher, bool]:
    """Make the cipher from DISCORD_ROLES_ENCRYPTION_KEYS; in testing, a throwaway key if none is set.

    Returns the cipher and whether its key is a throwaway one.
    """
    key = "DISCORD_ROLES_ENCRYPTION_KEYS"
    raw = config.get(key)
    if raw is not None and not isinstance(raw, str | list | tuple):
        raise ConfigurationError(f"{key} must be a list of keys or comma-separated text")
    keys = parse_keys(raw)
    if not keys:
        if testing:
            return TokenCipher([generate_key()]), True
        raise ConfigurationError(
            f"{key} is not set. Bot and OAuth tokens are encrypted at rest and need a key: run "
            '`flask discord-roles generate-key` (or python -c "from cryptography.fernet import '
            'Fernet; print(Fernet.generate_key().decode())") and set '
            f"{key}=<that key> in the app's config or environment."
        )
    try:
        return TokenCipher(keys), False
    except EncryptionKeyError as exc:
        raise ConfigurationError(str(exc)) from None


def load_settings(config: Mapping[str, Any], *, version: str, ephemeral_key: bool) -> Settings:
    """Validate the non-secret settings (defaults must already be applied)."""
    user_agent = config["DISCORD_ROLES_USER_AGENT"]
    if not isinstance(user_agent, str) or not user_agent.strip():
        raise ConfigurationError("DISCORD_ROLES_USER_AGENT must be non-empty text")
    return Settings(
        api_base_url=_http_url(config, "DISCORD_ROLES_API_BASE_URL"),
        http_timeout=_positive_number(config, "DISCORD_ROLES_HTTP_TIMEOUT", float),
        http_max_retries=_non_negative_int(config, "DISCORD_ROLES_HTTP_MAX_RETRIES"),
        global_rate_limit=_positive_number(config, "DISCORD_ROLES_GLOBAL_RATE_LIMIT", int),
        global_rate_period=_positive_number(config, "DISCORD_ROLES_GLOBAL_RATE_PERIOD", float),
        user_agent=user_agent.replace("{version}", version),
        register_migrations=bool(config["DISCORD_ROLES_REGISTER_MIGRATIONS"]),
        ephemeral_encryption_key=ephemeral_key,
    )
