"""A store's own Discord bot, for the host's own dashboard (inside an app context)::

    from flask_discord_roles import bots

    bots.save_bot(store.id, application_id=..., public_key=..., bot_token=...)  # checked with Discord
    db.session.commit()
    check = bots.test_connection(store.id)

Every function adds its changes to your session: commit them. The tenant API's ``/custom-bot``
operations call the same functions. No function returns or raises anything that holds the token.
"""

from __future__ import annotations

from flask_discord_roles._core import bots as _service
from flask_discord_roles._core.bots import BotNotConfigured, ConnectionCheck
from flask_discord_roles._core.invites import store_invite_url
from flask_discord_roles._runtime.models import StoreBot
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles._web.urls import store_interactions_url
from flask_discord_roles.errors import ValidationError

__all__ = [
    "BotNotConfigured",
    "ConnectionCheck",
    "StoreBot",
    "ValidationError",
    "get_bot",
    "interactions_url",
    "invite_url",
    "register_commands",
    "remove_bot",
    "save_bot",
    "set_enabled",
    "test_connection",
]


def get_bot(store_id: object) -> StoreBot | None:
    """The store's own bot, or None when it has none or uses the platform's shared bot."""
    bot = _service.get_bot(get_state(), str(store_id))
    return None if bot is None or bot.uses_platform_bot else bot


def _own_bot(store_id: object) -> StoreBot:
    bot = get_bot(store_id)
    if bot is None:
        raise BotNotConfigured("This store has no bot of its own yet: save one first.")
    return bot


def save_bot(
    store_id: object,
    *,
    application_id: object,
    public_key: object,
    bot_token: object,
    client_secret: object = None,
) -> StoreBot:
    """Check the credentials with Discord, store the token (and client secret) encrypted, and register
    ``/claim``, ``/check`` and ``/help``.

    Raises :class:`ValidationError` naming each wrong field, or
    :class:`~flask_discord_roles.discord.errors.TransientDiscordError` when Discord cannot be reached.
    """
    return _service.save_bot(
        get_state(),
        str(store_id),
        application_id=application_id,
        public_key=public_key,
        bot_token=bot_token,
        client_secret=client_secret,
    )


def remove_bot(store_id: object) -> bool:
    """Forget the bot and its credentials; False when there was none. Deliveries wait (``no_bot``)."""
    return _service.remove_bot(get_state(), str(store_id))


def set_enabled(store_id: object, enabled: bool) -> StoreBot:
    """Switch the bot on or off. Off, deliveries wait (``bot_disabled``); on, they come due.

    Raises :class:`BotNotConfigured`.
    """
    _own_bot(store_id)
    bot = _service.set_bot_enabled(get_state(), str(store_id), enabled)
    assert bot is not None  # just checked
    return bot


def test_connection(store_id: object) -> ConnectionCheck:
    """Ask Discord who the bot is now: its name and avatar, or why it cannot say, in words.

    Raises :class:`BotNotConfigured`.
    """
    return _service.check_connection(get_state(), _own_bot(store_id))


def register_commands(store_id: object) -> str | None:
    """Register ``/claim``, ``/check`` and ``/help`` again; None when Discord took them, else why not.

    Raises :class:`BotNotConfigured`.
    """
    return _service.register_commands(get_state(), _own_bot(store_id))


def invite_url(store_id: object, guild_id: str | None = None) -> str:
    """The address that adds the store's bot to a server with the permissions its settings need: its
    own bot's, or the platform's shared bot's when it has none of its own and this app has one.

    Raises :class:`BotNotConfigured` when there is neither.
    """
    return store_invite_url(get_state(), str(store_id), guild_id)


def interactions_url(store_id: object, *, base_url: str | None = None) -> str:
    """What the store owner pastes as the application's Interactions Endpoint URL.

    The base is ``base_url``, else ``DISCORD_ROLES_PUBLIC_BASE_URL`` (required outside ``TESTING`` and
    debug), else this request's own address when its ``Host`` is a plain host name.
    """
    return store_interactions_url(get_state(), str(store_id), base_url=base_url)
