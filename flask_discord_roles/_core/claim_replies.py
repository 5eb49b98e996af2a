"""Deferred ``/claim`` answers: edit the interaction's message once the roles it queued have settled.

The webhook answers Discord at once with a deferred (type 5) response and queues a :class:`ClaimReply`
in the same transaction as the deliveries. Whatever runs deliveries (thread, worker, celery, inline)
then runs the reply: while a delivery it waits for is still scheduled, the reply is looked at again
when that delivery comes due; once all have settled (or the answer cannot wait any longer, because the
interaction token dies after 15 minutes), it edits ``@original`` with what was delivered and what was
not, in words.

Discord refuses an edit of an interaction it has no answer to yet (404, 10015 Unknown Webhook), and the
deferral is the webhook's HTTP response, which is only on its way once the request is over. So a reply
is queued *not yet due* and made due once that response has been sent (:func:`answer_sent`), which is
the one rule every executor follows, since each runs only due rows. Answering synchronously with the
inline executor was the other way out; it would leave the deferred path untested where hosts test, and
would not help an eager Celery or a fast background thread, which also ran before the response.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any

import sqlalchemy as sa
from flask import Flask

from flask_discord_roles._core.claims import Listed, deliveries_by_id
from flask_discord_roles._core.leasing import LeasedQueue
from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.dispatch import run_after_response
from flask_discord_roles._runtime.executor import Work
from flask_discord_roles._runtime.models import ClaimReply, Models, UTCDateTime, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState, get_state
from flask_discord_roles.codes import ReasonCode, SendStatus, Status
from flask_discord_roles.discord import interactions as discord
from flask_discord_roles.discord.errors import PermanentDiscordError, RateLimited, TransientDiscordError

logger = logging.getLogger("flask_discord_roles.claim_replies")

ANSWER_WITHIN = timedelta(minutes=12)
"""How long a reply waits for its deliveries: Discord's interaction token dies at 15 minutes."""

REPLY_MEMORY = timedelta(days=1)
"""How long a sent (or failed) answer is kept; its interaction token died long before."""

RECHECK = timedelta(seconds=0.25)
"""How soon a reply looks again when a delivery it waits for is due now (another runner has it)."""

ACKNOWLEDGED_WITHIN = timedelta(seconds=3)
"""When a reply comes due if nothing says its deferral was sent (a crash, a response never closed).

Discord waits 3 seconds for an interaction's answer: by then it has the deferral or has given up on the
interaction, so an edit can no longer get ahead of it."""


def queue_claim_reply(
    state: DiscordRolesState,
    app: Flask,
    *,
    store_id: str,
    application_id: str,
    interaction_token: str,
    delivery_ids: Sequence[int],
    notes: Sequence[str],
    now: datetime,
) -> int:
    """Queue the answer to a deferred /claim in the request's session; it runs once the deferral is sent.

    The reply is not due before :data:`ACKNOWLEDGED_WITHIN`; :func:`answer_sent` makes it due as soon
    as the request's response (the deferral) has gone out, and hands it to the executor.
    """
    session = state.db.session()
    row = {
        "store_id": store_id,
        "application_id": application_id,
        "token_ciphertext": state.cipher.encrypt(interaction_token),
        "delivery_ids": list(delivery_ids),
        "notes": list(notes),
        "status": SendStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now + ACKNOWLEDGED_WITHIN,
        "answer_by": now + ANSWER_WITHIN,
        "created_at": now,
    }
    reply_id: int = session.connection().scalar(_insert_reply(state.models), row)
    run_after_response(session, partial(answer_sent, app, [reply_id], delivery_ids=list(delivery_ids)))
    return reply_id


