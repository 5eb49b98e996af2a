"""Which Discord application a store's customers authorise when they link their account.

A store that saved its own bot with the application's client secret links customers through its own
application (its name on the consent screen); every other store uses the platform's application
(``DISCORD_ROLES_OAUTH_CLIENT_ID`` / ``…_SECRET``). Tokens are bound to the application that issued
them: if a store switches application, refreshing old tokens fails and the account counts as no longer
linked (the customer links again), which is what Discord would make of it too.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field

from flask_discord_roles._core.bots import get_bot
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.discord.oauth import OAuthClient


@dataclass(frozen=True)
class OAuthApp:
    """An application's OAuth2 credentials; the secret stays out of the repr."""

    client_id: str
    client_secret: str = field(repr=False)

    def client(self, state: DiscordRolesState) -> OAuthClient:
        """A client for its token endpoint; close it (or use it in a ``with``)."""
        return OAuthClient(
            state.settings.api_base_url,
            self.client_id,
            self.client_secret,
            timeout=state.settings.http_timeout,
            user_agent=state.settings.user_agent,
        )


def oauth_app_for(state: DiscordRolesState, store_id: str) -> OAuthApp | None:
    """The application ``store_id``'s customers link through, or None when there is none to use."""
    bot = get_bot(state, store_id)
    if bot is not None and not bot.uses_platform_bot and bot.client_secret_ciphertext:
        with suppress(DecryptionError):  # unreadable: fall back to the platform's application, if any
            return OAuthApp(bot.application_id, state.cipher.decrypt(bot.client_secret_ciphertext))
    return platform_app(state)


def platform_app(state: DiscordRolesState) -> OAuthApp | None:
    client_id, secret = state.settings.oauth_client_id, state.oauth_client_secret
    if client_id is None or secret is None:
        return None
    return OAuthApp(client_id, secret)
