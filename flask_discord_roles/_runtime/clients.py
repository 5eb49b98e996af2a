"""One Discord client per bot token per process, shared by every thread that talks as that bot.

Discord's global rate limit is per bot, so all requests made as one bot must pass through one limiter:
sharing the client is what makes that true. After a fork (gunicorn workers) the parent's sessions and locks
are not reused; the child builds its own.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import TYPE_CHECKING

from flask_discord_roles._runtime.config import Settings

if TYPE_CHECKING:
    from flask_discord_roles.discord.client import DiscordClient
    from flask_discord_roles.discord.observers import RequestObserver


def build_client(settings: Settings, token: str, observer: RequestObserver | None = None) -> DiscordClient:
    """A client for ``token`` configured from the app's ``DISCORD_ROLES_*`` settings; ``observer`` is told
    about each request (the app's telemetry)."""
    from flask_discord_roles.discord.client import DiscordClient

    return DiscordClient(
        token,
        base_url=settings.api_base_url,
        timeout=settings.http_timeout,
        max_retries=settings.http_max_retries,
        global_limit=settings.global_rate_limit,
        global_period=settings.global_rate_period,
        user_agent=settings.user_agent,
        observer=observer,
    )


_NO_BOT_TOKEN = ""
"""The token of the webhook client: never sent, since webhook routes are called without auth."""


def _pool_key(token: str) -> str:
    # A hash, so no token sits in a dict key.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ClientPool:
    """Hands out the :class:`DiscordClient` for a bot token, creating it on first use."""

    def __init__(self, settings: Settings, observer: RequestObserver | None = None) -> None:
        self._settings = settings
        self._observer = observer
        self._lock = threading.Lock()
        self._clients: dict[str, DiscordClient] = {}
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"<ClientPool clients={len(self._clients)}>"

    def for_token(self, token: str) -> DiscordClient:
        """The client for ``token``, created on first use."""
        key = _pool_key(token)
        with self._lock:
            if self._pid != os.getpid():
                # Forked: the inherited sessions' sockets and locks belong to the parent.
                self._clients = {}
                self._pid = os.getpid()
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = build_client(self._settings, token, self._observer)
            return client

    def for_webhooks(self) -> DiscordClient:
        """A client for interaction webhooks, which carry their own token in the URL and need no bot's.

        Discord keeps those routes out of the bot's global limit, so they share no limiter with a bot.
        """
        return self.for_token(_NO_BOT_TOKEN)

    def discard(self, token: str) -> None:
        """Forget (and close) the client for ``token``, e.g. after the store saved a new token."""
        with self._lock:
            client = self._clients.pop(_pool_key(token), None)
        if client is not None:
            client.close()

    def close(self) -> None:
        """Close every client's connections."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
