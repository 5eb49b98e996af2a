"""A store's own Discord bot: saving its credentials and talking as it."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from sqlalchemy import select

from flask_discord_roles._runtime.clients import build_client
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.dispatch import current_app_or_none, dispatch_after_commit
from flask_discord_roles._runtime.models import StoreBot, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import ReasonCode, Status
from flask_discord_roles.discord.client import DiscordClient
from flask_discord_roles.discord.commands import command_definitions
from flask_discord_roles.discord.errors import DiscordError, PermanentDiscordError, Unauthorized
from flask_discord_roles.discord.permissions import CREATE_INSTANT_INVITE, MANAGE_ROLES
from flask_discord_roles.discord.snowflake import avatar_url, is_snowflake
from flask_discord_roles.errors import NotFound, ValidationError

_PUBLIC_KEY = re.compile(r"[0-9a-fA-F]{64}")
INVITE_BASE = "https://discord.com/api/oauth2/authorize"
INVITE_PERMISSIONS = MANAGE_ROLES
"""Manage Roles only, as the seed's invite does: Send Messages for notifications is a channel matter."""
JOINING_PERMISSIONS = MANAGE_ROLES | CREATE_INSTANT_INVITE
"""Adding customers to the server when they link (``guilds.join``) needs Create Invite as well."""
logger = logging.getLogger("flask_discord_roles")


def validate_credentials(
    application_id: object, public_key: object, bot_token: object
) -> dict[str, list[str]]:
    """Check the shape of the three credentials; returns the errors per field (empty when fine)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(application_id, str) or not is_snowflake(application_id):
        # The custom-bot document's own example, word for word (it is on the General Information page).
        errors["application_id"] = ["Application ID must be a numeric Discord snowflake."]
    if not isinstance(public_key, str) or not _PUBLIC_KEY.fullmatch(public_key):
        errors["public_key"] = ["Public key must be 64 hexadecimal characters."]
    if not isinstance(bot_token, str) or not bot_token.strip() or any(c.isspace() for c in bot_token):
        errors["bot_token"] = ["Bot token is required (Bot page, Reset Token)."]
    return errors


def get_bot(state: DiscordRolesState, store_id: str) -> StoreBot | None:
    """The store's bot, if it has saved one."""
    model = state.models.StoreBot
    return state.db.session.scalars(select(model).where(model.store_id == store_id)).one_or_none()


def save_bot(
    state: DiscordRolesState,
    store_id: str,
    *,
    application_id: object,
    public_key: object,
    bot_token: object,
    client_secret: object = None,
) -> StoreBot:
    """Validate the credentials, check the token with Discord, and store them (token encrypted).

    Raises :class:`ValidationError` for malformed fields or a token Discord refuses; lets a
    :class:`TransientDiscordError` through when Discord cannot be reached, so the caller can say "try
    again" instead of "wrong token". Adds to the session without committing: the caller owns the
    transaction.
    """
    errors = validate_credentials(application_id, public_key, bot_token)
    if client_secret is not None and (
        not isinstance(client_secret, str) or not client_secret or any(c.isspace() for c in client_secret)
    ):
        errors["client_secret"] = ["Client secret must be the OAuth2 page's Client Secret, or left out."]
    if errors:
        raise ValidationError(errors)
    # validate_credentials has made sure of these; the asserts tell the type checker.
    assert isinstance(application_id, str)
    assert isinstance(public_key, str)
    assert isinstance(bot_token, str)
    bot_user = _bot_user_of(state, application_id, bot_token)
    bot = _store_credentials(
        state,
        store_id,
        application_id=application_id,
        public_key=public_key,
        bot_token=bot_token,
        client_secret=client_secret,
        bot_user=bot_user,
    )
    state.db.session.flush()
    state.bot_cache.forget(store_id)
    # Deliveries that waited for a (working) bot can run once the caller commits.
    bot_saved_requeue(state, store_id)
    # A bot whose commands could not be registered is still saved: the owner can register them again
    # (`flask discord-roles register-commands`), and slash_commands_registered says they must.
    problem = register_commands(state, bot)
    if problem is not None:
        logger.warning("store %s: slash commands not registered: %s", store_id, problem)
    return bot


def _bot_user_of(state: DiscordRolesState, application_id: str, bot_token: str) -> dict[str, Any]:
    """Ask Discord whose token this is: the bot's user, once the token is known to be
    ``application_id``'s bot. Raises :class:`ValidationError` when Discord refuses it or it is another's."""
    # A one-off client: an unverified token must not enter the shared pool.
    with build_client(state.settings, bot_token, state.telemetry.discord_request) as probe:
        try:
            bot_user = probe.get_current_user()
            application = probe.get_current_application()
        except Unauthorized:
            raise ValidationError(
                {
                    "bot_token": [
                        "Discord refused this bot token. Reset it on the Bot page and paste it again."
                    ]
                }
            ) from None
        except PermanentDiscordError as error:
            raise ValidationError(
                {"bot_token": [f"Discord would not say which bot this token is ({error.message})."]}
            ) from None
    if str(application.get("id")) != application_id:
        raise ValidationError(
            {
                "application_id": [
                    "This bot token belongs to another application. Copy the Application ID from the "
                    "General Information page of the application whose bot token you pasted."
                ]
            }
        )
    return bot_user


