"""Adding a linked customer to the store's servers with their own token (OAuth scope ``guilds.join``).

A member is added *without* roles: Discord ignores ``roles`` for someone already there, and giving roles
through the queue keeps the provenance (did the member hold the role before we gave it) that safe removal
depends on. The rows for a server the customer is now in come due instead. Failures are reported per
server in words and never raised: joining is a courtesy on top of the link, not a condition of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.bots import client_for, get_bot
from flask_discord_roles._core.customer_tokens import account_row, usable_token
from flask_discord_roles._core.queue import make_owed_due
from flask_discord_roles._core.settings import queue_settings
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.dispatch import current_app_or_none, dispatch_after_commit
from flask_discord_roles._runtime.models import DiscordAccount, LinkedGuild, Models, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import DeliveryMode, Status
from flask_discord_roles.discord.client import DiscordClient
from flask_discord_roles.discord.errors import (
    INVALID_OAUTH_TOKEN,
    MISSING_ACCESS,
    MISSING_PERMISSIONS,
    DiscordError,
    Forbidden,
    NotFound,
    TransientDiscordError,
    Unauthorized,
)
from flask_discord_roles.discord.oauth import GUILDS_JOIN


@dataclass(frozen=True)
class GuildJoins:
    """What adding a customer to the store's servers did.

    ``joined_guild_ids``: servers the customer was added to just now; ``present_guild_ids``: servers
    they are in now (added or already there); ``problems``: one sentence per server that failed;
    ``due``: deliveries that came due because the customer is now in their server.
    """

    joined_guild_ids: list[str] = field(default_factory=list)
    present_guild_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    due: list[int] = field(default_factory=list)


def join_guilds(
    state: DiscordRolesState, store_id: str, customer_id: str, *, now: datetime | None = None
) -> GuildJoins:
    """Add the linked customer to each of the store's servers with their token (refreshed if needed).

    What :func:`link_account` does when the store wants it, for a later attempt (say, after a server was
    linked or the bot invited again). Failures are reported per server in ``problems``, never raised.
    In automatic mode the deliveries for servers the customer is now in come due after commit.
    """
    now = now or utcnow()
    row = account_row(state, store_id, customer_id)
    if row is None:
        return GuildJoins()
    automatic = queue_settings(state, store_id).delivery_mode == DeliveryMode.AUTOMATIC
    joins = join_linked_guilds(state, row, automatic, now)
    app = current_app_or_none()
    if joins.due and app is not None:
        dispatch_after_commit(state.db.session(), app, delivery_ids=joins.due)
    return joins


def join_linked_guilds(
    state: DiscordRolesState, row: DiscordAccount, automatic: bool, now: datetime
) -> GuildJoins:
    guild_model = state.models.LinkedGuild
    guilds = list(
        state.db.session.scalars(
            sa.select(guild_model).where(guild_model.store_id == row.store_id).order_by(guild_model.id)
        )
    )
    if not guilds:
        return GuildJoins()
    if GUILDS_JOIN not in (row.scopes or "").split():
        return GuildJoins(
            problems=_for_each(
                guilds,
                "this Discord authorisation does not allow adding you to servers (guilds.join was not "
                "granted). Link Discord again to be added.",
            )
        )
    client, bot_problem = _bot_client(state, row.store_id)
    if client is None:
        return GuildJoins(problems=_for_each(guilds, bot_problem))
    try:
        token = usable_token(state, row, now)
    except TransientDiscordError:
        return GuildJoins(problems=_for_each(guilds, _DISCORD_DOWN))
    if token is None:
        return GuildJoins(problems=_for_each(guilds, _GRANT_GONE))

    joins = GuildJoins()
    for index, guild in enumerate(guilds):
        problem: str | None = None
        try:
            added, token = _add_member(state, client, row, guild.guild_id, token, now)
        except _GrantGone:
            joins.problems.extend(_for_each(guilds[index:], _GRANT_GONE))
            break
        except TransientDiscordError:
            problem = _DISCORD_DOWN
        except Unauthorized:
            problem = "Discord refused the store's bot token; the store owner must save it again."
        except (Forbidden, NotFound) as error:
            problem = _refusal(error)
        except DiscordError as error:
            problem = f"Discord refused to add you ({error.message})."
        if problem is not None:
            joins.problems.append(f"{_label(guild)}: {problem}")
            continue
        if added:
            joins.joined_guild_ids.append(guild.guild_id)
        joins.present_guild_ids.append(guild.guild_id)
    if automatic and joins.present_guild_ids:
        joins.due.extend(_owed_in(state, row.store_id, row.discord_user_id, joins.present_guild_ids, now))
    return joins


class _GrantGone(Exception):
    """Discord no longer honours the customer's grant, even after a refresh."""


