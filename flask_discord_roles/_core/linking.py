"""A customer's linked Discord account in one store: linking and unlinking it.

Plain functions over the extension's state, in the host's session: nothing here commits. What must only
happen once the host commits (running the deliveries that came due, the ``account_linked`` and
``account_unlinked`` signals) is handed to :mod:`..dispatch`. Tokens are stored encrypted and never leave
:mod:`.customer_tokens` except through its ``access_token_for``; :class:`LinkedAccount` carries none.
Joining the store's servers on link is :mod:`.guild_joins`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.customer_tokens import (
    access_token_for,
    account_row,
    revocable_token,
    revoke,
    store_tokens,
)
from flask_discord_roles._core.guild_joins import GuildJoins, join_guilds, join_linked_guilds
from flask_discord_roles._core.linked_roles import queue_connection
from flask_discord_roles._core.queue import attach_discord_user
from flask_discord_roles._core.role_connection_sender import withdraw_connection
from flask_discord_roles._core.settings import queue_settings, store_settings
from flask_discord_roles._runtime.dispatch import (
    current_app_or_none,
    dispatch_after_commit,
    send_after_commit,
)
from flask_discord_roles._runtime.models import PENDING, DiscordAccount, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import Action, DeliveryMode
from flask_discord_roles.discord.oauth import TokenSet
from flask_discord_roles.discord.snowflake import avatar_url, is_snowflake
from flask_discord_roles.errors import Conflict
from flask_discord_roles.signals import account_linked, account_unlinked

__all__ = [
    "AccountTaken",
    "GuildJoins",
    "LinkOutcome",
    "LinkedAccount",
    "access_token_for",
    "get_account",
    "join_guilds",
    "link_account",
    "unlink_account",
]


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


class AccountTaken(Conflict):
    """The Discord account is already linked to another customer of the same store."""

    def __init__(self, discord_user_id: str) -> None:
        self.discord_user_id = discord_user_id
        super().__init__(
            "This Discord account is already linked to another customer account in this store. Unlink "
            "it there first, or link a different Discord account."
        )


@dataclass(frozen=True)
class LinkOutcome:
    """What linking changed: the account, the one it replaced, and what will run after commit."""

    account: LinkedAccount
    previous_discord_user_id: str | None
    due: list[int]
    joined_guild_ids: list[str]
    join_problems: list[str]


def get_account(state: DiscordRolesState, store_id: str, customer_id: str) -> LinkedAccount | None:
    """The customer's linked Discord account in the store, or None when they have not linked one."""
    row = account_row(state, store_id, customer_id)
    return None if row is None else _public(state, row)


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
    _refuse_if_taken(state, store_id, customer_id, discord_user_id)
    row, previous, old_token = _write_account(
        state, store_id, customer_id, discord_user_id, user, tokens, now
    )
    # Written before Discord is called: a conflicting concurrent link fails here (on PostgreSQL once
    # the other one commits), before anything is revoked or joined on its behalf.
    state.db.session.flush()

    automatic = queue_settings(state, store_id).delivery_mode == DeliveryMode.AUTOMATIC
    due: list[int] = []
    if previous is not None:
        due += _move_pending(state, store_id, customer_id, previous, discord_user_id, automatic, now)
    due += attach_discord_user(state, store_id, customer_id, discord_user_id, now=now)
    if old_token is not None:
        revoke(state, store_id, old_token)

    joins = GuildJoins()
    if store_settings(state, store_id).join_guilds_on_link:
        joins = join_linked_guilds(state, row, automatic, now)
    due += joins.due
    queue_connection(state, store_id, customer_id, discord_user_id=discord_user_id, now=now)

    due = sorted(set(due))
    _after_commit(state, store_id, customer_id, discord_user_id, previous, due)
    return LinkOutcome(
        account=_public(state, row),
        previous_discord_user_id=previous,
        due=due,
        joined_guild_ids=joins.joined_guild_ids,
        join_problems=joins.problems,
    )


