"""Tenant-API tokens, for the host's own dashboard or scripts (inside an app context)::

    from flask_discord_roles import tokens

    issued = tokens.create_token(store.id, "Dashboard", scopes=["read", "write"])
    db.session.commit()
    show_once(issued.token)  # only its hash is stored

The CLI does the same: ``flask discord-roles tokens create --store <id> --name Dashboard``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask_discord_roles._core import api_tokens as _service
from flask_discord_roles._core.api_tokens import IssuedToken, TokenInfo
from flask_discord_roles._runtime.api_grant import SCOPES, ApiGrant
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.errors import ValidationError

__all__ = [
    "SCOPES",
    "ApiGrant",
    "IssuedToken",
    "TokenInfo",
    "ValidationError",
    "create_token",
    "list_tokens",
    "revoke_token",
]


def create_token(
    store_id: object, name: str, scopes: Iterable[str] = SCOPES, *, expires_at: datetime | None = None
) -> IssuedToken:
    """A new token for ``store_id``; added to your session: commit, then show ``token`` once.

    Raises :class:`ValidationError` for an unknown scope or empty name.
    """
    return _service.create_token(get_state(), str(store_id), name, list(scopes), expires_at=expires_at)


def list_tokens(store_id: object) -> list[TokenInfo]:
    """The store's tokens, newest first, without their secrets."""
    return _service.list_tokens(get_state(), str(store_id))


def revoke_token(store_id: object, token_id: int) -> bool:
    """Revoke a token at once (after you commit); False when the store has no such token."""
    return _service.revoke_token(get_state(), str(store_id), token_id)
