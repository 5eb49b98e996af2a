"""The two sweeps over time-limited grants: ending those past ``ends_at``, reminding before expiry.

Each reads only the rows of its partial index (``ix_discord_roles_grants_ending``,
``ix_discord_roles_grants_reminders``), oldest due first, a batch at a time, so its cost follows what
is due, never the size of the table. Both are safe with several workers at once: a grant is ended,
and a reminder claimed, by one guarded UPDATE that only one of them can win (on PostgreSQL the
candidates are also picked ``FOR UPDATE SKIP LOCKED``, so workers do not wait on each other).

They run in an app context, in the app's session, and commit: the worker calls them on every pass
(:mod:`flask_discord_roles._engine.worker`), a host with its own scheduler through
:mod:`flask_discord_roles.grants`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.bots import client_for, get_bot
from flask_discord_roles._core.grant_records import GrantInfo, grant_columns
from flask_discord_roles._core.grants import take_back
from flask_discord_roles._core.linked_roles import queue_connections
from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.dispatch import current_app_or_none, send_after_commit
from flask_discord_roles._runtime.models import Grant
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import GrantEnd, GrantStatus, ReasonCode
from flask_discord_roles.discord import errors as discord_errors
from flask_discord_roles.discord.errors import PermanentDiscordError, TransientDiscordError, Unauthorized
from flask_discord_roles.signals import grant_ended, grant_expiring

logger = logging.getLogger("flask_discord_roles.grants")

SWEEP_BATCH = 100
"""Grants ended (or reminders claimed) per transaction."""

ACTIVE: sa.ColumnClause[str] = sa.literal_column("'active'", sa.String)
"""``'active'`` written into the query, not bound: only then do SQLite and PostgreSQL's generic plans
see that the query's rows are the partial indexes' rows (``models.GRANT_ENDS`` / ``GRANT_REMINDS``)."""


# -- ending what is past its end -----------------------------------------------------------------------


@dataclass
class Ended:
    """What one sweep ended, and the removal rows it queued (due now)."""

    grants: list[GrantInfo] = field(default_factory=list)
    due: list[int] = field(default_factory=list)


def due_to_end(model: type[Grant], now: datetime, batch_size: int) -> sa.Select[int]:
    """The ids of the next ``batch_size`` grants past their end: a range of the ``ending`` index."""
    return (
        sa.select(model.id)
        .where(model.status == ACTIVE, model.ends_at.is_not(None), model.ends_at <= now)
        .order_by(model.ends_at)
        .limit(batch_size)
    )


def end_batch(model: type[Grant], now: datetime, batch_size: int, dialect: str) -> sa.Update:
    """The UPDATE that ends the next batch of due grants and returns them as :class:`GrantInfo` columns.

    One statement claims the batch: a grant another worker ended first is no longer ``'active'``; on
    PostgreSQL the candidates are locked ``SKIP LOCKED`` so a second worker takes the next ones instead
    of waiting.
    """
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    candidates = due_to_end(model, now, batch_size)
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        table.update()
        .where(table.c.id.in_(candidates.scalar_subquery()), table.c.status == ACTIVE)
        .values(status=GrantStatus.ENDED, end_reason=GrantEnd.EXPIRED, ended_at=now, updated_at=now)
        .returning(*(table.c[column.key] for column in grant_columns(model)))
    )


def end_due_grants(
    state: DiscordRolesState,
    *,
    now: datetime,
    batch_size: int = SWEEP_BATCH,
    max_batches: int | None = None,
) -> Ended:
    """End every active grant whose ``ends_at`` has passed (``expired``) and queue its roles' removal.

    Batches of ``batch_size``, each one transaction of the app's session (committed here):
    :func:`~._core.queue.revoke_order` of each grant's starting order with reason ``grant_expired``,
    then :data:`~flask_discord_roles.signals.grant_ended` for each, after the commit. Stops when nothing
    is due or after ``max_batches``. The removal rows are due at once: the worker's drain (or the
    executor, when the caller hands them over) runs them.
    """
    ended = Ended()
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        batch, due = _end_one_batch(state, now, batch_size)
        ended.grants += batch
        ended.due += due
        if len(batch) < batch_size:
            break
    return ended


@survives_transient_db_errors  # one transaction, no Discord call: safe to run again
def _end_one_batch(
    state: DiscordRolesState, now: datetime, batch_size: int
) -> tuple[list[GrantInfo], list[int]]:
    session = state.db.session
    statement = end_batch(state.models.Grant, now, batch_size, session.get_bind().dialect.name)
    try:
        batch = [GrantInfo.from_row(row) for row in session.connection().execute(statement)]
        queued = take_back(state, batch, now=now, reason_code=ReasonCode.GRANT_EXPIRED)
        for store_id in sorted({info.store_id for info in batch}):
            customers = [info.customer_id for info in batch if info.store_id == store_id]
            queue_connections(state, store_id, customers, now=now)
        app = current_app_or_none()
        if app is not None:
            for info in batch:
                send_after_commit(session(), app, grant_ended, grant=info)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return batch, queued.due


# -- reminding before expiry ---------------------------------------------------------------------------


def due_reminders(model: type[Grant], now: datetime, batch_size: int) -> sa.Select[int]:
    """The ids of the next reminders due: a range of the ``reminders`` index."""
    return (
        sa.select(model.id)
        .where(
            model.status == ACTIVE,
            model.remind_at.is_not(None),
            model.reminded_at.is_(None),
            model.remind_at <= now,
        )
        .order_by(model.remind_at)
        .limit(batch_size)
    )


def send_due_reminders(state: DiscordRolesState, *, now: datetime, batch_size: int = SWEEP_BATCH) -> int:
    """Remind the members whose grants expire within the store's ``expiry_reminder_hours``; how many.

    Each reminder is first claimed (``reminded_at`` set by an UPDATE that only matches while it is
    unset, committed) and only then sent, so it goes at most once, whatever runs at the same time;
    a renewal committed before the claim moved ``remind_at`` and the old period's reminder never
    goes. Sending is :data:`~flask_discord_roles.signals.grant_expiring` and, when the store has
    ``expiry_reminder_dm`` on, a direct message from the store's bot. A DM that does not go is not
    tried again (at most once means a failure is final): ``reminder_reason_code`` says why
    (``dms_closed`` when the member does not accept DMs from the bot, ``discord_unavailable`` when
    Discord was down, ...). One batch per call.
    """
    sent = 0
    ids = _due_reminder_ids(state, now, batch_size)
    for grant_id in ids:
        info = _claim_reminder(state, grant_id, now)
        if info is None:
            continue  # another worker claimed it, or a renewal moved it
        sent += 1
        app = current_app_or_none()
        if app is not None:
            try:
                grant_expiring.send(app, grant=info)
            except Exception:  # the reminder is claimed: a receiver's bug must not stop the others
                logger.exception("a receiver of grant_expiring raised")
        code = _direct_message(state, info)
        if code is not None:
            _record_unsent(state, grant_id, code)
    return sent


@survives_transient_db_errors
def _due_reminder_ids(state: DiscordRolesState, now: datetime, batch_size: int) -> list[int]:
    session = state.db.session
    try:
        ids = list(session.scalars(due_reminders(state.models.Grant, now, batch_size)))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return ids


@survives_transient_db_errors  # the UPDATE only matches an unclaimed reminder: safe to run again
def _claim_reminder(state: DiscordRolesState, grant_id: int, now: datetime) -> GrantInfo | None:
    """Take the reminder for this worker: it matches only while unsent and still due (a renewal
    committed first moved ``remind_at`` on)."""
    model = state.models.Grant
    table = model.__table__  # type: ignore[attr-defined]
    session = state.db.session
    try:
        row = (
            session.connection()
            .execute(
                table.update()
                .where(
                    table.c.id == grant_id,
                    table.c.status == ACTIVE,
                    table.c.reminded_at.is_(None),
                    table.c.remind_at <= now,
                )
                .values(reminded_at=now)
                .returning(*(table.c[column.key] for column in grant_columns(model)))
            )
            .first()
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return None if row is None else GrantInfo.from_row(row)


@survives_transient_db_errors
def _record_unsent(state: DiscordRolesState, grant_id: int, code: ReasonCode) -> None:
    """Why the DM did not go; it is not tried again (the reminder stays claimed)."""
    table = state.models.Grant.__table__  # type: ignore[attr-defined]
    session = state.db.session
    try:
        session.connection().execute(
            table.update().where(table.c.id == grant_id).values(reminder_reason_code=code)
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _direct_message(state: DiscordRolesState, grant: GrantInfo) -> ReasonCode | None:
    """DM the member that ``grant`` expires; None when it went (or the store wants no DMs), else why not."""
    settings = state.models.StoreSettings
    wants_dm = state.db.session.scalar(
        sa.select(settings.expiry_reminder_dm).where(settings.store_id == grant.store_id)
    )
    if wants_dm is False:
        return None
    user_id = grant.discord_user_id or _linked_discord_user(state, grant)
    if user_id is None:
        return ReasonCode.WAITING_FOR_CUSTOMER
    bot = get_bot(state, grant.store_id)
    if bot is None:
        return ReasonCode.NO_BOT
    if not bot.is_enabled:
        return ReasonCode.BOT_DISABLED
    message = reminder_message(state, grant)
    state.db.session.commit()  # no transaction stays open while Discord is called
    try:
        client = client_for(state, bot)
        channel = client.create_dm(user_id)
        client.create_message(str(channel["id"]), message)
    except DecryptionError:
        return ReasonCode.TOKEN_UNREADABLE
    except TransientDiscordError as error:
        logger.warning("expiry reminder for grant %s not sent, not retried: %s", grant.id, error)
        return ReasonCode.DISCORD_UNAVAILABLE
    except Unauthorized:
        return ReasonCode.TOKEN_REVOKED
    except PermanentDiscordError as error:
        if error.code == discord_errors.CANNOT_MESSAGE_USER:
            return ReasonCode.DMS_CLOSED
        logger.warning("expiry reminder for grant %s refused by Discord: %s", grant.id, error)
        return ReasonCode.DISCORD_REJECTED
    return None


def _linked_discord_user(state: DiscordRolesState, grant: GrantInfo) -> str | None:
    """The Discord account the grant's customer linked (a grant bought before linking has none)."""
    if grant.customer_id is None:
        return None
    account = state.models.DiscordAccount
    return state.db.session.scalar(
        sa.select(account.discord_user_id).where(
            account.store_id == grant.store_id, account.customer_id == grant.customer_id
        )
    )


def reminder_message(state: DiscordRolesState, grant: GrantInfo) -> dict[str, Any]:
    """The DM: which purchase expires when (a Discord timestamp, shown in the member's own time zone),
    which roles go with it, and that renewing keeps them. Mentions never ping."""
    mapping = state.models.RoleMapping
    roles = sorted(
        {
            name
            for name in state.db.session.scalars(
                sa.select(mapping.role_name).where(
                    mapping.store_id == grant.store_id, mapping.package_id == grant.package_id
                )
            )
            if name
        }
    )
    store = state.loaders.name_of_store(grant.store_id)
    assert grant.expires_at is not None  # only grants with an expiry have a reminder
    when = int(grant.expires_at.timestamp())
    text = f"Your purchase **{grant.package_id}** from **{store}** expires <t:{when}:R> (<t:{when}:f>)."
    if len(roles) == 1:
        text += f" Your role **{roles[0]}** goes with it: renew to keep it."
    elif roles:
        text += f" Your roles {', '.join(f'**{name}**' for name in roles)} go with it: renew to keep them."
    return {"content": text[:2000], "allowed_mentions": {"parse": []}}
