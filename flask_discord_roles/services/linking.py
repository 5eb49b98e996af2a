"""A customer's linked Discord account in one store: linking, unlinking, their OAuth token, and joining
the store's servers with it.

Plain functions over the extension's state, in the host's session: nothing here commits. What must only
happen once the host commits (running the deliveries that came due, the ``account_linked`` and
``account_unlinked`` signals) is handed to :mod:`..dispatch`. Tokens are stored encrypted and never leave
this module except through :func:`access_token_for`; :class:`LinkedAccount` carries none.

Linking adds a member to a server *without* roles: Discord ignores ``roles`` for someone already there,
and giving roles through the queue keeps the provenance (did the member hold the role before we gave it)
that safe removal depends on. The rows for a server the customer is now in come due instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context

from ..crypto import DecryptionError
from ..discord.client import DiscordClient
from ..discord.errors import (
    INVALID_OAUTH_TOKEN,
    MISSING_ACCESS,
    MISSING_PERMISSIONS,
    DiscordError,
    Forbidden,
    NotFound,
    TransientDiscordError,
    Unauthorized,
)
from ..discord.oauth import GUILDS_JOIN, InvalidClient, InvalidGrant, OAuthError, TokenSet
from ..discord.snowflake import is_snowflake
from ..dispatch import dispatch_after_commit, send_after_commit
from ..extension import DiscordRolesState
from ..models import PENDING, DiscordAccount, LinkedGuild, utcnow
from ..signals import account_linked, account_unlinked
from .bots import avatar_url, client_for, get_bot
from .oauth_apps import oauth_app_for
from .queue import attach_discord_user
from .settings import queue_settings, store_settings

logger = logging.getLogger("flask_discord_roles.linking")

REFRESH_MARGIN = timedelta(minutes=5)
"""An access token this close to its end is refreshed first, so a join never races its expiry."""


@dataclass(frozen=True)
class LinkedAccount:
    """A customer's linked Discord account as pages and signals show it: no tokens."""

    customer_id: str
    discord_user_id: str
    username: str | None
    global_name: str | None
    avatar_url: str
    linked_at: datetime

    @property
    def display_name(self) -> str:
        """What Discord shows for the user: the display name, else the username, else the id."""
        return self.global_name or self.username or self.discord_user_id


class AccountTaken(Exception):
    """The Discord account is already linked to another customer of the same store."""

    def __init__(self, discord_user_id: str) -> None:
        self.discord_user_id = discord_user_id
        super().__init__(
            "This Discord account is already linked to another customer account in this store. Unlink "
            "it there first, or link a different Discord account."
        )


@dataclass(frozen=True)
class GuildJoins:
    """What adding a customer to the store's servers did.

    ``joined_guild_ids``: servers the customer was added to just now; ``present_guild_ids``: servers
    they are in now (added or already there); ``problems``: one sentence per server that failed;
    ``due``: deliveries that came due because the customer is now in their server.
    """

    joined_guild_ids: list[str] = field(default_factory=list)
    present_guild_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    due: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class LinkOutcome:
    """What linking changed: the account, the one it replaced, and what will run after commit."""

    account: LinkedAccount
    previous_discord_user_id: str | None
    due: list[int]
    joined_guild_ids: list[str]
    join_problems: list[str]


# -- reading ----------------------------------------------------------------------------------------


def get_account(state: DiscordRolesState, store_id: str, customer_id: str) -> LinkedAccount | None:
    """The customer's linked Discord account in the store, or None when they have not linked one."""
    row = _account_row(state, store_id, customer_id)
    return None if row is None else _public(row)


# -- linking ----------------------------------------------------------------------------------------