def _store_credentials(
    state: DiscordRolesState,
    store_id: str,
    *,
    application_id: str,
    public_key: str,
    bot_token: str,
    client_secret: object,
    bot_user: Mapping[str, Any],
) -> StoreBot:
    """Write the checked credentials and what Discord said about the bot to the store's bot row (made
    if the store has none), the tokens encrypted; switches the bot on and off the shared bot."""
    bot = get_bot(state, store_id)
    if bot is None:
        bot = state.models.StoreBot(store_id=store_id)
        state.db.session.add(bot)
    elif not bot.uses_platform_bot:  # the shared bot's client serves other stores: keep it
        # The old token's client (and its learned limits) belongs to a token we no longer use.
        state.clients.discard(state.cipher.decrypt(bot.token_ciphertext))
    if isinstance(client_secret, str):
        bot.client_secret_ciphertext = state.cipher.encrypt(client_secret)
    elif bot.application_id != application_id:
        bot.client_secret_ciphertext = None  # a secret of another application
    bot.application_id = application_id
    bot.public_key = public_key.lower()
    bot.token_ciphertext = state.cipher.encrypt(bot_token)
    bot.bot_user_id = str(bot_user["id"])
    bot.bot_name = str(bot_user.get("global_name") or bot_user.get("username") or "")
    bot.bot_avatar = bot_user.get("avatar")
    bot.is_enabled = True
    bot.disabled_reason = None
    bot.uses_platform_bot = False  # a store that saves its own bot stops using the shared one
    return bot


def remove_bot(state: DiscordRolesState, store_id: str) -> bool:
    """Forget the store's own bot and its credentials; False when it has none. Caller commits.

    Deliveries stay queued: the runner parks them as ``no_bot`` until a bot is saved again, so
    nothing is delivered through the removed bot and nothing is lost.
    """
    bot = get_bot(state, store_id)
    if bot is None or bot.uses_platform_bot:
        return False
    with suppress(DecryptionError):  # unreadable: no client could have been made from it either
        state.clients.discard(state.cipher.decrypt(bot.token_ciphertext))
    state.db.session.delete(bot)
    state.db.session.flush()
    state.bot_cache.forget(store_id)
    return True


def set_bot_enabled(state: DiscordRolesState, store_id: str, enabled: bool) -> StoreBot | None:
    """Switch the store's own bot on or off; None when it has none. Caller commits.

    Off, deliveries wait (``bot_disabled``) and interactions get a polite "switched off" answer;
    on again, the deliveries that waited come due.
    """
    bot = get_bot(state, store_id)
    if bot is None or bot.uses_platform_bot:
        return None
    bot.is_enabled = enabled
    bot.disabled_reason = None
    state.db.session.flush()
    state.bot_cache.forget(store_id)
    if enabled:
        bot_saved_requeue(state, store_id)
    return bot


class BotNotConfigured(NotFound):
    """The store has no bot of its own (it has none, or uses the platform's shared bot)."""


@dataclass(frozen=True)
class ConnectionCheck:
    """What Discord says about the bot right now."""

    connected: bool
    bot_id: str | None = None
    bot_name: str | None = None
    bot_avatar: str | None = None
    error: str | None = None
    """Why not, in a few fixed words: the custom-bot document's ``Invalid bot token`` when Discord
    refuses the token, else ``Bot token cannot be decrypted`` or ``Discord unavailable``."""
    detail: str | None = None
    """What happened and what to do about it, in a sentence to show the store owner."""


BOT_REFUSED = "Invalid bot token"
BOT_UNREADABLE = "Bot token cannot be decrypted"
DISCORD_UNAVAILABLE = "Discord unavailable"


