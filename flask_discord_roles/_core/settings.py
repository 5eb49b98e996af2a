"""A store's Discord settings, with the documented defaults for a store that never saved any."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa

from flask_discord_roles._core.bots import client_for, get_bot
from flask_discord_roles._core.grant_times import reschedule_store_grants
from flask_discord_roles._core.role_connection_metadata import LinkedRolesUnavailable, register_metadata
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.models import StoreBot, StoreSettings
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import DeliveryMode, ReasonCode, ReconcileMode
from flask_discord_roles.discord.client import DiscordClient
from flask_discord_roles.discord.errors import Forbidden, NotFound, PermanentDiscordError, Unauthorized
from flask_discord_roles.discord.permissions import (
    EMBED_LINKS,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    channel_permissions,
    missing_permissions,
)
from flask_discord_roles.discord.snowflake import is_snowflake
from flask_discord_roles.errors import ValidationError

DEFAULT_CLAIM_EXPIRY_HOURS = 72


def store_settings(state: DiscordRolesState, store_id: str) -> StoreSettings:
    """The store's saved settings, or an unsaved object holding the defaults."""
    model = state.models.StoreSettings
    saved = state.db.session.scalar(sa.select(model).where(model.store_id == store_id))
    if saved is not None:
        return saved
    return model(
        store_id=store_id,
        linking_enabled=True,
        require_link=False,
        join_guilds_on_link=False,
        notifications_enabled=False,
        delivery_mode=DeliveryMode.AUTOMATIC,
        claims_expire=True,
        claim_expiry_hours=DEFAULT_CLAIM_EXPIRY_HOURS,
        grace_hours=0,
        expiry_reminder_hours=None,
        expiry_reminder_dm=True,
        reconcile_mode=ReconcileMode.OFF,
        linked_roles_enabled=False,
    )


class QueueSettings(NamedTuple):
    """The settings queueing needs, read in one cached Core query (this runs in every checkout)."""

    delivery_mode: str = DeliveryMode.AUTOMATIC
    claims_expire: bool = True
    claim_expiry_hours: int = DEFAULT_CLAIM_EXPIRY_HOURS
    notifications_enabled: bool = False
    notification_channel_id: str | None = None


def settings_columns(model: type[StoreSettings]) -> tuple[Any, ...]:
    """The columns behind :class:`QueueSettings`, in its order, for queries that join them in."""
    return (
        model.delivery_mode,
        model.claims_expire,
        model.claim_expiry_hours,
        model.notifications_enabled,
        model.notification_channel_id,
    )


def queue_settings(state: DiscordRolesState, store_id: str) -> QueueSettings:
    """The store's queueing settings, or the defaults when it never saved any."""
    return queue_settings_on(state.db.session.connection(), state.models.StoreSettings, store_id)


def queue_settings_on(connection: sa.Connection, model: type[StoreSettings], store_id: str) -> QueueSettings:
    """:func:`queue_settings` on a Core connection (the engine's runners work without a session)."""
    row = connection.execute(sa.select(*settings_columns(model)).where(model.store_id == store_id)).first()
    return QueueSettings(*row) if row is not None else QueueSettings()


class ClaimWindow(Protocol):
    """The two settings that decide when a grant waiting for its customer expires."""

    @property
    def claims_expire(self) -> bool: ...
    @property
    def claim_expiry_hours(self) -> int: ...


def claim_window_end(settings: ClaimWindow, now: datetime) -> datetime | None:
    """When a grant queued ``now`` stops waiting for its customer; None when the store's never close.

    The enqueue statements compute the same in SQL (``tests/engine/test_enqueue_cases.py``).
    """
    return now + timedelta(hours=settings.claim_expiry_hours) if settings.claims_expire else None


# -- reading and changing them from a dashboard ------------------------------------------------------