def link_account(
    state: DiscordRolesState,
    store_id: str,
    customer_id: str,
    *,
    user: Mapping[str, Any],
    tokens: TokenSet,
    now: datetime | None = None,
) -> LinkOutcome:
    """Link the Discord ``user`` (``GET /users/@me``) who granted ``tokens`` to the customer.

    Raises :class:`AccountTaken` (changing nothing) when that Discord account is linked to another
    customer of the store. Relinking to another Discord account replaces the old one: its tokens are
    revoked at Discord (best effort) and the customer's pending deliveries addressed to it follow the
    new account. Then the customer's queued deliveries get the Discord id; in automatic mode they come
    due. When the store adds customers to its servers and the grant allows it (``guilds.join``), the
    store's bot adds them to each linked server; a failure there never fails the link and is reported
    in ``join_problems``.

    Changes the session without committing. Due deliveries run, and ``account_linked`` is sent, once the
    host commits. Two customers linking the same Discord account at the same instant get past the check
    together; the unique constraint then stops the second with an :class:`sqlalchemy.exc.IntegrityError`
    (from this call's flush, or the commit): roll back and treat it as :class:`AccountTaken`.
    """
    now = now or utcnow()
    discord_user_id = str(user.get("id", ""))
    if not is_snowflake(discord_user_id):
        raise ValueError("the Discord user has no valid id")
    session = state.db.session
    model = state.models.DiscordAccount
    taken = session.scalar(
        sa.select(model.id).where(
            model.store_id == store_id,
            model.discord_user_id == discord_user_id,
            model.customer_id != customer_id,
        )
    )
    if taken is not None:
        raise AccountTaken(discord_user_id)

    # Locked so two tabs of the same customer linking at once apply one after the other.
    row = _account_row(state, store_id, customer_id, lock=True)
    previous: str | None = None
    old_token: str | None = None
    if row is None:
        row = model(store_id=store_id, customer_id=customer_id, linked_at=now)
        session.add(row)
    elif row.discord_user_id != discord_user_id:
        previous = row.discord_user_id
        old_token = _revocable_token(state, row)
        row.linked_at = now
    # The same account linked again keeps its link date; its new grant simply replaces the old one,
    # which is not revoked: revoking one of a user's tokens can end the application's whole
    # authorisation, new tokens included.
    row.discord_user_id = discord_user_id
    row.username = _text(user.get("username"), 100)
    row.global_name = _text(user.get("global_name"), 100)
    avatar = user.get("avatar")
    row.avatar = avatar if isinstance(avatar, str) and len(avatar) <= 64 else None
    _store_tokens(state, row, tokens, now)
    # Written before Discord is called: a conflicting concurrent link fails here (on PostgreSQL once
    # the other one commits), before anything is revoked or joined on its behalf.
    session.flush()

    automatic = queue_settings(state, store_id).delivery_mode == "automatic"
    due: list[int] = []
    if previous is not None:
        due += _move_pending(state, store_id, customer_id, previous, discord_user_id, automatic, now)
    due += attach_discord_user(state, store_id, customer_id, discord_user_id, now=now)
    if old_token is not None:
        _revoke(state, store_id, old_token)

    joins = GuildJoins()
    if store_settings(state, store_id).join_guilds_on_link:
        joins = _join(state, row, automatic, now)
    due += joins.due

    due = sorted(set(due))
    app = _app()
    if app is not None:
        if due:
            dispatch_after_commit(session(), app, delivery_ids=due)
        send_after_commit(
            session(),
            app,
            account_linked,
            store_id=store_id,
            customer_id=customer_id,
            discord_user_id=discord_user_id,
            previous_discord_user_id=previous,
        )
    return LinkOutcome(
        account=_public(row),
        previous_discord_user_id=previous,
        due=due,
        joined_guild_ids=joins.joined_guild_ids,
        join_problems=joins.problems,
    )


def unlink_account(state: DiscordRolesState, store_id: str, customer_id: str) -> LinkedAccount | None:
    """Remove the customer's link and tokens; None when there was none.

    The tokens are revoked at Discord first, best effort: Discord being down, or the grant already
    revoked, does not stop the unlink. Roles already delivered stay, as do deliveries already addressed
    to the Discord account. Changes the session; ``account_unlinked`` is sent once the host commits.
    """
    row = _account_row(state, store_id, customer_id)
    if row is None:
        return None
    unlinked = _public(row)
    token = _revocable_token(state, row)
    if token is not None:
        _revoke(state, store_id, token)
    session = state.db.session
    session.delete(row)
    session.flush()
    app = _app()
    if app is not None:
        send_after_commit(
            session(),
            app,
            account_unlinked,
            store_id=store_id,
            customer_id=customer_id,
            discord_user_id=unlinked.discord_user_id,
        )
    return unlinked


# -- the customer's token ---------------------------------------------------------------------------


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
    row = _account_row(state, store_id, customer_id)
    if row is None:
        return None
    return _usable_token(state, row, now or utcnow())


# -- joining the store's servers --------------------------------------------------------------------


def join_guilds(
    state: DiscordRolesState, store_id: str, customer_id: str, *, now: datetime | None = None
) -> GuildJoins:
    """Add the linked customer to each of the store's servers with their token (refreshed if needed).

    What :func:`link_account` does when the store wants it, for a later attempt (say, after a server was
    linked or the bot invited again). Failures are reported per server in ``problems``, never raised.
    In automatic mode the deliveries for servers the customer is now in come due after commit.
    """
    now = now or utcnow()
    row = _account_row(state, store_id, customer_id)
    if row is None:
        return GuildJoins()
    automatic = queue_settings(state, store_id).delivery_mode == "automatic"
    joins = _join(state, row, automatic, now)
    app = _app()
    if joins.due and app is not None:
        dispatch_after_commit(state.db.session(), app, delivery_ids=joins.due)
    return joins


