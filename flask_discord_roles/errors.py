"""The exceptions flask-discord-roles raises for your code to catch, all under :class:`DiscordRolesError`.

Catch :class:`NotFound` for "no such delivery / server / mapping / bot", :class:`ValidationError`
for refused input (``errors`` names each field) and :class:`Conflict` for a change that clashes with what
exists. Each error also keeps the built-in base it always had (``DeliveryNotFound`` is a
:class:`LookupError`, ``InvalidOrderEvent`` a :class:`ValueError`, ...), so older ``except`` clauses
still work. Errors from Discord itself are in :mod:`flask_discord_roles.discord.errors`.

The family, where each member is raised and exported:

- :class:`NotFound`: ``deliveries.DeliveryNotFound``, ``guilds.GuildNotLinked``,
  ``guilds.MappingNotFound``, ``bots.BotNotConfigured``, ``grants.GrantNotFound``
- :class:`ValidationError`: refused input, from every module
- :class:`Conflict`: ``guilds.DuplicateMapping``; ``AccountTaken`` (account linking)
- :class:`ConfigurationError`: a bad setting, ``claim_codes.ClaimCodeSecretMissing``,
  ``EncryptionKeyError`` (a malformed ``DISCORD_ROLES_ENCRYPTION_KEYS``)
- :class:`DiscordRolesError` itself: ``guilds.BotUnavailable`` (the store's bot cannot look at the
  server), ``InvalidOrderEvent`` (an order signal we cannot use), ``DecryptionError`` (a stored secret
  no configured key opens), ``migrations.MigrationError`` (our tables cannot be migrated as asked)
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "Conflict", "DiscordRolesError", "NotFound", "ValidationError"]


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


class Conflict(DiscordRolesError):
    """The change clashes with what exists (the mapping is already there, the Discord account is linked
    to another customer); nothing was changed."""