def check_connection(state: DiscordRolesState, bot: StoreBot) -> ConnectionCheck:
    """Ask Discord who the bot is; the reason (a fixed ``error`` and a ``detail``) when it cannot say."""
    try:
        user = client_for(state, bot).get_current_user()
    except DecryptionError:
        return ConnectionCheck(
            False,
            error=BOT_UNREADABLE,
            detail="The saved token cannot be decrypted with DISCORD_ROLES_ENCRYPTION_KEYS; save the "
            "bot token again.",
        )
    except Unauthorized:
        return ConnectionCheck(
            False,
            error=BOT_REFUSED,
            detail="Discord refused the bot token. Reset it on the Bot page and save it again.",
        )
    except DiscordError as error:
        return ConnectionCheck(
            False,
            error=DISCORD_UNAVAILABLE,
            detail=f"Discord could not be reached ({error.status or 'no answer'}); try again in a moment.",
        )
    user_id = str(user["id"])
    return ConnectionCheck(
        True,
        bot_id=user_id,
        bot_name=str(user.get("global_name") or user.get("username") or ""),
        bot_avatar=avatar_url(user_id, user.get("avatar"), state.settings.cdn_url),
    )


def invite_application_id(state: DiscordRolesState, store_id: str) -> str | None:
    """The application a store's owner invites to a server: the store's own bot, else the platform's
    shared bot when this app has one (a store without a bot of its own uses it, through ``/link``),
    else none."""
    bot = get_bot(state, store_id)
    if bot is not None and not bot.uses_platform_bot:
        return bot.application_id
    return state.settings.platform_application_id


def invite_url(application_id: str, guild_id: str | None = None, *, adds_members: bool = False) -> str:
    """The address that adds the bot to a server with the permissions it needs: Manage Roles, and
    Create Invite when the store adds customers to its server as they link."""
    permissions = JOINING_PERMISSIONS if adds_members else INVITE_PERMISSIONS
    query = {
        "client_id": application_id,
        "permissions": str(permissions),
        "scope": "bot applications.commands",
    }
    if guild_id is not None:
        query.update(guild_id=guild_id, disable_guild_select="true")
    return f"{INVITE_BASE}?{urlencode(query, quote_via=quote)}"


def register_commands(state: DiscordRolesState, bot: StoreBot) -> str | None:
    """Replace the bot's global commands with ours and record it; the problem in words if that failed.

    Changes ``bot.slash_commands_registered`` without committing.
    """
    try:
        client_for(state, bot).bulk_overwrite_commands(bot.application_id, command_definitions())
    except DecryptionError:
        problem = "the bot token cannot be decrypted with DISCORD_ROLES_ENCRYPTION_KEYS; save it again"
    except DiscordError as error:
        problem = f"Discord answered {error.status or 'nothing'}: {error.message}"
    else:
        bot.slash_commands_registered = True
        return None
    bot.slash_commands_registered = False
    return problem


def register_platform_commands(state: DiscordRolesState) -> str | None:
    """Register our commands for the platform's shared bot; the problem in words if that failed."""
    application_id, token = state.settings.platform_application_id, state.platform_token
    if application_id is None or token is None:
        return "the platform's shared bot is not configured (DISCORD_ROLES_APPLICATION_ID and friends)"
    try:
        state.clients.for_token(token).bulk_overwrite_commands(application_id, command_definitions())
    except DiscordError as error:
        return f"Discord answered {error.status or 'nothing'}: {error.message}"
    return None


def requeue_parked(state: DiscordRolesState, store_id: str, *, now: datetime | None = None) -> list[int]:
    """Rows that waited for the store's bot (missing, off, unreadable token) come due again."""
    now = now or utcnow()
    model = state.models.Delivery
    session = state.db.session
    return list(
        session.scalars(
            sa.update(model)
            .where(
                model.store_id == store_id,
                model.status == Status.PENDING,
                model.reason_code.in_(
                    (ReasonCode.NO_BOT, ReasonCode.BOT_DISABLED, ReasonCode.TOKEN_UNREADABLE)
                ),
                model.discord_user_id.is_not(None),
            )
            .values(next_attempt_at=now, reason_code=None, reason=None, updated_at=now)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
    )


def bot_saved_requeue(state: DiscordRolesState, store_id: str) -> list[int]:
    """Rows parked for want of a working bot come due; they are handed to the executor on commit."""
    due = requeue_parked(state, store_id)
    app = current_app_or_none()
    if due and app is not None:
        dispatch_after_commit(state.db.session(), app, delivery_ids=due)
    return due


def client_for(state: DiscordRolesState, bot: StoreBot) -> DiscordClient:
    """The shared client that talks as ``bot`` (one per bot token per process)."""
    return state.clients.for_token(token_of(state, bot.token_ciphertext, bot.uses_platform_bot))


def token_of(state: DiscordRolesState, token_ciphertext: str, uses_platform_bot: bool) -> str:
    """The token a store's bot row stands for: the platform's current one for the shared bot (so
    rotating DISCORD_ROLES_BOT_TOKEN needs no re-save), else the store's own, decrypted.

    Raises :class:`~..crypto.DecryptionError` when the store's token cannot be decrypted.
    """
    if uses_platform_bot and state.platform_token:
        return state.platform_token
    return state.cipher.decrypt(token_ciphertext)