def _join(state: DiscordRolesState, row: DiscordAccount, automatic: bool, now: datetime) -> GuildJoins:
    guild_model = state.models.LinkedGuild
    guilds = list(
        state.db.session.scalars(
            sa.select(guild_model).where(guild_model.store_id == row.store_id).order_by(guild_model.id)
        )
    )
    if not guilds:
        return GuildJoins()
    if GUILDS_JOIN not in (row.scopes or "").split():
        return GuildJoins(
            problems=_for_each(
                guilds,
                "this Discord authorisation does not allow adding you to servers (guilds.join was not "
                "granted). Link Discord again to be added.",
            )
        )
    client, bot_problem = _bot_client(state, row.store_id)
    if client is None:
        return GuildJoins(problems=_for_each(guilds, bot_problem))
    try:
        token = _usable_token(state, row, now)
    except TransientDiscordError:
        return GuildJoins(problems=_for_each(guilds, _DISCORD_DOWN))
    if token is None:
        return GuildJoins(problems=_for_each(guilds, _GRANT_GONE))

    joins = GuildJoins()
    for index, guild in enumerate(guilds):
        problem: str | None = None
        try:
            added, token = _add_member(state, client, row, guild.guild_id, token, now)
        except _GrantGone:
            joins.problems.extend(_for_each(guilds[index:], _GRANT_GONE))
            break
        except TransientDiscordError:
            problem = _DISCORD_DOWN
        except Unauthorized:
            problem = "Discord refused the store's bot token; the store owner must save it again."
        except (Forbidden, NotFound) as error:
            problem = _refusal(error)
        except DiscordError as error:
            problem = f"Discord refused to add you ({error.message})."
        if problem is not None:
            joins.problems.append(f"{_label(guild)}: {problem}")
            continue
        if added:
            joins.joined_guild_ids.append(guild.guild_id)
        joins.present_guild_ids.append(guild.guild_id)
    if automatic and joins.present_guild_ids:
        joins.due.extend(_owed_in(state, row.store_id, row.discord_user_id, joins.present_guild_ids, now))
    return joins


class _GrantGone(Exception):
    """Discord no longer honours the customer's grant, even after a refresh."""


def _add_member(
    state: DiscordRolesState,
    client: DiscordClient,
    row: DiscordAccount,
    guild_id: str,
    token: str,
    now: datetime,
) -> tuple[bool, str]:
    """Add the customer to the server: whether they were added just now (False: already a member, which
    Discord answers 204), and the token that worked."""
    try:
        return client.add_guild_member(guild_id, row.discord_user_id, token) is not None, token
    except Forbidden as error:
        if error.code != INVALID_OAUTH_TOKEN:
            raise
    # Our expiry date said the token was good, Discord says it is not: refresh it once and try again.
    fresh = _usable_token(state, row, now, force_refresh=True)
    if fresh is None:
        raise _GrantGone
    return client.add_guild_member(guild_id, row.discord_user_id, fresh) is not None, fresh


_DISCORD_DOWN = "Discord did not answer. Your account is linked; you can join the server later."
_GRANT_GONE = "your Discord authorisation is no longer valid. Link Discord again to be added."


def _refusal(error: Forbidden | NotFound) -> str:
    if error.code == INVALID_OAUTH_TOKEN:
        return _GRANT_GONE
    if isinstance(error, NotFound) or error.code == MISSING_ACCESS:
        return "the store's bot is not in this server (or cannot see it); the store owner must invite it."
    if error.code == MISSING_PERMISSIONS:
        return "the store's bot may not add members here (it needs Create Invite); ask the store owner."
    return f"Discord refused to add you ({error.message})."


def _bot_client(state: DiscordRolesState, store_id: str) -> tuple[DiscordClient | None, str]:
    """The store's bot as a client, or None and why not in words."""
    bot = get_bot(state, store_id)
    if bot is None:
        return None, "the store has no Discord bot to add you with."
    if not bot.is_enabled:
        return None, "the store's Discord bot is switched off."
    try:
        return client_for(state, bot), ""
    except DecryptionError:
        return None, "the store's Discord bot cannot be used right now (its saved token cannot be read)."


