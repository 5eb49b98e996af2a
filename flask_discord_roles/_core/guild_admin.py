"""What a store owner does with the servers linked to the store: list them with what Discord says about
each (cached), read a server's roles with whether the bot can give each, and unlink a server.

Unlinking never touches Discord: the roles members already hold stay theirs. What would have happened
next in that server stops, visibly: its mappings go, its pending deliveries fail with ``guild_unlinked``
(relinking does not revive them: see :mod:`.role_gate`), and purchase notifications stop unless their
channel is known to be in another linked server.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.bots import client_for, get_bot, invite_url
from flask_discord_roles._core.role_gate import GUILD_UNLINKED, REFUSALS
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.dispatch import current_app_or_none, send_after_commit
from flask_discord_roles._runtime.models import LinkedGuild, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import ReasonCode, SendStatus, Status
from flask_discord_roles.discord.client import DiscordClient
from flask_discord_roles.discord.errors import (
    DiscordError,
    Forbidden,
    TransientDiscordError,
    Unauthorized,
)
from flask_discord_roles.discord.errors import NotFound as DiscordNotFound
from flask_discord_roles.discord.permissions import can_assign, role_sort_key
from flask_discord_roles.discord.snowflake import icon_url
from flask_discord_roles.errors import DiscordRolesError, NotFound
from flask_discord_roles.signals import guild_unlinked

logger = logging.getLogger("flask_discord_roles")

UNLINKED_REASON = REFUSALS[GUILD_UNLINKED]
NOTIFICATIONS_UNLINKED = "The notification channel's server was unlinked from the store."


class GuildNotLinked(NotFound):
    """The server is not linked to the store."""


class BotUnavailable(DiscordRolesError):
    """The store's bot cannot look at the server; ``fix`` says in words what the store owner can do."""

    def __init__(self, reason_code: ReasonCode, fix: str) -> None:
        super().__init__(fix)
        self.reason_code = reason_code
        self.fix = fix


@dataclass(frozen=True)
class GuildSummary:
    """A linked server as a listing shows it; Discord's details are None when never read."""

    guild_id: str
    name: str | None
    icon_url: str | None
    member_count: int | None
    linked_at: datetime
    # None when nobody could ask Discord (it failed, or the bot's token is unusable).
    bot_in_guild: bool | None


@dataclass(frozen=True)
class GuildRole:
    """One role of a server, and whether the store's bot can give and take it."""

    id: str
    name: str
    position: int
    color: int
    managed: bool
    assignable: bool
    reason_code: str | None
    fix: str | None


@dataclass(frozen=True)
class Unlinked:
    """What unlinking a server changed, and what it could not find out."""

    guild_id: str
    mappings_deleted: int
    deliveries_stopped: int
    notifications_stopped: bool
    # Why the notification channel's server could not be learned (notifications were left alone).
    notifications_unchecked: str | None


@dataclass(frozen=True)
class BotAccess:
    """The store's bot as a Discord client, with what identifies it in a server."""

    client: DiscordClient
    application_id: str
    saved_user_id: str | None
    uses_platform_bot: bool


def get_link(state: DiscordRolesState, store_id: str, guild_id: str) -> LinkedGuild | None:
    model = state.models.LinkedGuild
    return state.db.session.scalar(
        sa.select(model).where(model.store_id == store_id, model.guild_id == guild_id)
    )


def require_link(state: DiscordRolesState, store_id: str, guild_id: str) -> LinkedGuild:
    link = get_link(state, store_id, guild_id)
    if link is None:
        raise GuildNotLinked(guild_id)
    return link


# -- the bot ----------------------------------------------------------------------------------------


def bot_access(state: DiscordRolesState, store_id: str) -> BotAccess:
    """A client talking as the store's bot (its own or the platform's); :class:`BotUnavailable` if none."""
    bot = get_bot(state, store_id)
    if bot is None:
        raise BotUnavailable(
            ReasonCode.NO_BOT,
            "This store has no Discord bot. Save the store's bot and invite it to the server with "
            "its invite link.",
        )
    try:
        client = client_for(state, bot)
    except DecryptionError:
        raise BotUnavailable(
            ReasonCode.TOKEN_UNREADABLE,
            "The bot's saved token cannot be decrypted. Save the bot token again.",
        ) from None
    return BotAccess(client, bot.application_id, bot.bot_user_id, bot.uses_platform_bot)


def bot_user_id(state: DiscordRolesState, access: BotAccess) -> str:
    """The bot's user id (not its application id): saved with a store's own bot; the shared bot's is
    asked of Discord once per process. Lets a :class:`DiscordError` through."""
    if access.saved_user_id is not None:
        return access.saved_user_id
    if access.uses_platform_bot and state.platform_user_id is not None:
        return state.platform_user_id
    user_id = str(access.client.get_current_user()["id"])
    if access.uses_platform_bot:
        state.platform_user_id = user_id
    return user_id


def _not_in_guild(access: BotAccess, guild_id: str) -> BotUnavailable:
    return BotUnavailable(
        ReasonCode.BOT_NOT_IN_GUILD,
        "The store's bot is not in this server. Invite it with Manage Roles: "
        f"{invite_url(access.application_id, guild_id)}",
    )


