"""Who is calling: ``Authorization: Bearer <token>`` and ``X-Tenant-Id: <store id>``, then the scope.

Order matters and is part of the contract: no or unknown token → 401; a token for another store, or
without the scope the method needs → 403. GET needs ``read``; anything that changes state needs ``write``.
The rate limit counts per token once the token is known, and per client address before, so guessing
tokens is limited too.
"""

from __future__ import annotations

from flask import g, request

from ...api_limits import ApiRateLimiter
from ...extension import DiscordRolesState
from ...services.api_tokens import ApiGrant, authenticate
from .errors import ApiError

TENANT_HEADER = "X-Tenant-Id"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def required_scope(method: str) -> str:
    return "read" if method in READ_METHODS else "write"


def authorise(state: DiscordRolesState) -> ApiGrant:
    """The caller's grant for this request, or an :class:`ApiError` (401/403/429)."""
    limiter = state.api_limiter
    assert limiter is not None, "the tenant API is mounted only with its limiter"
    token = _bearer_token()
    grant = _grant_for(state, token) if token else None
    if grant is None:
        _count(limiter, f"client:{request.remote_addr}")
        raise ApiError(401, "Invalid or missing API token.", headers={"WWW-Authenticate": "Bearer"})
    _count(limiter, grant.rate_key)
    tenant = request.headers.get(TENANT_HEADER, "").strip()
    if not tenant:
        raise ApiError(401, f"Send your store id in the {TENANT_HEADER} header.")
    if tenant != grant.store_id:
        raise ApiError(403, "This token does not belong to that store.")
    scope = required_scope(request.method)
    if scope not in grant.scopes:
        raise ApiError(403, f"Token does not have the required scope ({scope}).")
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


def _count(limiter: ApiRateLimiter, key: str) -> None:
    verdict = limiter.hit(key)
    if not verdict.allowed:
        raise ApiError(
            429,
            "Rate limit exceeded.",
            retry_after=verdict.reset_after,
            headers={"X-RateLimit-Limit": str(verdict.limit), "X-RateLimit-Remaining": "0"},
        )