BOOLEAN_SETTINGS = (
    "linking_enabled",
    "require_link",
    "join_guilds_on_link",
    "notifications_enabled",
    "claims_expire",
    "expiry_reminder_dm",
    "linked_roles_enabled",
)
TEXT_SETTINGS = ("welcome_message", "checkout_prompt")
SETTING_NAMES = (
    "linking_enabled",
    "require_link",
    "join_guilds_on_link",
    "notifications_enabled",
    "notification_channel_id",
    "welcome_message",
    "checkout_prompt",
    "delivery_mode",
    "claims_expire",
    "claim_expiry_hours",
    "grace_hours",
    "expiry_reminder_hours",
    "expiry_reminder_dm",
    "reconcile_mode",
    "linked_roles_enabled",
)
"""Every setting a store owner may change, in the order they are shown."""
DELIVERY_MODES: tuple[str, ...] = tuple(mode.value for mode in DeliveryMode)
RECONCILE_MODES: tuple[str, ...] = tuple(mode.value for mode in ReconcileMode)
MAX_TEXT_LENGTH = 2000
"""Discord's limit on a message's content, which is where these texts may end up."""
MAX_CLAIM_EXPIRY_HOURS = 24 * 365
MAX_GRANT_HOURS = 24 * 365
"""The longest grace period, and the earliest expiry reminder, a store may set: a year."""
GRANT_TIMING = ("grace_hours", "expiry_reminder_hours")
"""Settings that move the end or the reminder of the store's active time-limited grants."""

TEXT_CHANNEL_TYPES = frozenset({0, 2, 5, 13})
"""Channels a bot can post a message in: text, voice (its chat), announcement and stage."""
NOTIFICATION_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS
"""What posting a purchase notification needs: it is an embed (see :mod:`.notifications`)."""


def settings_dict(settings: StoreSettings) -> dict[str, Any]:
    """The settings as the API and the Python API show them."""
    return {name: getattr(settings, name) for name in SETTING_NAMES}


def update_settings(state: DiscordRolesState, store_id: str, changes: Mapping[str, object]) -> StoreSettings:
    """Change some of the store's settings; the rest keep their values.

    Raises :class:`ValidationError` naming every refused field, and saves nothing then. A new
    notification channel is checked with Discord (the store's bot must be able to post there); a
    :class:`TransientDiscordError` while checking is let through, also with nothing saved. Adds to the
    session without committing: the caller owns the transaction.
    """
    current = store_settings(state, store_id)
    errors = _field_errors(changes)
    if errors:
        raise ValidationError(errors)
    merged = {**settings_dict(current), **changes}
    errors = _combination_errors(merged, changes)
    if errors:
        raise ValidationError(errors)
    # A channel is checked when it changes, and when notifications are switched on (it may have broken
    # since it was saved); not on every save, so a dashboard sending the whole form works while
    # Discord is down.
    channel_id = merged["notification_channel_id"]
    switched_on = merged["notifications_enabled"] and not current.notifications_enabled
    if channel_id is not None and (channel_id != current.notification_channel_id or switched_on):
        verdict = check_notification_channel(state, store_id, channel_id)
        if not verdict.ok:
            raise ValidationError(
                {"notification_channel_id": [verdict.fix or "This channel cannot be used."]}
            )
    if merged["linked_roles_enabled"] and not current.linked_roles_enabled:
        _register_linked_roles(state, store_id)
    if not changes:
        return current
    if current not in state.db.session:
        state.db.session.add(current)
    moved = any(name in changes and changes[name] != getattr(current, name) for name in GRANT_TIMING)
    for name, value in changes.items():
        # An empty text means "no text", like null: the dashboard's cleared input field.
        setattr(current, name, None if name in TEXT_SETTINGS and value == "" else value)
    state.db.session.flush()
    if moved:
        reschedule_store_grants(state, store_id)
    return current


def _register_linked_roles(state: DiscordRolesState, store_id: str) -> None:
    """Switching Linked Roles on declares the store's fields with Discord now, so the owner sees a
    refusal as they save (and nothing is saved then). Saving it while on calls Discord no more (a
    dashboard sends the whole form); ``linked_roles.register_metadata`` declares them again."""
    try:
        register_metadata(state, store_id)
    except LinkedRolesUnavailable as refused:
        raise ValidationError({"linked_roles_enabled": [str(refused)]}) from None


