"""The exceptions flask-discord-roles raises for your code to catch, all under :class:`DiscordRolesError`.

Catch :class:`NotFound` for "no such delivery / server / mapping / bot" and :class:`ValidationError`
for refused input (``errors`` names each field). Errors from Discord itself are in
:mod:`flask_discord_roles.discord.errors`.
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "DiscordRolesError", "NotFound", "ValidationError"]


class DiscordRolesError(Exception):
    """The root of every error this library raises on purpose."""


class ConfigurationError(DiscordRolesError, RuntimeError):
    """A ``DISCORD_ROLES_*`` setting is missing or malformed; the message says which and how to fix it."""


class ValidationError(DiscordRolesError, ValueError):
    """Input was refused; ``errors`` maps each field to what is wrong with it, in plain words."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        fields = ", ".join(sorted(errors))
        super().__init__(f"invalid input: {fields}")


class NotFound(DiscordRolesError, LookupError):
    """What was asked for does not exist for this store (a delivery, a linked server, a mapping, a bot)."""