def _add_member(
    state: DiscordRolesState,
    client: DiscordClient,
    row: DiscordAccount,
    guild_id: str,
    token: str,
    now: datetime,
) -> tuple[bool, str]:
    """Add the customer to the server: whether they were added just now (False: already a member, which
    Discord answers 204), and the token that worked."""
    try:
        return client.add_guild_member(guild_id, row.discord_user_id, token) is not None, token
    except Forbidden as error:
        if error.code != INVALID_OAUTH_TOKEN:
            raise
    # Our expiry date said the token was good, Discord says it is not: refresh it once and try again.
    fresh = usable_token(state, row, now, force_refresh=True)
    if fresh is None:
        raise _GrantGone
    return client.add_guild_member(guild_id, row.discord_user_id, fresh) is not None, fresh


_DISCORD_DOWN = "Discord did not answer. Your account is linked; you can join the server later."


_GRANT_GONE = "your Discord authorisation is no longer valid. Link Discord again to be added."


def _refusal(error: Forbidden | NotFound) -> str:
    if error.code == INVALID_OAUTH_TOKEN:
        return _GRANT_GONE
    if isinstance(error, NotFound) or error.code == MISSING_ACCESS:
        return "the store's bot is not in this server (or cannot see it); the store owner must invite it."
    if error.code == MISSING_PERMISSIONS:
        return "the store's bot may not add members here (it needs Create Invite); ask the store owner."
    return f"Discord refused to add you ({error.message})."


def _bot_client(state: DiscordRolesState, store_id: str) -> tuple[DiscordClient | None, str]:
    """The store's bot as a client, or None and why not in words."""
    bot = get_bot(state, store_id)
    if bot is None:
        return None, "the store has no Discord bot to add you with."
    if not bot.is_enabled:
        return None, "the store's Discord bot is switched off."
    try:
        return client_for(state, bot), ""
    except DecryptionError:
        return None, "the store's Discord bot cannot be used right now (its saved token cannot be read)."


def _owed_in(
    state: DiscordRolesState, store_id: str, discord_user_id: str, guild_ids: list[str], now: datetime
) -> list[int]:
    """Grants for the user in servers they are now in come due (see :func:`.queue.owed`)."""
    return make_owed_due(state, store_id, discord_user_id, guild_ids, _joined, now)


def _joined(models: Models, now: Any) -> dict[str, Any]:
    """What an owed grant becomes when its member is found in the server."""
    model = models.Delivery
    return {
        "status": Status.PENDING,
        "next_attempt_at": now,
        # A failed row starts its attempts afresh; a pending one keeps its retry budget.
        "attempts": sa.case((model.status == Status.FAILED, 0), else_=model.attempts),
        "leased_by": None,
        "lease_expires_at": None,
        "reason_code": None,
        "reason": None,
        "updated_at": now,
    }


def _for_each(guilds: Iterable[LinkedGuild], problem: str) -> list[str]:
    return [f"{_label(guild)}: {problem}" for guild in guilds]


def _label(guild: LinkedGuild) -> str:
    return f"«{guild.name}»" if guild.name else f"Server {guild.guild_id}"