def _refuse_if_taken(state: DiscordRolesState, store_id: str, customer_id: str, discord_user_id: str) -> None:
    """Raise :class:`AccountTaken` when another customer of the store has this Discord account."""
    model = state.models.DiscordAccount
    taken = state.db.session.scalar(
        sa.select(model.id).where(
            model.store_id == store_id,
            model.discord_user_id == discord_user_id,
            model.customer_id != customer_id,
        )
    )
    if taken is not None:
        raise AccountTaken(discord_user_id)


def _write_account(
    state: DiscordRolesState,
    store_id: str,
    customer_id: str,
    discord_user_id: str,
    user: Mapping[str, Any],
    tokens: TokenSet,
    now: datetime,
) -> tuple[DiscordAccount, str | None, str | None]:
    """Write the Discord ``user`` and their tokens to the customer's account row (made if they have none).

    Returns the row, the Discord account it replaced (None: none, or the same one again) and that
    account's token to revoke once the link is written.
    """
    # Locked so two tabs of the same customer linking at once apply one after the other.
    row = account_row(state, store_id, customer_id, lock=True)
    previous: str | None = None
    old_token: str | None = None
    if row is None:
        row = state.models.DiscordAccount(store_id=store_id, customer_id=customer_id, linked_at=now)
        state.db.session.add(row)
    elif row.discord_user_id != discord_user_id:
        previous = row.discord_user_id
        old_token = revocable_token(state, row)
        row.linked_at = now
    # The same account linked again keeps its link date; its new grant simply replaces the old one,
    # which is not revoked: revoking one of a user's tokens can end the application's whole
    # authorisation, new tokens included.
    row.discord_user_id = discord_user_id
    row.username = _text(user.get("username"), 100)
    row.global_name = _text(user.get("global_name"), 100)
    avatar = user.get("avatar")
    row.avatar = avatar if isinstance(avatar, str) and len(avatar) <= 64 else None
    store_tokens(state, row, tokens, now)
    return row, previous, old_token


def _after_commit(
    state: DiscordRolesState,
    store_id: str,
    customer_id: str,
    discord_user_id: str,
    previous: str | None,
    due: list[int],
) -> None:
    """Once the host commits: run the deliveries that came due, and send ``account_linked``."""
    app = current_app_or_none()
    if app is None:
        return
    session = state.db.session
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


def unlink_account(state: DiscordRolesState, store_id: str, customer_id: str) -> LinkedAccount | None:
    """Remove the customer's link and tokens; None when there was none.

    The customer's Linked Roles connection is removed and the tokens revoked at Discord first, best
    effort: Discord being down, or the grant already revoked, does not stop the unlink. Roles already
    delivered stay, as do deliveries already addressed to the Discord account. Changes the session;
    ``account_unlinked`` is sent once the host commits.
    """
    row = account_row(state, store_id, customer_id)
    if row is None:
        return None
    unlinked = _public(state, row)
    withdraw_connection(state, row, utcnow())
    token = revocable_token(state, row)
    if token is not None:
        revoke(state, store_id, token)
    session = state.db.session
    session.delete(row)
    session.flush()
    app = current_app_or_none()
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
                model.action == Action.ADD,
                model.revoked_at.is_(None),
                sa.or_(model.lease_expires_at.is_(None), model.lease_expires_at <= now),
            )
            .values(values)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
    )
    return moved if automatic else []


def _public(state: DiscordRolesState, row: DiscordAccount) -> LinkedAccount:
    return LinkedAccount(
        customer_id=row.customer_id,
        discord_user_id=row.discord_user_id,
        username=row.username,
        global_name=row.global_name,
        avatar_url=avatar_url(row.discord_user_id, row.avatar, state.settings.cdn_url),
        linked_at=row.linked_at,
    )


def _text(value: object, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None