def answer_sent(app: Flask, reply_ids: Sequence[int], *, delivery_ids: Sequence[int] = ()) -> None:
    """Discord has these replies' deferrals: make them due now and hand them to the executor.

    The deliveries they wait for go along: they were handed over at commit, but with Celery that task
    may not have started yet, and the run that delivers them then answers straight after.
    """
    state = get_state(app)
    with app.app_context():
        with state.db.engine.begin() as connection:
            connection.execute(_make_due(state.models), {"ids": list(reply_ids), "now": utcnow()})
        state.executor.submit(app, Work(delivery_ids=set(delivery_ids), reply_ids=set(reply_ids)))


@cache
def _insert_reply(models: Models) -> sa.Insert:
    # Built once, as every statement a /claim runs: building costs more than sending.
    table = models.ClaimReply.__table__  # type: ignore[attr-defined]
    return sa.insert(table).returning(table.c.id)


@cache
def _make_due(models: Models) -> sa.Update:
    model = models.ClaimReply
    return (
        sa.update(model)
        .where(
            model.id.in_(sa.bindparam("ids", expanding=True)),
            model.status == SendStatus.PENDING,
            model.leased_by.is_(None),
        )
        .values(next_attempt_at=sa.bindparam("now", type_=UTCDateTime()))
    )


@survives_transient_db_errors
def forget_old_replies(models: Models, engine: sa.Engine, *, now: datetime) -> int:
    """Delete answers settled more than :data:`REPLY_MEMORY` ago; returns how many."""
    reply = models.ClaimReply
    with engine.begin() as connection:
        result = connection.execute(
            sa.delete(reply).where(reply.status != SendStatus.PENDING, reply.created_at < now - REPLY_MEMORY)
        )
        return int(result.rowcount)


def claim_answer(listed: Sequence[Listed], notes: Sequence[str], *, final: bool = True) -> dict[str, Any]:
    """The message a /claim leaves: one line per role it tried, then what it already knew."""
    lines = [_line(row, final=final) for row in listed]
    lines.extend(f"⚠️ {note}" for note in notes)
    delivered = sum(row.status == Status.COMPLETED for row in listed)
    if not lines:
        title, lines = "Nothing to claim", ["Everything you bought is already yours."]
    elif delivered == len(listed) and not notes:
        title = "Your roles are here"
    else:
        title = f"{delivered} of {len(listed)} roles delivered" if listed else "Nothing could be delivered"
    return {
        "embeds": [discord.embed(title, _fit(lines))],
        "allowed_mentions": {"parse": []},
    }


def _line(row: Listed, *, final: bool) -> str:
    order = f" (order {row.order_id})" if row.order_id else ""
    if row.status == Status.COMPLETED and row.reason:
        # Settled without a change: a higher tier of its group is theirs already.
        return f"☑️ {row.role}{order}: {row.reason}"
    if row.status == Status.COMPLETED:
        return f"✅ {row.role}{order}: delivered."
    if row.status == Status.FAILED:
        return f"❌ {row.role}{order}: not delivered. {row.reason or 'Discord refused it.'}"
    if row.status == Status.EXPIRED:
        return f"⌛ {row.role}{order}: {row.reason or 'expired.'}"
    if row.next_attempt_at is None:
        return f"⏸️ {row.role}{order}: waiting. {row.reason or ''}".rstrip()
    if final:
        return f"⏳ {row.role}{order}: still queued; Discord is busy. Run /check in a few minutes."
    return f"⏳ {row.role}{order}: on its way."


def _fit(lines: list[str]) -> str:
    """Join lines into an embed description, saying how many did not fit rather than cutting one."""
    text = ""
    for index, line in enumerate(lines):
        more = f"\n…and {len(lines) - index} more. Run /check to see them."
        candidate = f"{text}\n{line}" if text else line
        if len(candidate) + len(more) > discord.MAX_EMBED_DESCRIPTION and index < len(lines) - 1:
            return text + more
        text = candidate
    return text[: discord.MAX_EMBED_DESCRIPTION]