def _token_refused() -> BotUnavailable:
    return BotUnavailable(
        ReasonCode.TOKEN_REVOKED,
        "Discord refused the bot's token. Reset it on the Bot page and save it again.",
    )


# -- listing ----------------------------------------------------------------------------------------


def list_guilds(
    state: DiscordRolesState, store_id: str, *, now: datetime | None = None
) -> list[GuildSummary]:
    """The store's linked servers, oldest link first, with name, icon and member count from Discord.

    Discord's answers are kept on the link rows for ``DISCORD_ROLES_GUILD_CACHE_SECONDS``; when Discord
    fails or the store has no usable bot, the kept values answer (None when never read). Never raises
    for Discord's sake. Refreshed rows are changed in the session: the caller commits.
    """
    now = now or utcnow()
    model = state.models.LinkedGuild
    links = list(
        state.db.session.scalars(
            sa.select(model).where(model.store_id == store_id).order_by(model.linked_at, model.id)
        )
    )
    if not links:
        return []
    access: BotAccess | None = None
    no_bot = False
    try:
        access = bot_access(state, store_id)
    except BotUnavailable as unavailable:
        no_bot = unavailable.reason_code is ReasonCode.NO_BOT
    fresh_after = now - timedelta(seconds=state.settings.guild_cache_seconds)
    discord_down = False
    summaries = []
    for link in links:
        if access is None:
            # No bot at all is certainly not in the server; an unreadable token tells us nothing.
            present: bool | None = False if no_bot else None
        elif link.details_refreshed_at is not None and link.details_refreshed_at > fresh_after:
            present = True  # refreshed only from a successful read, within the cache's lifetime
        elif discord_down:
            present = None
        else:
            present = _refresh(access.client, link, now)
            # One failure means Discord is down or limiting us: the others keep their cached values
            # rather than making the listing wait for each of them in turn.
            discord_down = present is None
        summaries.append(
            GuildSummary(
                guild_id=link.guild_id,
                name=link.name,
                icon_url=icon_url(link.guild_id, link.icon, state.settings.cdn_url),
                member_count=link.member_count,
                linked_at=link.linked_at,
                bot_in_guild=present,
            )
        )
    return summaries


def _refresh(client: DiscordClient, link: LinkedGuild, now: datetime) -> bool | None:
    """Read the server from Discord into the link's cache; whether the bot is in it (None: unknown)."""
    try:
        guild = client.get_guild(link.guild_id, with_counts=True)
    except (Forbidden, DiscordNotFound):
        return False  # Discord hides a server from a bot that is not in it (403 50001, or 404)
    except DiscordError as error:
        logger.info("guild %s: details not refreshed (%s)", link.guild_id, type(error).__name__)
        return None
    link.name = str(guild.get("name") or "")[:100] or None
    icon = guild.get("icon")
    link.icon = icon if isinstance(icon, str) and len(icon) <= 64 else None
    count = guild.get("approximate_member_count")
    link.member_count = count if isinstance(count, int) else link.member_count
    link.details_refreshed_at = now
    return True


# -- roles ------------------------------------------------------------------------------------------


def guild_roles(state: DiscordRolesState, store_id: str, guild_id: str) -> list[GuildRole]:
    """The linked server's roles, highest first, each saying whether the bot can assign it and why not.

    Raises :class:`GuildNotLinked`, :class:`BotUnavailable` (no bot, bot not in the server, token
    refused) or lets a :class:`TransientDiscordError` through.
    """
    require_link(state, store_id, guild_id)
    roles, bot_role_ids = read_roles(state, store_id, guild_id)
    return [
        describe_role(guild_id, role, bot_role_ids, roles)
        for role in sorted(roles, key=role_sort_key, reverse=True)
    ]


