"""Why a delivery could not be made, in a reason code a program can match and words an owner can act on.

Every code is a :class:`~flask_discord_roles.codes.ReasonCode` (the catalogue, with the docs' table).
A 50013 (missing permissions) is explained from the server's roles and the bot's member: read now, or
as read a few seconds ago (:mod:`.hierarchy`). When neither can be had (the reads were rate limited, or
Discord failed), the refusal is *not* guessed at: it is ``permissions_undiagnosed`` and looked at again
(:attr:`Failure.look_again_in`), when the role change is tried once more and, if refused, explained.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_discord_roles._runtime.hierarchy import Hierarchy, HierarchyMemo
from flask_discord_roles.codes import ReasonCode
from flask_discord_roles.discord import errors as discord_errors
from flask_discord_roles.discord.client import DiscordClient
from flask_discord_roles.discord.errors import (
    DiscordError,
    Forbidden,
    NotFound,
    RateLimited,
    TransientDiscordError,
    Unauthorized,
)
from flask_discord_roles.discord.permissions import can_assign

UNDIAGNOSED_RECHECK = 5.0
"""Seconds before an unexplained refusal is looked at again when Discord did not say when to come back."""


@dataclass(frozen=True)
class Failure:
    """A reason code and what to do about it, in plain words.

    ``look_again_in`` (seconds) is set when the failure is not yet diagnosed: the delivery waits and is
    tried again then, instead of failing with a code that might be wrong.
    """

    code: ReasonCode
    reason: str
    look_again_in: float | None = None


def describe_transient(error: TransientDiscordError) -> Failure:
    """Discord was slow, down or limiting us past the last attempt."""
    return Failure(
        ReasonCode.DISCORD_UNAVAILABLE,
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
    memo: HierarchyMemo | None = None,
) -> Failure:
    """Turn a permanent error from a role change into a :class:`Failure`.

    For a 50013 the guild's roles and the bot's own member tell the hierarchy from a missing permission;
    if they cannot be read, the failure says it is not diagnosed yet rather than guessing.
    """
    role = f"«{role_name}»" if role_name else f"role {role_id}"
    if isinstance(error, Unauthorized):
        return Failure(
            ReasonCode.TOKEN_REVOKED,
            "Discord refused the bot token (it was reset or the bot was deleted). The store's bot is "
            "switched off: paste a new token in the Discord settings, then retry failed deliveries.",
        )
    if isinstance(error, NotFound):
        if error.code == discord_errors.UNKNOWN_MEMBER:
            return Failure(
                ReasonCode.MEMBER_NOT_IN_GUILD,
                "The customer is not in the Discord server. Ask them to join it, then run /claim.",
            )
        if error.code == discord_errors.UNKNOWN_ROLE:
            return Failure(
                ReasonCode.ROLE_DELETED,
                f"The {role} no longer exists in the server. Map the package to an existing role, then "
                "retry.",
            )
        if error.code == discord_errors.UNKNOWN_GUILD:
            return _bot_not_in_guild()
        return Failure(ReasonCode.DISCORD_REJECTED, f"Discord said: {error.message}")
    if isinstance(error, Forbidden):
        if error.code == discord_errors.MISSING_ACCESS:
            return _bot_not_in_guild()
        if error.code == discord_errors.MISSING_PERMISSIONS:
            return _explain_missing_permissions(client, guild_id, role_id, role, bot_user_id, max_wait, memo)
    return Failure(ReasonCode.DISCORD_REJECTED, f"Discord refused the change: {error.message}")


def _bot_not_in_guild() -> Failure:
    return Failure(
        ReasonCode.BOT_NOT_IN_GUILD,
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
    memo: HierarchyMemo | None,
) -> Failure:
    if bot_user_id is None:  # the shared bot's id could not be read
        return _undiagnosed(role_label, UNDIAGNOSED_RECHECK)
    known = memo.get(bot_user_id, guild_id) if memo is not None else None
    if known is not None:
        explained = _explain(guild_id, role_id, role_label, known)
        # A memo that says the role could be given contradicts the refusal just received: read again.
        if explained is not None and explained.code is not ReasonCode.MISSING_PERMISSIONS:
            return explained
    try:
        # Our own pacing may hold these reads back: that is waiting, not an answer, so it is never
        # taken for one. The refusal is explained later instead.
        roles = client.get_guild_roles(guild_id, max_wait=max_wait)
        bot_member = client.get_member(guild_id, bot_user_id, max_wait=max_wait)
    except RateLimited as limited:
        return _undiagnosed(role_label, max(limited.retry_after, 0.5))
    except DiscordError:
        return _undiagnosed(role_label, UNDIAGNOSED_RECHECK)
    hierarchy = Hierarchy(roles, [str(r) for r in bot_member.get("roles", [])])
    if memo is not None:
        memo.put(bot_user_id, guild_id, hierarchy)
    explained = _explain(guild_id, role_id, role_label, hierarchy)
    if explained is None:
        return Failure(
            ReasonCode.ROLE_DELETED,
            f"The {role_label} no longer exists in the server. Map the package to an existing role, then "
            "retry.",
        )
    return explained


def _explain(guild_id: str, role_id: str, role_label: str, hierarchy: Hierarchy) -> Failure | None:
    """Why the bot may not change the role, by the hierarchy; None if the role is not in it."""
    role = next((candidate for candidate in hierarchy.roles if str(candidate["id"]) == role_id), None)
    if role is None:
        return None
    verdict = can_assign(guild_id, hierarchy.bot_role_ids, role, hierarchy.roles)
    if verdict.ok or verdict.reason_code is None or verdict.fix is None:
        # Discord refused although the roles say it may: say so, naming both possible fixes.
        return Failure(
            ReasonCode.MISSING_PERMISSIONS,
            f"Discord says the bot may not change {role_label}, although its roles look right. Check "
            "that the bot's role has Manage Roles and sits above the roles it hands out (Server Settings "
            "→ Roles), then retry.",
        )
    return Failure(ReasonCode(verdict.reason_code), verdict.fix)


def _undiagnosed(role_label: str, look_again_in: float) -> Failure:
    return Failure(
        ReasonCode.PERMISSIONS_UNDIAGNOSED,
        f"Discord refused to change {role_label} for missing permissions; the server's roles could not "
        "be read yet to tell why. It is tried again in a few seconds. If it ends failed: give the bot's "
        "role Manage Roles and drag it above the roles it hands out (Server Settings → Roles), then retry.",
        look_again_in,
    )
