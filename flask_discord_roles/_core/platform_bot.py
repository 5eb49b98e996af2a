"""The platform's shared bot: one Discord application for every store that has no bot of its own.

Discord posts its interactions to ``DISCORD_ROLES_INTERACTIONS_PATH`` itself, signed with the shared
application's key. The store is the one a server manager linked the server to with ``/link`` (the link
code says which store); from then on that store has a bot row marked ``uses_platform_bot``, which holds
its counters and its on/off switch, and through which runners deliver with ``DISCORD_ROLES_BOT_TOKEN``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core import interaction_log
from flask_discord_roles._core.guilds import LinkRefusal, link_guild, store_of_link_code
from flask_discord_roles._core.interactions import (
    already_handled,
    answer_interaction,
    link_reply,
    link_request,
)
from flask_discord_roles._runtime.bot_cache import InteractionBot
from flask_discord_roles._runtime.dialects import supported_insert
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.discord import interactions as discord

NOT_LINKED = (
    "This server is not linked to a store yet. A server manager can run `/link` with the code from the "
    "store's Discord settings."
)
SEVERAL_STORES = (
    "This server is linked to more than one store, so I can't tell which one you mean. Ask the store "
    "owner which store's own bot to use."
)
OWN_BOT = "That store has a bot of its own: run /link with that bot instead."


def answer_platform_interaction(
    state: DiscordRolesState, payload: Mapping[str, Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """The answer to a verified interaction (PING aside) sent to the shared bot."""
    now = now or utcnow()
    if payload.get("type") == discord.APPLICATION_COMMAND and discord.command_name(payload) == "link":
        return _link(state, payload, now)
    guild_id = discord.guild_id_of(payload)
    if guild_id is None:
        return discord.ephemeral_message("Use me in a store's Discord server.")
    bots = _bots_in_guild(state, guild_id)
    if not bots:
        return discord.ephemeral_message(NOT_LINKED)
    if len(bots) > 1:
        return discord.ephemeral_message(SEVERAL_STORES)
    return answer_interaction(state, bots[0], payload, now=now)


def _bots_in_guild(state: DiscordRolesState, guild_id: str) -> list[InteractionBot]:
    """The shared-bot rows of the stores this server is linked to."""
    bot, link = state.models.StoreBot, state.models.LinkedGuild
    settings = state.settings
    assert settings.platform_application_id is not None  # the route answers only when configured
    assert settings.platform_public_key is not None
    rows = state.db.session.connection().execute(
        sa.select(bot.id, bot.store_id, bot.is_enabled)
        .join(link, link.store_id == bot.store_id)
        .where(link.guild_id == guild_id, bot.uses_platform_bot.is_(True))
        .limit(2)
    )
    return [
        InteractionBot(
            bot_id, store_id, settings.platform_application_id, settings.platform_public_key, is_enabled
        )
        for bot_id, store_id, is_enabled in rows
    ]


def _link(state: DiscordRolesState, payload: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """``/link code`` on the shared bot: the code names the store; linking gives it a shared-bot row."""
    request = link_request(payload)
    if isinstance(request, dict):
        return request  # why it cannot be a link, in words
    guild_id, user_id, code = request
    store_id = store_of_link_code(state, code)
    if store_id is None:
        return discord.ephemeral_message(LinkRefusal.UNKNOWN.value)
    bot = state.models.StoreBot
    own = state.db.session.connection().scalar(
        sa.select(bot.uses_platform_bot).where(bot.store_id == store_id)
    )
    if own is False:
        return discord.ephemeral_message(OWN_BOT)
    interaction_id = str(payload.get("id"))
    connection = state.db.session.connection()
    if not interaction_log.remember(connection, state.models, interaction_id, store_id, now):
        return already_handled()
    refusal = link_guild(state, store_id, code, guild_id, user_id, now=now)
    if refusal is not None:
        return discord.ephemeral_message(refusal.value)
    bot_id = _ensure_shared_bot_row(state, store_id, now)
    interaction_log.count(connection, state.models, bot_id, now)
    return link_reply(state, store_id)


def _ensure_shared_bot_row(state: DiscordRolesState, store_id: str, now: datetime) -> int:
    """The store's shared-bot row, created on its first link; its id."""
    settings = state.settings
    assert settings.platform_application_id is not None  # the route answers only when configured
    assert settings.platform_public_key is not None
    assert state.platform_token is not None
    table = state.models.StoreBot.__table__  # type: ignore[attr-defined]
    connection = state.db.session.connection()
    values = {
        "store_id": store_id,
        "application_id": settings.platform_application_id,
        "public_key": settings.platform_public_key,
        # Kept for the row's shape; runners use the configured token, so rotating it needs no re-save.
        "token_ciphertext": state.cipher.encrypt(state.platform_token),
        "uses_platform_bot": True,
        "is_enabled": True,
        "slash_commands_registered": True,
        "created_at": now,
        "updated_at": now,
    }
    insert = supported_insert(connection.dialect.name)
    connection.execute(insert(table).values(values).on_conflict_do_nothing(index_elements=["store_id"]))
    return int(connection.execute(sa.select(table.c.id).where(table.c.store_id == store_id)).scalar_one())