class ClaimReplySender(LeasedQueue):
    """Claims due claim replies under a lease; edits the message once their deliveries settled."""

    @property
    def model(self) -> type[ClaimReply]:
        return self.state.models.ClaimReply

    def release(self, reply_ids: Sequence[int]) -> None:
        """Give back claimed replies that were not run (a worker stopping); no attempt is spent."""
        for reply_id in reply_ids:
            self._finish(reply_id, SendStatus.PENDING, None, spent=False)

    def run(self, reply_id: int) -> str:
        """Send one claimed reply if its deliveries settled: ``sent``, ``waiting``, ``retried``, ``failed``
        or ``lost``."""
        now = self._clock()
        loaded = self._load(reply_id)
        if loaded is None:
            return "lost"
        reply, listed = loaded
        scheduled = [
            row.next_attempt_at for row in listed if row.status == Status.PENDING and row.next_attempt_at
        ]
        if scheduled and now < reply.answer_by:
            # Look again when the last of them is due to have run (but not before RECHECK).
            look_again = min(reply.answer_by, max(max(scheduled), now) + RECHECK)
            return self._finish(reply_id, SendStatus.PENDING, None, at=look_again, spent=False)
        try:
            token = self.state.cipher.decrypt(reply.token_ciphertext)
        except DecryptionError:
            return self._finish(reply_id, SendStatus.FAILED, ReasonCode.TOKEN_UNREADABLE)
        message = claim_answer(listed, reply.notes or [])
        try:
            self.state.clients.for_webhooks().edit_original_interaction_response(
                reply.application_id, token, message
            )
        except RateLimited as limited:
            code = ReasonCode.RATE_LIMITED if limited.from_discord else ReasonCode.PACED
            return self._finish(
                reply_id, SendStatus.PENDING, code, at=now + timedelta(seconds=limited.retry_after)
            )
        except TransientDiscordError:
            if reply.attempts >= self.state.settings.max_attempts or now >= reply.answer_by + timedelta(
                minutes=2
            ):
                return self._finish(reply_id, SendStatus.FAILED, ReasonCode.DISCORD_UNAVAILABLE)
            return self._finish(
                reply_id, SendStatus.PENDING, ReasonCode.DISCORD_UNAVAILABLE, at=now + timedelta(seconds=2)
            )
        except PermanentDiscordError as error:
            # Most often the token expired (the user's answer was too long in coming) or the message
            # was dismissed; the roles themselves are delivered either way.
            logger.info("claim reply %s could not be sent: %s (code %s)", reply_id, error.message, error.code)
            return self._finish(reply_id, SendStatus.FAILED, ReasonCode.DISCORD_REJECTED)
        return self._finish(reply_id, SendStatus.SENT, None)

    @survives_transient_db_errors
    def _load(self, reply_id: int) -> tuple[Any, list[Any]] | None:
        """The claimed reply and its deliveries as they stand; None when it is not ours any more."""
        model = self.model
        with self._engine.connect() as connection:
            reply = connection.execute(sa.select(model).where(model.id == reply_id)).first()
            if reply is None or reply.leased_by != self.runner_id:
                return None
            return reply, list(deliveries_by_id(connection, self.state.models.Delivery, reply.delivery_ids))

    @survives_transient_db_errors
    def _finish(
        self,
        reply_id: int,
        status: SendStatus,
        code: ReasonCode | None,
        *,
        at: datetime | None = None,
        spent: bool = True,
    ) -> str:
        model = self.model
        values: dict[str, Any] = {
            "status": status,
            "reason_code": code,
            "leased_by": None,
            "lease_expires_at": None,
        }
        if at is not None:
            values["next_attempt_at"] = at
        if not spent:
            values["attempts"] = model.attempts - 1  # waiting on deliveries is not a failed attempt
        if status == SendStatus.SENT:
            values["sent_at"] = self._clock()
        with self._engine.begin() as connection:
            updated = connection.execute(
                sa.update(model)
                .where(model.id == reply_id, model.leased_by == self.runner_id)
                .values(**values)
            )
        if updated.rowcount == 0:
            return "lost"
        if status == SendStatus.PENDING:
            return "waiting" if not spent else "retried"
        return str(status)
