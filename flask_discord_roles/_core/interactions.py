"""Answering a verified interaction for a store: knows the store and the payload, never the request.

The web layer has already checked the signature and found the store's bot. Here: an interaction
Discord delivers twice is handled once, every interaction moves the bot's counters (one UPDATE by
primary key), and each command gets a short, friendly, ephemeral answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from flask import current_app

from flask_discord_roles._core import interaction_log
from flask_discord_roles._core.claim_codes import order_of_claim_code
from flask_discord_roles._core.claim_replies import claim_answer, queue_claim_reply
from flask_discord_roles._core.claims import Listed, claim_for_member, member_deliveries
from flask_discord_roles._core.guilds import link_guild
from flask_discord_roles._core.interaction_log import QueryRecorder
from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._runtime.bot_cache import InteractionBot
from flask_discord_roles._runtime.dispatch import dispatch_after_commit
from flask_discord_roles._runtime.models import Models, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import Status
from flask_discord_roles.discord import interactions as discord
from flask_discord_roles.discord.permissions import ADMINISTRATOR, MANAGE_GUILD
from flask_discord_roles.discord.snowflake import created_at, is_snowflake

logger = logging.getLogger("flask_discord_roles.interactions")

CLAIM_BUTTON = "discord_roles:claim"
"""custom_id of /check's Claim button: pressing it is the same as running /claim."""


def already_handled() -> dict[str, Any]:
    """The answer to an interaction Discord delivered again: it was handled the first time."""
    return discord.ephemeral_message("This request was already handled.")


def find_bot(
    state: DiscordRolesState, store_id: str, *, max_age: float | None = None
) -> InteractionBot | None:
    """The store's saved bot, or None when it has none; remembered per process (see :mod:`.bot_cache`)."""

    def load() -> InteractionBot | None:
        row = state.db.session.connection().execute(_bot_query(state.models), {"store_id": store_id}).first()
        if row is None:
            return None
        bot_id, store, application_id, public_key, is_enabled = row
        return InteractionBot(bot_id, store, application_id, public_key, is_enabled)

    return state.bot_cache.get(store_id, load, max_age=max_age)


@cache
def _bot_query(models: Models) -> sa.Select[int, str, str, str, bool]:
    # Built once: every interaction runs it, and building the expression costs more than sending it.
    bot = models.StoreBot
    # A store on the platform's shared bot has no address of its own: Discord posts to the shared one.
    return sa.select(bot.id, bot.store_id, bot.application_id, bot.public_key, bot.is_enabled).where(
        bot.store_id == sa.bindparam("store_id"), bot.uses_platform_bot.is_(False)
    )


