"""Who is calling: ``Authorization: Bearer <token>`` and ``X-Tenant-Id: <store id>``, then the scope.

Order matters and is part of the contract: no or unknown token → 401; a token for another store, or
without the scope the method needs → 403. GET needs ``read``; anything that changes state needs ``write``.
The rate limit counts per token once the token is known, and per client address before, so guessing
tokens is limited too. The count is kept on ``g`` for the ``X-RateLimit-*`` headers of the answer.

Every 401 and 403 carries the seed's ``message``; which header or scope was wrong is in ``detail``
(and ``required_scope``), see :mod:`..error_body`.
"""

from __future__ import annotations

from flask import g, request

from flask_discord_roles._core.api_tokens import authenticate
from flask_discord_roles._runtime.api_grant import ApiGrant
from flask_discord_roles._runtime.api_limits import ApiRateLimiter, Verdict
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles._web.api.errors import ApiError

TENANT_HEADER = "X-Tenant-Id"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RATE_KEY = "discord_roles_rate"
"""Where on ``g`` the request's :class:`Verdict` is kept for the rate-limit headers."""


def required_scope(method: str) -> str:
    return "read" if method in READ_METHODS else "write"


def authorise(state: DiscordRolesState) -> ApiGrant:
    """The caller's grant for this request, or an :class:`ApiError` (401/403/429)."""
    limiter = state.api_limiter
    assert limiter is not None, "the tenant API is mounted only with its limiter"
    token = _bearer_token()
    grant = _grant_for(state, token) if token else None
    if grant is None:
        _count(limiter, client_rate_key())
        raise ApiError(
            401,
            "Send an API token of this store as Authorization: Bearer <token>; this one is missing, "
            "unknown, revoked or expired.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    _count(limiter, grant.rate_key)
    tenant = request.headers.get(TENANT_HEADER, "").strip()
    if not tenant:
        raise ApiError(401, f"Send your store id in the {TENANT_HEADER} header.")
    if tenant != grant.store_id:
        raise ApiError(403, "This token belongs to another store.")
    scope = required_scope(request.method)
    if scope not in grant.scopes:
        raise ApiError(403, f"This operation needs a token with the {scope} scope.", required_scope=scope)
    g.discord_roles_grant = grant
    return grant


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _grant_for(state: DiscordRolesState, token: str) -> ApiGrant | None:
    loader = state.loaders.api_token
    if loader is None:
        return authenticate(state, token)
    grant = loader(token)
    if grant is None:
        return None
    if not isinstance(grant, ApiGrant):
        raise TypeError("an api_token_loader must return an ApiGrant or None")
    return grant


def client_rate_key() -> str:
    """The count of requests that name no known token: per client address."""
    return f"client:{request.remote_addr}"


def _count(limiter: ApiRateLimiter, key: str) -> None:
    verdict = limiter.hit(key)
    setattr(g, RATE_KEY, verdict)
    if not verdict.allowed:
        raise ApiError(
            429,
            "Too many requests; wait retry_after seconds (the Retry-After header) before the next.",
            retry_after=verdict.reset_after,
        )


def observe(state: DiscordRolesState) -> None:
    """For a request that is not counted (``openapi.json``, a path no operation answers): where the
    caller's count stands, for the headers. The caller is its token if it sent a valid one (nothing is
    refused here), else its address."""
    limiter = state.api_limiter
    assert limiter is not None, "the tenant API is mounted only with its limiter"
    token = _bearer_token()
    grant = _grant_for(state, token) if token else None
    setattr(g, RATE_KEY, limiter.peek(grant.rate_key if grant is not None else client_rate_key()))


def rate_limit_headers() -> dict[str, str]:
    """This request's ``X-RateLimit-*`` headers (none if it never reached :func:`authorise` or
    :func:`observe`, e.g. a request refused by routing before our blueprint)."""
    verdict: Verdict | None = g.get(RATE_KEY)
    return verdict.headers() if verdict is not None else {}
