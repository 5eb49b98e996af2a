"""What a tenant API token allows (:class:`ApiGrant`); the state's token loader returns one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

SCOPES = ("read", "write")
"""``read`` for every GET; ``write`` for everything that changes something."""


@dataclass(frozen=True)
class ApiGrant:
    """What an API token allows: one store, some scopes.

    A host with its own tokens returns one of these from its ``api_token_loader``. ``rate_key``
    identifies the token to the rate limiter (never the token itself: it may be written to Redis).
    """

    store_id: str
    scopes: frozenset[str]
    rate_key: str
    token_id: int | None = None

    @classmethod
    def for_token(cls, token: str, store_id: object, scopes: Iterable[str] = SCOPES) -> ApiGrant:
        """The grant a host's ``api_token_loader`` returns for one of its own tokens."""
        return cls(str(store_id), frozenset(str(scope) for scope in scopes), f"host:{rate_key_for(token)}")


def rate_key_for(token: str) -> str:
    """A stable key for a token that reveals nothing of it (a hash of its hash)."""
    return hashlib.sha256(b"rate:" + token.encode()).hexdigest()[:32]