def answer_interaction(
    state: DiscordRolesState, bot: InteractionBot, payload: Mapping[str, Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """The answer to one verified interaction (PING aside), recorded so a redelivery is not handled again.

    Commands that change something run in the request's session (the caller commits): the id is
    recorded first, so a redelivery changes nothing twice. Queries (/check, /help) change nothing, so
    they are recorded and counted with their first read (on PostgreSQL, in that one statement).
    """
    now = now or utcnow()
    interaction_id = payload.get("id")
    if not isinstance(interaction_id, str):
        return already_handled()
    query = _query_for(bot, payload)
    if query is not None:
        return _answer_query(state, bot, payload, query, interaction_id, now)
    session_connection = state.db.session.connection()
    if not interaction_log.remember(session_connection, state.models, interaction_id, bot.store_id, now):
        return already_handled()
    answer = _answer(state, bot, payload)
    # Counted last: runners lock a delivery and then the bot row (its counters), so a /claim that
    # locked the bot row before its deliveries could deadlock with them.
    interaction_log.count(state.db.session.connection(), state.models, bot.id, now)
    return answer


def _query_for(bot: InteractionBot, payload: Mapping[str, Any]) -> Query | None:
    if not bot.is_enabled or payload.get("type") != discord.APPLICATION_COMMAND:
        return None
    return QUERIES.get(discord.command_name(payload) or "")


@survives_transient_db_errors  # reads and a record only: /check and /help call no Discord
def _answer_query(
    state: DiscordRolesState,
    bot: InteractionBot,
    payload: Mapping[str, Any],
    query: Query,
    interaction_id: str,
    now: datetime,
) -> dict[str, Any]:
    with state.db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # One statement, one round trip: no BEGIN and COMMIT around what changes nothing else.
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        reader = QueryRecorder(
            connection,
            state.models,
            interaction_id=interaction_id,
            store_id=bot.store_id,
            bot_id=bot.id,
            now=now,
        )
        answer = query(state, bot, payload, reader)
        first = reader.finish()
        connection.commit()
    return answer if first else already_handled()


def _answer(state: DiscordRolesState, bot: InteractionBot, payload: Mapping[str, Any]) -> dict[str, Any]:
    if not bot.is_enabled:
        return discord.ephemeral_message(
            "This store's Discord bot is not available right now. Please try again later."
        )
    kind = payload.get("type")
    if kind == discord.APPLICATION_COMMAND:
        handler = COMMANDS.get(discord.command_name(payload) or "")
        if handler is None:
            return discord.ephemeral_message("I don't know that command. Run `/help` to see what I can do.")
        return handler(state, bot, payload)
    if kind == discord.AUTOCOMPLETE:
        return discord.no_choices()
    if kind == discord.MESSAGE_COMPONENT:
        if discord.custom_id_of(payload) == CLAIM_BUTTON:
            return claim_command(state, bot, payload)
        return discord.ephemeral_message(
            "That button is from an older message and no longer works. Run `/check` for a fresh one."
        )
    return discord.ephemeral_message("I can't handle that here. Run `/help` to see what I can do.")


def help_answer(
    state: DiscordRolesState, bot: InteractionBot, payload: Mapping[str, Any], reader: QueryRecorder
) -> dict[str, Any]:
    """What each command does, and what to do when a role does not arrive."""
    return discord.ephemeral_message(
        embeds=[
            discord.embed(
                "How to get your roles",
                "Roles you buy in the store are given to you in this server.",
                fields=[
                    (
                        "/claim",
                        "Get every role you are owed here: new purchases, and ones that went missing.",
                    ),
                    ("/check", "See your pending and recent deliveries, with a button to claim."),
                    (
                        "/link code",
                        "For server managers: connect this server to a store with the code it gave you.",
                    ),
                    (
                        "A role did not arrive?",
                        "Make sure you are a member of this server, then run /claim. If it still fails, "
                        "the answer says why; the store owner can fix the bot's permissions and retry.",
                    ),
                ],
            )
        ]
    )


def claim_command(
    state: DiscordRolesState, bot: InteractionBot, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """``/claim [code]`` (and /check's Claim button): deliver what this member is owed in this server.

    When there is something to deliver, Discord gets a deferred answer at once and the executor edits
    it with the outcome once that answer has been sent; the request never waits on a role change
    (except with the inline executor, whose point is to run everything before the request is over).
    """
    guild_id = discord.guild_id_of(payload)
    user_id = discord.invoking_user_id(payload)
    if guild_id is None or user_id is None:
        return discord.ephemeral_message("Run /claim in the server where you want your roles.")
    code = discord.option_value(payload, "code")
    order_id = None
    if isinstance(code, str) and code.strip():
        if state.claim_secret is None:
            logger.warning("a /claim code was given but no claim code secret is configured")
            return discord.ephemeral_message("This store does not use claim codes. Run /claim without one.")
        order_id = order_of_claim_code(state.claim_secret, bot.store_id, code)
        if order_id is None:
            return discord.ephemeral_message(
                "That claim code is not right. Copy it exactly from your order confirmation."
            )
    now = utcnow()
    member = payload.get("member") or {}
    claimed = claim_for_member(
        state,
        bot.store_id,
        guild_id,
        user_id,
        held_role_ids={str(role) for role in member.get("roles") or ()},
        roles_seen_at=_interaction_time(payload, now),
        code_order_id=order_id,
        now=now,
    )
    if not claimed.due_ids:
        if not claimed.owns_anything and not claimed.notes:
            return discord.ephemeral_message(embeds=[_nothing_found()])
        return {"type": discord.CHANNEL_MESSAGE, "data": _ephemeral(claim_answer([], claimed.notes))}
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    dispatch_after_commit(state.db.session(), app, delivery_ids=claimed.due_ids)
    queue_claim_reply(
        state,
        app,
        store_id=bot.store_id,
        application_id=bot.application_id,
        interaction_token=str(payload["token"]),
        delivery_ids=claimed.due_ids,
        notes=claimed.notes,
        now=now,
    )
    return discord.deferred_ephemeral()


def check_command(
    state: DiscordRolesState, bot: InteractionBot, payload: Mapping[str, Any], reader: QueryRecorder
) -> dict[str, Any]:
    """``/check``: this member's pending and recent deliveries here, with a Claim button if any wait."""
    guild_id = discord.guild_id_of(payload)
    user_id = discord.invoking_user_id(payload)
    if guild_id is None or user_id is None:
        return discord.ephemeral_message("Run /check in the server where you bought roles.")
    listed = member_deliveries(reader, state.models, bot.store_id, guild_id, user_id)
    if not listed:
        return discord.ephemeral_message(embeds=[_nothing_found()])
    lines = [_check_line(row) for row in listed]
    waiting = any(row.status == Status.PENDING for row in listed)
    components = [discord.button_row(("Claim", CLAIM_BUTTON))] if waiting else []
    return discord.ephemeral_message(
        embeds=[discord.embed("Your deliveries", "\n".join(lines))], components=components
    )


def _check_line(row: Listed) -> str:
    order = f" · order {row.order_id}" if row.order_id else ""
    if row.status == Status.PENDING:
        expiry = f", claim before <t:{int(row.expires_at.timestamp())}:f>" if row.expires_at else ""
        return f"⏳ {row.role}{order}: waiting{expiry}.{_grant_expiry(row)}"
    if row.status == Status.COMPLETED:
        return f"✅ {row.role}{order}: delivered.{_grant_expiry(row)}"
    if row.status == Status.EXPIRED:
        return f"⌛ {row.role}{order}: expired. {row.reason or ''}".rstrip()
    return f"❌ {row.role}{order}: failed. {row.reason or ''}".rstrip()


def _grant_expiry(row: Listed) -> str:
    """When a subscription or fixed-term purchase ends, as a Discord timestamp (the member's own date
    format and time zone), after the seed's words for the row."""
    if row.grant_expires_at is None:
        return ""
    moment = int(row.grant_expires_at.timestamp())
    return f" Expires <t:{moment}:D> (<t:{moment}:R>)."


def _nothing_found() -> dict[str, Any]:
    return discord.embed(
        "No purchases found",
        "I found nothing bought for your Discord account in this server. If you checked out as a guest, "
        "run `/claim code:` with the code from your order confirmation, or link Discord in the store "
        "and run /claim again.",
    )


def _ephemeral(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "flags": discord.EPHEMERAL}


def _interaction_time(payload: Mapping[str, Any], fallback: datetime) -> datetime:
    """When Discord created the interaction (its id says), which is when it listed the member's roles."""
    interaction_id = payload.get("id")
    if isinstance(interaction_id, str) and is_snowflake(interaction_id):
        return min(created_at(interaction_id), fallback)
    return fallback


def link_answer(state: DiscordRolesState, bot: InteractionBot, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``/link code``: a server manager connects this server to the store that issued the code."""
    request = link_request(payload)
    if isinstance(request, dict):
        return request
    guild_id, user_id, code = request
    refusal = link_guild(state, bot.store_id, code, guild_id, user_id)
    if refusal is not None:
        return discord.ephemeral_message(refusal.value)
    return link_reply(state, bot.store_id)


def link_request(payload: Mapping[str, Any]) -> tuple[str, str, str] | dict[str, Any]:
    """``(guild_id, user_id, code)`` of a /link that may go ahead, or the answer saying why not."""
    guild_id = discord.guild_id_of(payload)
    user_id = discord.invoking_user_id(payload)
    if guild_id is None or user_id is None:
        return discord.ephemeral_message("Run /link in the server you want to connect to the store.")
    # Discord hides /link from members without Manage Server, but a server's admins can change that.
    if not discord.member_permissions(payload) & (MANAGE_GUILD | ADMINISTRATOR):
        return discord.ephemeral_message("You need the Manage Server permission to link this server.")
    code = discord.option_value(payload, "code")
    if not isinstance(code, str) or not code.strip():
        return discord.ephemeral_message(
            "Give the code from the store's Discord settings: `/link code:ABCDE-FGHJK`."
        )
    return guild_id, user_id, code


def link_reply(state: DiscordRolesState, store_id: str) -> dict[str, Any]:
    """What a server manager reads once the server is linked."""
    name = state.loaders.name_of_store(store_id)
    return discord.ephemeral_message(
        f"This server is now linked to **{name}**. Its role mappings can be set up in the store's dashboard."
    )


Command = Callable[[DiscordRolesState, InteractionBot, Mapping[str, Any]], dict[str, Any]]

COMMANDS: dict[str, Command] = {
    "claim": claim_command,
    "link": link_answer,
}
"""Slash commands that change something, by name. Their definitions for Discord are in
:mod:`..discord.commands`."""

Query = Callable[[DiscordRolesState, InteractionBot, Mapping[str, Any], QueryRecorder], dict[str, Any]]

QUERIES: dict[str, Query] = {"check": check_command, "help": help_answer}
"""Slash commands that only read: they read through the recorder, which records the interaction."""
