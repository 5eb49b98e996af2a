"""Discord OAuth2 for linking a customer's account: the authorize URL with PKCE (S256), the token
endpoint (code exchange, refresh, revocation) and the user the token belongs to. No Flask, no database.

The token endpoint reads forms only and authenticates the application with HTTP Basic. Its answers are
not the REST API's: 400 ``invalid_grant`` (a code that is expired, used, for another redirect URI or
verifier, or a refresh token that was revoked) is the customer's problem and becomes
:class:`InvalidGrant`; 401 ``invalid_client`` is the operator's (:class:`InvalidClient`); 5xx, timeouts
and connection errors are transient. No token, code, verifier or secret ever appears in an error or repr.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from flask_discord_roles.discord.errors import (
    DiscordConnectionError,
    DiscordServerError,
    DiscordTimeout,
    PermanentDiscordError,
)
from flask_discord_roles.discord.sessions import SessionOwner

__all__ = [
    "GUILDS_JOIN",
    "IDENTIFY",
    "ROLE_CONNECTIONS_WRITE",
    "InvalidClient",
    "InvalidGrant",
    "OAuthClient",
    "OAuthError",
    "Pkce",
    "TokenSet",
    "authorize_endpoint_for",
    "authorize_url",
    "new_pkce",
    "s256",
]

IDENTIFY = "identify"
GUILDS_JOIN = "guilds.join"
# Lets the application write the user's Linked Roles values (see discord.user_client).
ROLE_CONNECTIONS_WRITE = "role_connections.write"


class OAuthError(PermanentDiscordError):
    """The token endpoint refused the request."""


class InvalidGrant(OAuthError):
    """The code or refresh token is not (or no longer) good: expired, used, revoked, or PKCE mismatch."""


class InvalidClient(OAuthError):
    """Discord does not accept the application's client id and secret."""


_ERRORS: dict[str, type[OAuthError]] = {"invalid_grant": InvalidGrant, "invalid_client": InvalidClient}


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint granted. The tokens stay out of the repr."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Pkce:
    """A PKCE pair: keep ``verifier`` secret (in the session), send ``challenge`` to Discord."""

    verifier: str = field(repr=False)
    challenge: str


def new_pkce() -> Pkce:
    """A fresh verifier (43 URL-safe characters, 256 bits) and its S256 challenge."""
    verifier = secrets.token_urlsafe(32)
    return Pkce(verifier, s256(verifier))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    authorize_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    state: str,
    code_challenge: str,
) -> str:
    """Where to send the customer's browser to ask for consent."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "prompt": "consent",
    }
    return f"{authorize_endpoint}?{urlencode(query)}"


def authorize_endpoint_for(api_base_url: str) -> str:
    """Discord's authorize page for an API root: ``https://discord.com/api/v10`` → ``…/oauth2/authorize``.

    The page lives on the site, not under the versioned API, so ``/api`` and ``/api/vN`` are taken off.
    """
    root = api_base_url.rstrip("/")
    head, _, tail = root.rpartition("/")
    if tail.startswith("v") and tail[1:].isdigit():
        root = head
    if root.endswith("/api"):
        root = root[: -len("/api")]
    return f"{root}/oauth2/authorize"


class OAuthClient(SessionOwner):
    """The token endpoint and ``/users/@me`` for one application (client id and secret)."""

    def __init__(
        self,
        api_base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 10.0,
        user_agent: str = "flask-discord-roles",
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = api_base_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.timeout = timeout
        self.user_agent = user_agent
        self._owns_session = session is None
        self._session = session or requests.Session()
        self._session.trust_env = False  # never a ~/.netrc credential in place of ours

    def __repr__(self) -> str:
        return f"<OAuthClient client_id={self.client_id!r}>"

    def exchange_code(self, code: str, *, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Trade an authorization code (and its PKCE verifier) for tokens."""
        return self._grant(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens for a refresh token (Discord rotates both; the old pair stops working)."""
        return self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def revoke(self, token: str) -> None:
        """Revoke an access or refresh token (and with it the whole grant)."""
        self._post("/oauth2/token/revoke", {"token": token})

    def current_user(self, access_token: str) -> dict[str, Any]:
        """The Discord user who granted ``access_token`` (needs the ``identify`` scope)."""
        response = self._send(
            "GET", "/users/@me", headers={"Authorization": f"Bearer {access_token}"}, route="GET /users/@me"
        )
        if response.status_code == 401:
            raise InvalidGrant("the access token is not valid any more", status=401, route="GET /users/@me")
        _raise_for(response, "GET /users/@me")
        return dict(response.json())

    def _grant(self, form: dict[str, str]) -> TokenSet:
        body = self._post("/oauth2/token", form)
        try:
            expires_in = float(body.get("expires_in", 0))
            return TokenSet(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
                expires_at=_now() + timedelta(seconds=expires_in),
                scopes=tuple(str(body.get("scope", "")).split()),
            )
        except (KeyError, TypeError, ValueError):
            raise DiscordServerError(
                "the token endpoint answered without a token", route="POST /oauth2/token"
            ) from None

    def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        route = f"POST {path}"
        response = self._send("POST", path, data=form, auth=(self.client_id, self._secret), route=route)
        if response.status_code in (400, 401):
            error, description = _oauth_error(response)
            kind = _ERRORS.get(error or "", InvalidClient if response.status_code == 401 else OAuthError)
            raise kind(description or error or "refused", status=response.status_code, route=route)
        _raise_for(response, route)
        try:
            body = response.json()
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {}

    def _send(self, method: str, path: str, *, route: str, **kwargs: Any) -> requests.Response:
        headers = {"User-Agent": self.user_agent, **kwargs.pop("headers", {})}
        try:
            return self._request(
                method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.Timeout:
            raise DiscordTimeout("Discord did not answer in time", route=route) from None
        except requests.RequestException as error:
            raise DiscordConnectionError(
                f"cannot reach Discord ({type(error).__name__})", route=route
            ) from None


def _oauth_error(response: requests.Response) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    description = body.get("error_description") or body.get("message")
    return (str(error) if error else None), (str(description) if description else None)


def _raise_for(response: requests.Response, route: str) -> None:
    if response.status_code >= 500:
        raise DiscordServerError(
            f"Discord answered {response.status_code}", status=response.status_code, route=route
        )
    if response.status_code == 429:
        raise DiscordServerError("Discord is rate limiting this application", status=429, route=route)
    if response.status_code >= 400:
        error, description = _oauth_error(response)
        raise OAuthError(description or error or "refused", status=response.status_code, route=route)


def _now() -> datetime:
    return datetime.now(UTC)
