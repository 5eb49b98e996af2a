"""A linked customer's OAuth tokens: kept encrypted, refreshed before they run out, revoked on unlink.

Discord rotates the refresh token on every refresh, so a refresh happens with the account row locked: of
two concurrent ones the second finds the first's new tokens instead of failing on the old one. A grant
Discord no longer honours clears the stored tokens: for joining servers the customer counts as no longer
linked, while the account row stays so roles can still be delivered to the Discord id.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from flask_discord_roles._core.oauth_apps import oauth_app_for
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.models import DiscordAccount, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.discord.errors import DiscordError
from flask_discord_roles.discord.oauth import InvalidClient, InvalidGrant, OAuthError, TokenSet

logger = logging.getLogger("flask_discord_roles.linking")

REFRESH_MARGIN = timedelta(minutes=5)
"""An access token this close to its end is refreshed first, so a join never races its expiry."""


def access_token_for(
    state: DiscordRolesState, store_id: str, customer_id: str, *, now: datetime | None = None
) -> str | None:
    """The customer's usable access token, refreshed first (and stored again) when it has run out or
    is about to. None when there is no link or no token.

    A grant Discord no longer honours (revoked by the user, or issued by an application the store no
    longer uses) clears the stored tokens and answers None: the customer counts as no longer linked for
    joining, while the account row stays so roles can still be delivered to the Discord id. When the
    application's own credentials are refused, the tokens are kept (the grant may be fine once the
    operator fixes them) and None is answered. A :class:`TransientDiscordError` propagates.
    """
    row = account_row(state, store_id, customer_id)
    if row is None:
        return None
    return usable_token(state, row, now or utcnow())


def account_row(
    state: DiscordRolesState, store_id: str, customer_id: str, *, lock: bool = False
) -> DiscordAccount | None:
    model = state.models.DiscordAccount
    query = sa.select(model).where(model.store_id == store_id, model.customer_id == customer_id)
    if lock:
        query = query.with_for_update()
    return state.db.session.scalar(query)


def store_tokens(state: DiscordRolesState, row: DiscordAccount, tokens: TokenSet, now: datetime) -> None:
    row.access_token_ciphertext = state.cipher.encrypt(tokens.access_token)
    row.refresh_token_ciphertext = (
        state.cipher.encrypt(tokens.refresh_token) if tokens.refresh_token else None
    )
    row.token_expires_at = tokens.expires_at
    row.scopes = " ".join(tokens.scopes)[:255] or None
    row.updated_at = now


def clear_tokens(state: DiscordRolesState, row: DiscordAccount, now: datetime) -> None:
    row.access_token_ciphertext = row.refresh_token_ciphertext = None
    row.token_expires_at = None
    row.updated_at = now
    state.db.session.flush()


def usable_token(
    state: DiscordRolesState, row: DiscordAccount, now: datetime, *, force_refresh: bool = False
) -> str | None:
    seen = row.access_token_ciphertext
    if seen is None:
        return None
    if not force_refresh and _fresh(row, now):
        return _decrypt_or_clear(state, row, seen, now)
    # Locked and read again: Discord rotates the refresh token, so of two concurrent refreshes with
    # the same one the second would fail and wipe the first's good tokens. The second waits here and
    # then finds the new tokens instead.
    state.db.session.refresh(row, with_for_update=True)
    current = row.access_token_ciphertext
    if current is None:
        return None
    if (current != seen or not force_refresh) and _fresh(row, now):
        return _decrypt_or_clear(state, row, current, now)
    return _refresh(state, row, now)


def _fresh(row: DiscordAccount, now: datetime) -> bool:
    # No expiry known: Discord always sends one, so this is a row from elsewhere; use it as it is.
    return row.token_expires_at is None or row.token_expires_at > now + REFRESH_MARGIN


def _decrypt_or_clear(
    state: DiscordRolesState, row: DiscordAccount, ciphertext: str, now: datetime
) -> str | None:
    try:
        return state.cipher.decrypt(ciphertext)
    except DecryptionError:
        # Its key was removed: the token is lost to us, exactly as if the customer had revoked it.
        clear_tokens(state, row, now)
        return None


def _refresh(state: DiscordRolesState, row: DiscordAccount, now: datetime) -> str | None:
    if row.refresh_token_ciphertext is None:
        clear_tokens(state, row, now)
        return None
    refresh_token = _decrypt_or_clear(state, row, row.refresh_token_ciphertext, now)
    if refresh_token is None:
        return None
    app = oauth_app_for(state, row.store_id)
    if app is None:
        logger.warning(
            "store %s: cannot refresh a customer's Discord token: no OAuth application is configured",
            row.store_id,
        )
        return None
    try:
        with app.client(state) as client:
            tokens = client.refresh(refresh_token)
    except InvalidGrant:
        clear_tokens(state, row, now)
        return None
    except InvalidClient:
        logger.warning(
            "store %s: Discord refused the OAuth application's credentials (client id %s) while "
            "refreshing a customer's token; the token is kept",
            row.store_id,
            app.client_id,
        )
        return None
    except OAuthError as error:
        logger.warning("store %s: refreshing a customer's Discord token was refused: %s", row.store_id, error)
        return None
    store_tokens(state, row, tokens, now)
    state.db.session.flush()
    return tokens.access_token


def revocable_token(state: DiscordRolesState, row: DiscordAccount) -> str | None:
    """The token whose revocation ends the grant (the refresh token, else the access token)."""
    ciphertext = row.refresh_token_ciphertext or row.access_token_ciphertext
    if ciphertext is None:
        return None
    try:
        return state.cipher.decrypt(ciphertext)
    except DecryptionError:
        return None  # unreadable: it cannot be revoked, nor used by anyone holding our database


def revoke(state: DiscordRolesState, store_id: str, token: str) -> None:
    """Revoke a grant at Discord, best effort: the link goes either way, and a grant that cannot be
    revoked now still ends when the user removes the application or the token runs out."""
    app = oauth_app_for(state, store_id)
    if app is None:
        logger.warning("store %s: a customer's Discord token was not revoked: no OAuth application", store_id)
        return
    try:
        with app.client(state) as client:
            client.revoke(token)
    except DiscordError as error:
        logger.info("store %s: revoking a customer's Discord token failed: %s", store_id, error)
