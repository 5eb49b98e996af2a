"""Why a delivery could not be made, in a reason code a program can match and words an owner can act on.

Discord's answers are turned into one of these codes:

``role_above_bot``        the mapped role sits at or above the bot's highest role
``missing_manage_roles``  the bot's roles lack Manage Roles
``managed_role``          the role belongs to an integration (bot, boosts, subscription)
``missing_permissions``   Discord said 50013 and the roles we could read do not say why
``role_deleted``          the mapped role no longer exists
``member_not_in_guild``   the customer is not (or no longer) in the server
``bot_not_in_guild``      the bot was removed from the server or cannot see it
``token_revoked``         Discord refused the bot token: the store's bot is switched off until saved again
``discord_rejected``      any other refusal (the reason quotes Discord)
``discord_unavailable``   5xx, timeouts or rate limits outlasted every attempt
"""

from __future__ import annotations

from dataclasses import dataclass

from ..discord import errors as discord_errors
from ..discord.client import DiscordClient
from ..discord.errors import DiscordError, Forbidden, NotFound, TransientDiscordError, Unauthorized
from ..discord.permissions import can_assign


@dataclass(frozen=True)
class Failure:
    """A reason code and what to do about it, in plain words."""

    code: str
    reason: str


def describe_transient(error: TransientDiscordError) -> Failure:
    """Discord was slow, down or limiting us past the last attempt."""
    return Failure(
        "discord_unavailable",
        f"Discord kept failing ({error.message}). Nothing is wrong with your setup: retry the delivery "
        "later.",
    )


def diagnose(
    error: DiscordError,
    *,
    client: DiscordClient,
    guild_id: str,
    role_id: str,
    role_name: str | None,
    bot_user_id: str | None,
    max_wait: float,
) -> Failure:
    """Turn a permanent error from a role change into a :class:`Failure`.

    For a 50013 the guild's roles and the bot's own member are read to tell the hierarchy from a missing
    permission; if those reads fail too, the answer stays general rather than guessing.
    """
    role = f"«{role_name}»" if role_name else f"role {role_id}"
    if isinstance(error, Unauthorized):
        return Failure(
            "token_revoked",
            "Discord refused the bot token (it was reset or the bot was deleted). The store's bot is "
            "switched off: paste a new token in the Discord settings, then retry failed deliveries.",
        )
    if isinstance(error, NotFound):
        if error.code == discord_errors.UNKNOWN_MEMBER:
            return Failure(
                "member_not_in_guild",
                "The customer is not in the Discord server. Ask them to join it, then run /claim.",
            )
        if error.code == discord_errors.UNKNOWN_ROLE:
            return Failure(
                "role_deleted",
                f"The {role} no longer exists in the server. Map the package to an existing role, then "
                "retry.",
            )
        if error.code == discord_errors.UNKNOWN_GUILD:
            return _bot_not_in_guild()
        return Failure("discord_rejected", f"Discord said: {error.message}")
    if isinstance(error, Forbidden):
        if error.code == discord_errors.MISSING_ACCESS:
            return _bot_not_in_guild()
        if error.code == discord_errors.MISSING_PERMISSIONS:
            return _explain_missing_permissions(client, guild_id, role_id, role, bot_user_id, max_wait)
    return Failure("discord_rejected", f"Discord refused the change: {error.message}")


def _bot_not_in_guild() -> Failure:
    return Failure(
        "bot_not_in_guild",
        "The bot is not in the Discord server any more (or cannot see it). Invite it again with its "
        "invite link, keeping the Manage Roles permission, then retry.",
    )


def _explain_missing_permissions(
    client: DiscordClient,
    guild_id: str,
    role_id: str,
    role_label: str,
    bot_user_id: str | None,
    max_wait: float,
) -> Failure:
    general = Failure(
        "missing_permissions",
        f"Discord says the bot may not change {role_label}. Give the bot's role Manage Roles and drag it "
        "above the roles it hands out (Server Settings → Roles), then retry.",
    )
    if bot_user_id is None:
        return general
    try:
        roles = client.get_guild_roles(guild_id, max_wait=max_wait)
        bot_member = client.get_member(guild_id, bot_user_id, max_wait=max_wait)
    except DiscordError:
        return general
    role = next((candidate for candidate in roles if str(candidate["id"]) == role_id), None)
    if role is None:
        return Failure(
            "role_deleted",
            f"The {role_label} no longer exists in the server. Map the package to an existing role, then "
            "retry.",
        )
    verdict = can_assign(guild_id, [str(r) for r in bot_member.get("roles", [])], role, roles)
    if verdict.ok or verdict.reason_code is None or verdict.fix is None:
        return general
    return Failure(verdict.reason_code, verdict.fix)