def _owed_in(
    state: DiscordRolesState, store_id: str, discord_user_id: str, guild_ids: list[str], now: datetime
) -> list[int]:
    """Grants for the user in servers they are now in come due: the pending ones not being run right
    now, and those that failed only because the user was not in the server."""
    model = state.models.Delivery
    owed = sa.or_(
        sa.and_(
            model.status == PENDING,
            sa.or_(model.lease_expires_at.is_(None), model.lease_expires_at <= now),
        ),
        sa.and_(model.status == "failed", model.reason_code == "member_not_in_guild"),
    )
    return list(
        state.db.session.scalars(
            sa.update(model)
            .where(
                model.store_id == store_id,
                model.discord_user_id == discord_user_id,
                model.guild_id.in_(guild_ids),
                model.action == "add",
                model.revoked_at.is_(None),
                owed,
            )
            .values(
                status="pending",
                next_attempt_at=now,
                # A failed row starts its attempts afresh; a pending one keeps its retry budget.
                attempts=sa.case((model.status == "failed", 0), else_=model.attempts),
                leased_by=None,
                lease_expires_at=None,
                reason_code=None,
                reason=None,
                updated_at=now,
            )
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
    )


def _for_each(guilds: Iterable[LinkedGuild], problem: str) -> list[str]:
    return [f"{_label(guild)}: {problem}" for guild in guilds]


def _label(guild: LinkedGuild) -> str:
    return f"«{guild.name}»" if guild.name else f"Server {guild.guild_id}"


# -- relinking --------------------------------------------------------------------------------------


def _move_pending(
    state: DiscordRolesState,
    store_id: str,
    customer_id: str,
    old_user_id: str,
    new_user_id: str,
    automatic: bool,
    now: datetime,
) -> list[int]:
    """The customer's grants still waiting for the old account go to the new one; ids now due.

    Only grants not delivered yet move (removals stay with the account that got the role). A row a
    runner holds right now is left to finish for the account it was started for. In claim mode the
    moved rows wait for the new account's /claim rather than being sent to someone who never asked.
    """
    model = state.models.Delivery
    values: dict[str, Any] = {"discord_user_id": new_user_id, "updated_at": now}
    if automatic:
        values.update(next_attempt_at=now, reason_code=None, reason=None)
    else:
        values.update(next_attempt_at=None)
    moved = list(
        state.db.session.scalars(
            sa.update(model)
            .where(
                model.store_id == store_id,
                model.customer_id == customer_id,
                model.discord_user_id == old_user_id,
                model.status == PENDING,
                model.action == "add",
                model.revoked_at.is_(None),
                sa.or_(model.lease_expires_at.is_(None), model.lease_expires_at <= now),
            )
            .values(values)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
    )
    return moved if automatic else []


# -- tokens -----------------------------------------------------------------------------------------


def _store_tokens(state: DiscordRolesState, row: DiscordAccount, tokens: TokenSet, now: datetime) -> None:
    row.access_token_ciphertext = state.cipher.encrypt(tokens.access_token)
    row.refresh_token_ciphertext = (
        state.cipher.encrypt(tokens.refresh_token) if tokens.refresh_token else None
    )
    row.token_expires_at = tokens.expires_at
    row.scopes = " ".join(tokens.scopes)[:255] or None
    row.updated_at = now


def _clear_tokens(state: DiscordRolesState, row: DiscordAccount, now: datetime) -> None:
    row.access_token_ciphertext = row.refresh_token_ciphertext = None
    row.token_expires_at = None
    row.updated_at = now
    state.db.session.flush()


def _usable_token(
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
        _clear_tokens(state, row, now)
        return None


def _refresh(state: DiscordRolesState, row: DiscordAccount, now: datetime) -> str | None:
    if row.refresh_token_ciphertext is None:
        _clear_tokens(state, row, now)
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
        _clear_tokens(state, row, now)
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
    _store_tokens(state, row, tokens, now)
    state.db.session.flush()
    return tokens.access_token


def _revocable_token(state: DiscordRolesState, row: DiscordAccount) -> str | None:
    """The token whose revocation ends the grant (the refresh token, else the access token)."""
    ciphertext = row.refresh_token_ciphertext or row.access_token_ciphertext
    if ciphertext is None:
        return None
    try:
        return state.cipher.decrypt(ciphertext)
    except DecryptionError:
        return None  # unreadable: it cannot be revoked, nor used by anyone holding our database


def _revoke(state: DiscordRolesState, store_id: str, token: str) -> None:
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


# -- helpers ----------------------------------------------------------------------------------------


def _account_row(
    state: DiscordRolesState, store_id: str, customer_id: str, *, lock: bool = False
) -> DiscordAccount | None:
    model = state.models.DiscordAccount
    query = sa.select(model).where(model.store_id == store_id, model.customer_id == customer_id)
    if lock:
        query = query.with_for_update()
    return state.db.session.scalar(query)


def _public(row: DiscordAccount) -> LinkedAccount:
    return LinkedAccount(
        customer_id=row.customer_id,
        discord_user_id=row.discord_user_id,
        username=row.username,
        global_name=row.global_name,
        avatar_url=avatar_url(row.discord_user_id, row.avatar),
        linked_at=row.linked_at,
    )


def _text(value: object, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _app() -> Flask | None:
    """The app to send after-commit work as; None outside an app context (nothing to send to)."""
    if not has_app_context():
        return None
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app
