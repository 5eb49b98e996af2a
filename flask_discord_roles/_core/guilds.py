"""Linking a Discord server to a store with a one-time code, typed by a server manager as ``/link``.

The store owner generates a code in the host's dashboard; only its SHA-256 is stored. ``/link`` spends
it with one conditional UPDATE, so two managers racing with the same code cannot both succeed, and a
code is good for one server, once, before it expires.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import sqlalchemy as sa

from flask_discord_roles._core.role_gate import first_delivery_id_of_new_link
from flask_discord_roles._runtime.dialects import supported_insert
from flask_discord_roles._runtime.dispatch import current_app_or_none, send_after_commit
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.signals import guild_linked

LINK_CODE_LIFETIME = timedelta(minutes=30)
# No 0/O, 1/I/L: the code is read off a screen and typed into Discord.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 10


@dataclass(frozen=True)
class IssuedCode:
    """A new link code: show ``code`` to the store owner once; it cannot be read back later."""

    code: str
    expires_at: datetime

    def __repr__(self) -> str:  # the code is a credential until it is used
        return f"IssuedCode(code='***', expires_at={self.expires_at!r})"


class LinkRefusal(Enum):
    """Why a code did not link the server, each with the words a server manager sees."""

    UNKNOWN = "That link code is not valid. Copy it again from the store's Discord settings."
    USED = "That link code was already used. Generate a new one in the store's Discord settings."
    EXPIRED = "That link code has expired. Generate a new one in the store's Discord settings."
    OTHER_STORE = "That link code belongs to another store's bot. Use it with that store's bot."


def create_link_code(state: DiscordRolesState, store_id: str, *, now: datetime | None = None) -> IssuedCode:
    """A fresh one-time code for ``store_id``, valid for :data:`LINK_CODE_LIFETIME`. Caller commits."""
    now = now or utcnow()
    code = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))
    expires_at = now + LINK_CODE_LIFETIME
    state.db.session.add(
        state.models.LinkCode(store_id=store_id, code_hash=_hash(code), expires_at=expires_at, created_at=now)
    )
    return IssuedCode(f"{code[:5]}-{code[5:]}", expires_at)


def link_guild(
    state: DiscordRolesState,
    store_id: str,
    code: str,
    guild_id: str,
    linked_by_user_id: str,
    *,
    now: datetime | None = None,
) -> LinkRefusal | None:
    """Spend ``code`` (issued to ``store_id``) to link ``guild_id``; None when linked. Caller commits."""
    now = now or utcnow()
    model = state.models.LinkCode
    session = state.db.session
    code_hash = _hash(code)
    spent = session.execute(
        sa.update(model)
        .where(
            model.code_hash == code_hash,
            model.store_id == store_id,
            model.used_at.is_(None),
            model.expires_at > now,
        )
        .values(used_at=now, used_in_guild_id=guild_id)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    ).first()
    if spent is None:
        return _why_not(state, code_hash, store_id, now)
    _upsert_link(state, store_id, guild_id, linked_by_user_id, now)
    app = current_app_or_none()
    if app is not None:
        send_after_commit(
            session(),
            app,
            guild_linked,
            store_id=store_id,
            guild_id=guild_id,
            linked_by_user_id=linked_by_user_id,
        )
    return None


def _upsert_link(state: DiscordRolesState, store_id: str, guild_id: str, user_id: str, now: datetime) -> None:
    """Link (or link again) in one statement, so two managers linking at once cannot collide."""
    table = state.models.LinkedGuild.__table__  # type: ignore[attr-defined]
    connection = state.db.session.connection()
    # A new link owns only deliveries made from now on; linking an already linked server again keeps
    # its link, and so the rows it owns.
    values = {
        "store_id": store_id,
        "guild_id": guild_id,
        "linked_by_user_id": user_id,
        "linked_at": now,
        "deliveries_from_id": first_delivery_id_of_new_link(state.models),
    }
    statement = supported_insert(connection.dialect.name)(table).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["store_id", "guild_id"],
            set_={"linked_by_user_id": statement.excluded.linked_by_user_id, "linked_at": now},
        )
    )


def store_of_link_code(state: DiscordRolesState, code: str) -> str | None:
    """The store that issued ``code`` (used or not), or None when no store did."""
    model = state.models.LinkCode
    store_id: str | None = state.db.session.scalar(
        sa.select(model.store_id).where(model.code_hash == _hash(code))
    )
    return store_id


def _why_not(state: DiscordRolesState, code_hash: str, store_id: str, now: datetime) -> LinkRefusal:
    model = state.models.LinkCode
    row = state.db.session.execute(
        sa.select(model.store_id, model.used_at, model.expires_at).where(model.code_hash == code_hash)
    ).first()
    if row is None:
        return LinkRefusal.UNKNOWN
    if row.store_id != store_id:
        return LinkRefusal.OTHER_STORE
    if row.used_at is not None:
        return LinkRefusal.USED
    return LinkRefusal.EXPIRED


def _hash(code: str) -> str:
    # Typed codes come back in any case, with or without the dash, sometimes with spaces.
    normalised = "".join(character for character in code.upper() if character.isalnum())
    return hashlib.sha256(normalised.encode()).hexdigest()
