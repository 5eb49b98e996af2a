"""What the REST client and the OAuth client share about their ``requests.Session``: who closes it, and
the one method every request of theirs goes through, where a test can forbid the real Discord."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import urlsplit

import requests

__all__ = ["RealDiscordRefused", "SessionOwner", "refuse_real_discord"]

# Discord's own hosts (the API, the CDN, invites) and every subdomain of them.
REAL_DISCORD_DOMAINS = ("discord.com", "discordapp.com", "discordapp.net", "discord.gg")


class RealDiscordRefused(RuntimeError):
    """A request to the real Discord while a test said only a fake may be called.

    Not a :class:`~flask_discord_roles.discord.errors.DiscordError`: nothing may retry it, record it
    as a delivery failure or turn it into a polite answer.
    """


class _Refusal:
    """What :func:`refuse_real_discord` set up: the advice to give, and each refusal it made."""

    def __init__(self, advice: str) -> None:
        self.advice = advice
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def check(self, method: str, url: str) -> None:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if not any(host == domain or host.endswith("." + domain) for domain in REAL_DISCORD_DOMAINS):
            return
        # Only the method and host: a URL's path may hold an interaction token.
        message = f"refused {method} {host}: {self.advice}"
        with self._lock:
            self.refused.append(message)
        raise RealDiscordRefused(message)


# Read on every request, set by a test's fixture: a plain global (not thread-local) because the
# requests a test causes may be made by the app's delivery threads.
_refusal: _Refusal | None = None


@contextmanager
def refuse_real_discord(advice: str) -> Iterator[list[str]]:
    """Inside the block, a request of ours to Discord's real hosts raises :class:`RealDiscordRefused`
    with ``advice`` and never reaches the network. Yields the list of refusals made, for a test to fail
    on even when the code under test swallowed the exception."""
    global _refusal
    previous, _refusal = _refusal, _Refusal(advice)
    try:
        yield _refusal.refused
    finally:
        _refusal = previous


class SessionOwner:
    """Closes its session on :meth:`close` or at the end of a ``with`` block, if it made that session.

    A session the caller passed in is the caller's to close: subclasses set ``_session`` and
    ``_owns_session`` (True only for a session they made), and send every request with :meth:`_request`.
    """

    _session: requests.Session
    _owns_session: bool

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections of the session this client created (a passed-in one is left open)."""
        if self._owns_session:
            self._session.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request on the session; every request of our Discord clients comes through here."""
        refusal = _refusal
        if refusal is not None:
            refusal.check(method, url)
        return self._session.request(method, url, **kwargs)
