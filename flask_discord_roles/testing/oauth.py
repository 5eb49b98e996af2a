"""OAuth2 state: authorization codes, grants (access + refresh token pairs) and the consent settings.

Codes are single-use and live 10 minutes; access tokens live a week (``expires_in``) unless a test
expires them; a refresh rotates both tokens and kills the old pair, as Discord does.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = [
    "ACCESS_TTL",
    "CODE_TTL",
    "KNOWN_SCOPES",
    "LOOPBACK_HOSTS",
    "AuthorizationCode",
    "Grant",
    "OAuthStore",
    "s256",
]

CODE_TTL = 600.0
ACCESS_TTL = 604800
KNOWN_SCOPES = frozenset(
    {
        "identify",
        "email",
        "guilds",
        "guilds.join",
        "guilds.members.read",
        "connections",
        "role_connections.write",
        "bot",
        "applications.commands",
        "openid",
    }
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    user_id: str
    redirect_uri: str | None
    scopes: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    used: bool = False


@dataclass
class Grant:
    """A user's authorization of one application: the current access/refresh pair."""

    access_token: str
    refresh_token: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False

    def is_live(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass
class OAuthStore:
    """All OAuth state; ``consent`` is "allow" or "deny", ``login_user_id`` is who clicks Authorize.

    ``interactive`` shows a consent page for a person to click instead of deciding by ``consent``.
    """

    lock: threading.RLock = field(default_factory=threading.RLock)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    by_access: dict[str, Grant] = field(default_factory=dict)
    by_refresh: dict[str, Grant] = field(default_factory=dict)
    consent: str = "allow"
    login_user_id: str | None = None
    interactive: bool = False
    allowed_redirects: set[str] = field(default_factory=set)

    def redirect_allowed(self, uri: str) -> bool:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        if "*" in self.allowed_redirects or uri in self.allowed_redirects:
            return True
        return parts.hostname in LOOPBACK_HOSTS

    def issue_code(
        self,
        client_id: str,
        user_id: str,
        redirect_uri: str | None,
        scopes: tuple[str, ...],
        challenge: str | None,
        method: str | None,
    ) -> str:
        with self.lock:
            code = secrets.token_urlsafe(22)
            self.codes[code] = AuthorizationCode(
                code,
                client_id,
                user_id,
                redirect_uri,
                scopes,
                challenge,
                method,
                time.monotonic() + CODE_TTL,
            )
            return code

    def issue_grant(self, client_id: str, user_id: str, scopes: tuple[str, ...]) -> Grant:
        with self.lock:
            grant = Grant(
                secrets.token_urlsafe(22),
                secrets.token_urlsafe(22),
                client_id,
                user_id,
                scopes,
                time.monotonic() + ACCESS_TTL,
            )
            self.by_access[grant.access_token] = grant
            self.by_refresh[grant.refresh_token] = grant
            return grant

    def live_grant(self, access_token: str) -> Grant | None:
        with self.lock:
            grant = self.by_access.get(access_token)
            return grant if grant is not None and grant.is_live(time.monotonic()) else None

    def revoke(self, grant: Grant) -> None:
        with self.lock:
            grant.revoked = True
            self.by_access.pop(grant.access_token, None)
            self.by_refresh.pop(grant.refresh_token, None)

    def expire_user(self, user_id: str) -> None:
        with self.lock:
            for grant in self.by_access.values():
                if grant.user_id == user_id:
                    grant.expires_at = time.monotonic() - 1
