"""The address that adds a store's bot (its own, or the platform's shared one) to a server."""

from __future__ import annotations

from flask_discord_roles._core.bots import BotNotConfigured, invite_application_id, invite_url
from flask_discord_roles._core.settings import store_settings
from flask_discord_roles._runtime.state import DiscordRolesState

NO_BOT_TO_INVITE = (
    "This store has no bot of its own and this app has no shared bot: save the store's bot first."
)


def store_invite_url(state: DiscordRolesState, store_id: str, guild_id: str | None = None) -> str:
    """The invite for ``store_id``'s bot with the permissions its settings need.

    Raises :class:`~flask_discord_roles._core.bots.BotNotConfigured` when it has no bot to invite.
    """
    application_id = invite_application_id(state, store_id)
    if application_id is None:
        raise BotNotConfigured(NO_BOT_TO_INVITE)
    adds_members = store_settings(state, store_id).join_guilds_on_link
    return invite_url(application_id, guild_id, adds_members=adds_members)