def _field_errors(changes: Mapping[str, object]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name, value in changes.items():
        problem = _field_error(name, value)
        if problem is not None:
            errors[name] = [problem]
    return errors


def _field_error(name: str, value: object) -> str | None:
    """What is wrong with one sent setting, in words; None when it is fine."""
    if name not in SETTING_NAMES:
        return f"Unknown setting. The settings are: {', '.join(SETTING_NAMES)}."
    if name in BOOLEAN_SETTINGS:
        return None if isinstance(value, bool) else "Must be true or false."
    if name in TEXT_SETTINGS:
        if value is not None and not isinstance(value, str):
            return "Must be text, or null for none."
        if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
            return f"At most {MAX_TEXT_LENGTH} characters (this is {len(value)})."
        return None
    if name == "delivery_mode":
        if value in DELIVERY_MODES:
            return None
        return (
            f'Must be "{DeliveryMode.AUTOMATIC}" (roles are given at checkout) '
            f'or "{DeliveryMode.CLAIM}" (buyers run /claim).'
        )
    if name == "reconcile_mode":
        if value in RECONCILE_MODES:
            return None
        return (
            f'Must be "{ReconcileMode.OFF}" (scheduled runs skip the store), "{ReconcileMode.REPORT}" '
            f'(record drift, change nothing) or "{ReconcileMode.REPAIR}" (put drifted roles right).'
        )
    if name == "claim_expiry_hours":
        # bool is an int in Python, but true is not a number of hours.
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_CLAIM_EXPIRY_HOURS:
            return None
        return (
            f"Must be a whole number of hours from 1 to {MAX_CLAIM_EXPIRY_HOURS}. To keep unclaimed roles "
            "forever, set claims_expire to false."
        )
    if name == "grace_hours":
        if _whole_number(value) and 0 <= value <= MAX_GRANT_HOURS:  # type: ignore[operator]
            return None
        return (
            f"Must be a whole number of hours from 0 to {MAX_GRANT_HOURS}: how long time-limited roles "
            "stay after they expire (0: they go at once)."
        )
    if name == "expiry_reminder_hours":
        if value is None or (_whole_number(value) and 1 <= value <= MAX_GRANT_HOURS):  # type: ignore[operator]
            return None
        return (
            f"Must be a whole number of hours from 1 to {MAX_GRANT_HOURS} (how long before expiry to "
            "remind the member), or null for no reminders."
        )
    # notification_channel_id
    if value is None or (isinstance(value, str) and is_snowflake(value)):
        return None
    return (
        'Must be a channel id as text, e.g. "1234567890123456789" (with Developer Mode on, right-click '
        "the channel, Copy Channel ID), or null for none."
    )


def _whole_number(value: object) -> bool:
    # bool is an int in Python, but true is not a number of hours.
    return isinstance(value, int) and not isinstance(value, bool)


def _combination_errors(merged: Mapping[str, Any], changes: Mapping[str, object]) -> dict[str, list[str]]:
    """Settings that are fine alone but not together; the error goes on the field that was sent."""
    errors: dict[str, list[str]] = {}
    if merged["require_link"] and not merged["linking_enabled"]:
        field = "require_link" if "require_link" in changes else "linking_enabled"
        errors[field] = [
            "Requiring a Discord link at checkout needs account linking enabled: set linking_enabled to "
            "true as well, or require_link to false."
        ]
    if merged["notifications_enabled"] and not merged["notification_channel_id"]:
        field = "notifications_enabled" if "notifications_enabled" in changes else "notification_channel_id"
        errors[field] = [
            "Purchase notifications need a channel: send notification_channel_id with the id of a channel "
            "in your linked server, or set notifications_enabled to false."
        ]
    return errors


# -- can the bot post in the notification channel? ------------------------------------------------------


@dataclass(frozen=True)
class ChannelCheck:
    """Whether the store's bot can post purchase notifications in a channel; if not, why and the fix."""

    ok: bool
    reason_code: str | None = None
    fix: str | None = None
    guild_id: str | None = None

    def __post_init__(self) -> None:
        if self.reason_code is not None:
            ReasonCode(self.reason_code)  # a code outside the catalogue is a bug: fail loudly here


def check_notification_channel(state: DiscordRolesState, store_id: str, channel_id: str) -> ChannelCheck:
    """Is ``channel_id`` a text channel of a server linked to this store where the store's bot (its own
    or the platform's) has View Channel, Send Messages and Embed Links, overwrites included?

    Only answers Discord gave count; a :class:`TransientDiscordError` is raised, not guessed around.
    The channel is looked for in the linked servers' channel lists rather than fetched directly: a
    channel the bot cannot see answers 403, and each 403 counts towards Discord's invalid-request ban.
    """
    bot = get_bot(state, store_id)
    if bot is None:
        return ChannelCheck(
            False,
            "no_bot",
            "Save a bot first: notifications are posted by the store's bot, so the "
            "channel can only be checked once there is one.",
        )
    guild_ids = linked_guild_ids(state, store_id)
    if not guild_ids:
        return ChannelCheck(
            False,
            "no_guild_linked",
            "Link your Discord server first (run /link with a link code in the server): the channel must "
            "be in a server linked to this store.",
        )
    try:
        return _find_and_judge_channel(state, bot, guild_ids, channel_id)
    except DecryptionError:
        return ChannelCheck(
            False, "token_unreadable", "The bot token cannot be read any more: save the bot token again."
        )
    except Unauthorized:
        return ChannelCheck(
            False,
            "token_revoked",
            "Discord refused the bot token (it was reset or the bot deleted): save the new token first.",
        )
    except PermanentDiscordError as error:
        return ChannelCheck(
            False,
            "discord_rejected",
            f"Discord would not describe the channel ({error.message}); choose another channel.",
        )


def linked_guild_ids(state: DiscordRolesState, store_id: str) -> list[str]:
    """The servers linked to the store, in the order they were linked."""
    model = state.models.LinkedGuild
    query = sa.select(model.guild_id).where(model.store_id == store_id).order_by(model.id)
    return list(state.db.session.scalars(query))


def _find_and_judge_channel(
    state: DiscordRolesState, bot: StoreBot, guild_ids: list[str], channel_id: str
) -> ChannelCheck:
    """Look for the channel in each linked server's channel list, and judge it where it is found."""
    unreachable: list[str] = []
    client = client_for(state, bot)
    for guild_id in guild_ids:
        try:
            channels = client.get_guild_channels(guild_id)
        except (Forbidden, NotFound):
            unreachable.append(guild_id)  # the bot was removed from it: it cannot post there anyway
            continue
        channel = next((c for c in channels if str(c.get("id")) == channel_id), None)
        if channel is not None:
            return _judge_channel(state, bot, client, guild_id, channel)
    hint = (
        " The bot is not in every linked server any more: invite it again to post in one of those."
        if unreachable
        else ""
    )
    return ChannelCheck(
        False,
        "channel_not_found",
        "No channel with this id in the servers linked to this store. Copy the id of a text channel "
        "(right-click it, Copy Channel ID) in your linked server." + hint,
    )


def _judge_channel(
    state: DiscordRolesState, bot: StoreBot, client: DiscordClient, guild_id: str, channel: Mapping[str, Any]
) -> ChannelCheck:
    name = f"#{channel.get('name') or channel.get('id')}"
    if channel.get("type") not in TEXT_CHANNEL_TYPES:
        return ChannelCheck(
            False,
            "not_text_channel",
            f"{name} is a category or forum, where messages cannot be posted: choose a text channel.",
            guild_id,
        )
    bot_user_id = bot_user_id_of(state, bot, client)
    roles = client.get_guild_roles(guild_id)
    try:
        member = client.get_member(guild_id, bot_user_id)
    except NotFound:
        return ChannelCheck(
            False,
            "bot_not_in_guild",
            "The bot is not in the server this channel belongs to: invite it again, then choose the channel.",
            guild_id,
        )
    permissions = channel_permissions(
        guild_id,
        bot_user_id,
        [str(role) for role in member.get("roles", [])],
        roles,
        channel.get("permission_overwrites", []),
    )
    missing = missing_permissions(permissions, NOTIFICATION_PERMISSIONS)
    if missing:
        return ChannelCheck(
            False,
            "missing_channel_permissions",
            f"The bot cannot post in {name}: it lacks {', '.join(missing)} there. In the channel's settings "
            "(Edit Channel → Permissions), allow the bot's role View Channel, Send Messages and Embed "
            "Links, or choose another channel.",
            guild_id,
        )
    return ChannelCheck(True, guild_id=guild_id)


def bot_user_id_of(state: DiscordRolesState, bot: StoreBot, client: DiscordClient) -> str:
    """The Discord user id the store's bot acts as (asked of Discord when not known yet)."""
    if bot.uses_platform_bot:
        if state.platform_user_id is None:
            state.platform_user_id = str(client.get_current_user()["id"])
        return state.platform_user_id
    if bot.bot_user_id is None:
        return str(client.get_current_user()["id"])
    return bot.bot_user_id
