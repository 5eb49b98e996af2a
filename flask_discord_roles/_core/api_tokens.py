"""Tenant-API tokens: random, shown once, stored as a SHA-256 hash, bound to one store, scoped.

A token reads ``drt_<prefix>_<secret>``: the prefix is kept in clear so an owner can tell tokens apart in
a listing, the whole token is what is hashed. SHA-256 (not a slow password hash) is right here: the
secret is 256 random bits, so there is nothing to guess, and every API request checks one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._runtime.api_grant import SCOPES, ApiGrant, rate_key_for
from flask_discord_roles._runtime.models import ApiToken, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.errors import ValidationError

_TOKEN_MARK = "drt_"  # noqa: S105 - a marker, not a secret
LAST_USED_PRECISION = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token, so reading the API stays read-only."""


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but the secret."""

    id: int
    store_id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedToken:
    """A new token. ``token`` is shown once and cannot be read back; the repr leaves it out."""

    info: TokenInfo
    token: str = field(repr=False)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _scopes(scopes: object) -> list[str]:
    if isinstance(scopes, str):
        scopes = [scopes]
    if not isinstance(scopes, list | tuple | set | frozenset) or not scopes:
        raise ValidationError({"scopes": [f"Give at least one scope of {', '.join(SCOPES)}."]})
    unknown = sorted({str(scope) for scope in scopes} - set(SCOPES))
    if unknown:
        raise ValidationError(
            {"scopes": [f"Unknown scope {', '.join(unknown)}; scopes are {', '.join(SCOPES)}."]}
        )
    return [scope for scope in SCOPES if scope in scopes]


def create_token(
    state: DiscordRolesState,
    store_id: str,
    name: str,
    scopes: object = SCOPES,
    *,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """A new token for ``store_id``. Added to the session: the caller commits, then shows ``token``."""
    errors: dict[str, list[str]] = {}
    if not isinstance(store_id, str) or not store_id.strip() or len(store_id) > 64:
        errors["store_id"] = ["Store id must be 1 to 64 characters."]
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        errors["name"] = ["Name the token (1 to 100 characters), so you can tell it apart later."]
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= utcnow()):
        errors["expires_at"] = ["Expiry must be a time in the future, with a timezone."]
    try:
        chosen = _scopes(scopes)
    except ValidationError as error:
        errors.update(error.errors)
    if errors:
        raise ValidationError(errors)
    prefix = secrets.token_hex(4)
    token = f"{_TOKEN_MARK}{prefix}_{secrets.token_urlsafe(32)}"
    row = state.models.ApiToken(
        store_id=store_id,
        name=name.strip(),
        token_prefix=f"{_TOKEN_MARK}{prefix}",
        token_hash=hash_token(token),
        scopes=" ".join(chosen),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    state.db.session.add(row)
    state.db.session.flush()
    return IssuedToken(_info(row), token)


def list_tokens(state: DiscordRolesState, store_id: str) -> list[TokenInfo]:
    """The store's tokens, newest first, revoked ones included (they say so)."""
    model = state.models.ApiToken
    rows = state.db.session.scalars(
        sa.select(model).where(model.store_id == store_id).order_by(model.id.desc())
    )
    return [_info(row) for row in rows]


def revoke_token(state: DiscordRolesState, store_id: str, token_id: int) -> bool:
    """Revoke one of the store's tokens; False when it has no such token. The caller commits."""
    model = state.models.ApiToken
    row = state.db.session.scalar(sa.select(model).where(model.store_id == store_id, model.id == token_id))
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return True


def authenticate(state: DiscordRolesState, token: str) -> ApiGrant | None:
    """The grant of a live token (not revoked, not expired), or None. Notes when it was last used."""
    if not token.startswith(_TOKEN_MARK):
        return None
    model = state.models.ApiToken
    now = utcnow()
    row = state.db.session.execute(
        sa.select(model.id, model.store_id, model.scopes, model.expires_at, model.last_used_at).where(
            model.token_hash == hash_token(token), model.revoked_at.is_(None)
        )
    ).first()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION:
        _note_use(state, row.id, now)
    return ApiGrant(
        store_id=row.store_id,
        scopes=frozenset(row.scopes.split()),
        # From the token, not its row id: apps with different databases may share one Redis.
        rate_key=f"token:{rate_key_for(token)}",
        token_id=row.id,
    )


@survives_transient_db_errors
def _note_use(state: DiscordRolesState, token_id: int, now: datetime) -> None:
    # Its own short transaction: the request's session may roll back, and a GET writes nothing else.
    model = state.models.ApiToken
    with state.db.engine.begin() as connection:
        connection.execute(sa.update(model).where(model.id == token_id).values(last_used_at=now))


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        store_id=row.store_id,
        name=row.name,
        prefix=row.token_prefix,
        scopes=row.scopes.split(),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