def read_roles(
    state: DiscordRolesState, store_id: str, guild_id: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """The server's roles and the roles the store's bot holds there, as Discord says now."""
    access = bot_access(state, store_id)
    try:
        roles = access.client.get_guild_roles(guild_id)
        member = access.client.get_member(guild_id, bot_user_id(state, access))
    except (Forbidden, DiscordNotFound):
        raise _not_in_guild(access, guild_id) from None
    except Unauthorized:
        raise _token_refused() from None
    except TransientDiscordError:
        raise
    except DiscordError as error:
        raise BotUnavailable(
            ReasonCode.DISCORD_REFUSED, f"Discord refused to list the roles ({error.message})."
        ) from None
    return roles, [str(role_id) for role_id in member.get("roles", [])]


def describe_role(
    guild_id: str, role: Mapping[str, Any], bot_role_ids: list[str], roles: list[dict[str, Any]]
) -> GuildRole:
    verdict = can_assign(guild_id, bot_role_ids, role, roles)
    return GuildRole(
        id=str(role["id"]),
        name=str(role.get("name", "")),
        position=int(role.get("position", 0)),
        color=int(role.get("color", 0)),
        managed=bool(role.get("managed", False)),
        assignable=verdict.ok,
        reason_code=None if verdict.reason_code is None else ReasonCode(verdict.reason_code),
        fix=verdict.fix,
    )


# -- unlinking --------------------------------------------------------------------------------------


def unlink_guild(
    state: DiscordRolesState, store_id: str, guild_id: str, *, now: datetime | None = None
) -> Unlinked:
    """Unlink the server from the store; the roles members hold in Discord are left as they are.

    Deletes the store's mappings for the server, fails its pending deliveries there (``guild_unlinked``)
    and switches purchase notifications off (failing their pending messages) unless their channel is
    known to be in another linked server. Raises :class:`GuildNotLinked`. Changes the session; the
    caller commits, and :data:`~flask_discord_roles.signals.guild_unlinked` is sent after that commit.
    """
    now = now or utcnow()
    require_link(state, store_id, guild_id)
    # Discord is asked before anything is written, so no row stays locked while it answers.
    channel_in_guild, unchecked = _notification_channel_in(state, store_id, guild_id)
    models, session = state.models, state.db.session
    link = models.LinkedGuild
    unlinked = session.execute(
        sa.delete(link)
        .where(link.store_id == store_id, link.guild_id == guild_id)
        .execution_options(synchronize_session=False)
    )
    if unlinked.rowcount == 0:  # type: ignore[attr-defined]
        raise GuildNotLinked(guild_id)  # a concurrent unlink got there first
    mappings_deleted = int(
        session.execute(
            sa.delete(models.RoleMapping)
            .where(models.RoleMapping.store_id == store_id, models.RoleMapping.guild_id == guild_id)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    )
    deliveries_stopped = _stop_deliveries(state, store_id, guild_id, now)
    if channel_in_guild is not None:
        _stop_notifications(state, store_id, channel_in_guild)
    app = current_app_or_none()
    if app is not None:
        send_after_commit(
            session(),
            app,
            guild_unlinked,
            store_id=store_id,
            guild_id=guild_id,
            mappings_deleted=mappings_deleted,
            deliveries_stopped=deliveries_stopped,
        )
    return Unlinked(
        guild_id=guild_id,
        mappings_deleted=mappings_deleted,
        deliveries_stopped=deliveries_stopped,
        notifications_stopped=channel_in_guild is not None,
        notifications_unchecked=unchecked,
    )


def _stop_deliveries(state: DiscordRolesState, store_id: str, guild_id: str, now: datetime) -> int:
    """Fail the store's pending role changes in the server, leased ones included.

    A runner holding a lease finds the row no longer pending and records nothing (its finish is guarded
    by the lease and the status), so an unlinked server sees no new role change from us.
    """
    delivery = state.models.Delivery
    result = state.db.session.execute(
        sa.update(delivery)
        .where(
            delivery.store_id == store_id, delivery.guild_id == guild_id, delivery.status == Status.PENDING
        )
        .values(
            status=Status.FAILED,
            reason_code=GUILD_UNLINKED,
            reason=UNLINKED_REASON,
            next_attempt_at=None,
            leased_by=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _notification_channel_in(
    state: DiscordRolesState, store_id: str, guild_id: str
) -> tuple[str | None, str | None]:
    """The notification channel to switch off with the server, and why it was not certain.

    ``(channel id, None)`` when the channel is in the server — or must be, the server being the store's
    only link (a channel is checked to be in a linked server when it is set) — and ``(None, None)`` when
    it is elsewhere (or there is none). When Discord cannot say, ``(channel id, why)``: notifications
    stop all the same, since an unlinked server must not get another message from the store.
    """
    settings, link = state.models.StoreSettings, state.models.LinkedGuild
    session = state.db.session
    channel_id = session.scalar(
        sa.select(settings.notification_channel_id).where(settings.store_id == store_id)
    )
    if not channel_id:
        return None, None
    other_links = session.scalar(
        sa.select(sa.func.count()).where(link.store_id == store_id, link.guild_id != guild_id)
    )
    if not other_links:
        return channel_id, None
    try:
        channel = bot_access(state, store_id).client.get_channel(channel_id)
    except BotUnavailable:
        return channel_id, "the store has no bot that could ask Discord where the channel is"
    except DiscordNotFound:
        return None, None  # a deleted channel is in no server
    except Unauthorized:
        return channel_id, "Discord refused the bot's token, so it could not say where the channel is"
    except Forbidden:
        return channel_id, "the bot cannot see the notification channel"
    except DiscordError:
        return channel_id, "Discord did not say where the channel is"
    return (channel_id, None) if str(channel.get("guild_id")) == guild_id else (None, None)


def _stop_notifications(state: DiscordRolesState, store_id: str, channel_id: str) -> None:
    settings, notification = state.models.StoreSettings, state.models.PurchaseNotification
    session = state.db.session
    session.execute(
        sa.update(settings)
        .where(settings.store_id == store_id)
        .values(notifications_enabled=False, notification_channel_id=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(notification)
        .where(
            notification.store_id == store_id,
            notification.channel_id == channel_id,
            notification.status == SendStatus.PENDING,
        )
        .values(
            status=SendStatus.FAILED,
            reason_code=GUILD_UNLINKED,
            reason=NOTIFICATIONS_UNLINKED,
            leased_by=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
