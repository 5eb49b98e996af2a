"""Answering a verified interaction for a store: knows the store and the payload, never the request.

The web layer has already checked the signature and found the store's bot. Here: an interaction
Discord delivers twice is handled once, every interaction moves the bot's counters (one UPDATE by
primary key), and each command gets a short, friendly, ephemeral answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..discord import interactions as discord
from ..discord.permissions import ADMINISTRATOR, MANAGE_GUILD
from ..extension import DiscordRolesState
from ..models import utcnow
from .guilds import link_guild

INTERACTION_MEMORY = timedelta(days=1)
"""How long an interaction id is remembered; Discord redelivers within seconds, never a day later."""


@dataclass(frozen=True)
class InteractionBot:
    """The store's bot as an interaction needs it: who it is and whether it may answer."""

    id: int
    store_id: str
    application_id: str
    public_key: str
    is_enabled: bool


def find_bot(state: DiscordRolesState, store_id: str) -> InteractionBot | None:
    """The store's saved bot, or None when it has none."""
    bot = state.models.StoreBot
    row = (
        state.db.session.connection()
        .execute(
            sa.select(bot.id, bot.store_id, bot.application_id, bot.public_key, bot.is_enabled).where(
                bot.store_id == store_id
            )
        )
        .first()
    )
    return InteractionBot(*row) if row is not None else None


def answer_interaction(
    state: DiscordRolesState, bot: InteractionBot, payload: Mapping[str, Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """The answer to one verified interaction (PING aside), recorded so a redelivery is not handled again.

    Runs in the request's session; the caller commits.
    """
    now = now or utcnow()
    interaction_id = payload.get("id")
    if not isinstance(interaction_id, str) or not _first_delivery(state, interaction_id, bot.store_id, now):
        return discord.ephemeral_message("This request was already handled.")
    _count(state, bot, now)
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
        return discord.ephemeral_message(
            "That button is from an older message and no longer works. Run `/check` for a fresh one."
        )
    return discord.ephemeral_message("I can't handle that here. Run `/help` to see what I can do.")


def help_answer(state: DiscordRolesState, bot: InteractionBot, payload: Mapping[str, Any]) -> dict[str, Any]:
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


def link_answer(state: DiscordRolesState, bot: InteractionBot, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``/link code``: a server manager connects this server to the store that issued the code."""
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
    refusal = link_guild(state, bot.store_id, code, guild_id, user_id)
    if refusal is not None:
        return discord.ephemeral_message(refusal.value)
    name = state.loaders.name_of_store(bot.store_id)
    return discord.ephemeral_message(
        f"This server is now linked to **{name}**. Its role mappings can be set up in the store's dashboard."
    )


Command = Callable[[DiscordRolesState, InteractionBot, Mapping[str, Any]], dict[str, Any]]

COMMANDS: dict[str, Command] = {"help": help_answer, "link": link_answer}
"""Slash commands by name. Their definitions for Discord live with them, in one place."""


def _first_delivery(state: DiscordRolesState, interaction_id: str, store_id: str, now: datetime) -> bool:
    """Record ``interaction_id``; False if it was recorded before (Discord delivered it again)."""
    table = state.models.ProcessedInteraction.__table__  # type: ignore[attr-defined]
    connection = state.db.session.connection()
    row = {"interaction_id": interaction_id, "store_id": store_id, "received_at": now}
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(table).values(row).on_conflict_do_nothing(index_elements=["interaction_id"])
        return bool(connection.execute(statement.returning(table.c.interaction_id)).first())
    seen = connection.scalar(
        sa.select(table.c.interaction_id).where(table.c.interaction_id == interaction_id)
    )
    if seen is not None:
        return False
    connection.execute(sa.insert(table).values(row))
    return True


def _count(state: DiscordRolesState, bot: InteractionBot, now: datetime) -> None:
    model = state.models.StoreBot
    state.db.session.connection().execute(
        sa.update(model)
        .where(model.id == bot.id)
        # updated_at is the bot's settings' time: a command run by a customer leaves it alone.
        .values(
            total_interactions=model.total_interactions + 1,
            last_interaction_at=now,
            updated_at=model.updated_at,
        )
    )


def forget_old_interactions(
    state: DiscordRolesState, engine: sa.Engine, *, now: datetime | None = None
) -> int:
    """Delete remembered interaction ids older than :data:`INTERACTION_MEMORY`; returns how many."""
    table = state.models.ProcessedInteraction.__table__  # type: ignore[attr-defined]
    cutoff = (now or utcnow()) - INTERACTION_MEMORY
    with engine.begin() as connection:
        result = connection.execute(sa.delete(table).where(table.c.received_at < cutoff))
        return int(result.rowcount)
