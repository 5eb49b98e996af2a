"""Running deliveries: claim due rows under a lease, make the role change, record what happened.

A delivery is run in three short steps so that no database transaction is open while Discord is called:

1. **claim** — one UPDATE marks up to N due rows as ours until ``lease_expires_at`` (on PostgreSQL the
   candidates are picked ``FOR UPDATE SKIP LOCKED``, so concurrent runners never pick the same row; on
   SQLite the single UPDATE is atomic). A runner killed mid-batch simply lets its leases run out and the
   rows come back to whoever polls next.
2. **call Discord** with the store's bot, outside any transaction.
3. **finish** — one UPDATE records the outcome, guarded by ``leased_by``, so a runner that lost its lease
   can never overwrite the row's newer state; the bot's counters move in the same transaction.

The module knows nothing of Flask: it gets the extension's state, an engine, and a callback for outcomes.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.aliases import alias
from flask_discord_roles._core.bots import token_of
from flask_discord_roles._core.delivery_rows import KEPT_ON_END_REASON, insert_new, kept_row, removal_row
from flask_discord_roles._core.leasing import LeasedQueue
from flask_discord_roles._core.provenance import granted_by_us_elsewhere, why_kept
from flask_discord_roles._core.queue import REVOKED_BEFORE_DELIVERY, claim_window_closed, unleased
from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._core.records import DeliveryInfo
from flask_discord_roles._core.role_gate import REFUSALS, refusal
from flask_discord_roles._core.tier_changes import (
    OUTRANKED_REASON,
    TIER_REPLACED_REASON,
    is_tier_removal,
    settle_tiers,
)
from flask_discord_roles._core.tiers import mapping_of, outranked
from flask_discord_roles._engine.failures import Failure, describe_transient, diagnose
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.models import PENDING, Delivery, Models, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import Action, ReasonCode, Source, Status
from flask_discord_roles.discord.client import DiscordClient
from flask_discord_roles.discord.errors import (
    DiscordError,
    PermanentDiscordError,
    RateLimited,
    TransientDiscordError,
    Unauthorized,
)

logger = logging.getLogger("flask_discord_roles.runner")

# Outcomes of running one claimed row.
COMPLETED, RETRIED, FAILED, WAITING, LOST = "completed", "retried", "failed", "waiting", "lost"

OutcomeCallback = Callable[[str, DeliveryInfo], None]
"""Called after an outcome is committed, with the outcome and the row as it now stands."""


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    result: str
    info: DeliveryInfo | None = None
    # Rows the outcome queued (a tier change, a removal after a revocation), due now.
    follow_up: tuple[int, ...] = ()


_KEPT = {
    ReasonCode.STILL_GRANTED: "Kept: another active purchase of this customer grants the same role.",
    ReasonCode.KEPT_ON_END: KEPT_ON_END_REASON,
}


@dataclass(frozen=True)
class _Job:
    """The values of a claimed row and its store's bot, read once, used outside any session.

    Each field is the column of the same name in :func:`_job_query`.
    """

    id: int
    store_id: str
    idempotency_key: str
    action: str
    source: str
    guild_id: str
    role_id: str
    role_name: str | None
    package_id: str | None
    revoked_at: datetime | None
    role_was_present: bool | None
    discord_user_id: str | None
    customer_id: str | None
    order_id: str | None
    attempts: int
    bot_id: int | None
    bot_enabled: bool  # False when the store has no bot
    bot_user_id: str | None
    token_ciphertext: str | None
    uses_platform_bot: bool  # False when the store has no bot
    # Why the role gate refuses this change now (services.role_gate), read with the row; None: allowed.
    refused: str | None
    # The tier group of the mapping the row came through (None: in none), and whether the member
    # already holds a higher tier of it (see _core.tiers).
    tier_group: str | None
    outranked: bool

    @property
    def audit_reason(self) -> str:
        """What Discord's audit log shows next to the change: who asked for it, for which store."""
        if self.source == Source.MANUAL:
            why = "manual change by the store owner"
        elif self.action == Action.REMOVE and is_tier_removal(self.idempotency_key):
            why = "replaced by a higher tier"
        elif self.order_id is not None:
            why = f"order {self.order_id}" + (" revoked" if self.action == Action.REMOVE else "")
        else:
            why = "customer claim"
        return f"flask-discord-roles · store {self.store_id} · {why}"


PLATFORM_TOKEN_RECHECK = 600.0
"""Seconds before a delivery refused for the shared bot's token is tried again."""


def new_runner_id() -> str:
    """A name for one runner, unique across machines, short enough for ``leased_by``."""
    import os
    import socket

    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DeliveryRunner(LeasedQueue):
    """Claims and runs due deliveries for one app. Thread safe: each call uses its own connection.

    Core statements on pooled connections, not ORM sessions: a worker runs several short transactions
    per delivery, and the ORM's unit of work and identity map were about a third of its CPU per row.
    """

    def __init__(
        self,
        state: DiscordRolesState,
        engine: sa.Engine,
        *,
        runner_id: str | None = None,
        on_outcome: OutcomeCallback | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(state, engine, runner_id or new_runner_id(), clock=clock)
        self._on_outcome = on_outcome
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"<DeliveryRunner {self.runner_id!r}>"

    @property
    def model(self) -> type[Delivery]:
        return self.state.models.Delivery

    # -- claiming (claim() and next_due_at() come from LeasedQueue) -------------------------------------

    @survives_transient_db_errors
    def release(self, delivery_ids: Iterable[int]) -> int:
        """Give back claimed rows that were not started (a worker stopping); their attempt is not spent."""
        ids = list(delivery_ids)
        if not ids:
            return 0
        delivery = self.state.models.Delivery
        with self._engine.begin() as session:
            result = session.execute(
                sa.update(delivery)
                .where(
                    delivery.id.in_(ids),
                    delivery.leased_by == self.runner_id,
                    delivery.status == Status.PENDING,
                )
                .values(leased_by=None, lease_expires_at=None, attempts=delivery.attempts - 1)
            )
            return int(result.rowcount)

    # -- housekeeping ---------------------------------------------------------------------------------

    @survives_transient_db_errors
    def expire_unclaimed(self) -> int:
        """Mark role grants still waiting for their customer past the claim window ``expired``.

        A grant already scheduled (the customer is known, or ran /claim) is delivered however late;
        removals never expire.
        """
        delivery = self.state.models.Delivery
        now = self._clock()
        with self._engine.begin() as session:
            result = session.execute(
                sa.update(delivery)
                .where(
                    # The expiry index's rows (models.WAITING), so the sweep reads nothing else.
                    delivery.status == PENDING,
                    delivery.next_attempt_at.is_(None),
                    delivery.expires_at <= now,
                    delivery.action == Action.ADD,
                    unleased(delivery, now),
                )
                .values(claim_window_closed(now))
            )
        expired = int(result.rowcount)
        self.state.telemetry.deliveries_settled(Status.EXPIRED, ReasonCode.CLAIM_EXPIRED, expired)
        return expired

    @survives_transient_db_errors
    def queue_depth(self) -> int:
        """Pending rows that are scheduled (due now or retrying later); rows waiting for customers aside."""
        delivery = self.state.models.Delivery
        with self._engine.connect() as session:
            return int(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(delivery)
                    .where(delivery.status == PENDING, delivery.next_attempt_at.is_not(None))
                )
                or 0
            )

    # -- running --------------------------------------------------------------------------------------

    def run(self, delivery_id: int) -> Outcome:
        """Run one row this runner has claimed and record the outcome. Never raises for Discord errors."""
        job = self._load(delivery_id)
        if job is None:
            return Outcome(delivery_id, LOST)
        stopped = self._stop_before_discord(job)
        if stopped is not None:
            return stopped
        assert job.token_ciphertext is not None  # without one the row was parked above
        try:
            token = token_of(self.state, job.token_ciphertext, job.uses_platform_bot)
            client = self.state.clients.for_token(token)
        except DecryptionError:
            return self._park(
                job,
                ReasonCode.TOKEN_UNREADABLE,
                "The bot token cannot be decrypted with DISCORD_ROLES_ENCRYPTION_KEYS (was a key dropped "
                "before `flask discord-roles rotate-keys` ran?). Save the bot token again.",
            )
        return self._change_role(job, client)

    def _stop_before_discord(self, job: _Job) -> Outcome | None:
        """End or park the row if Discord must not or cannot be called for it: its order was revoked, the
        role gate refuses it, there is no bot to call with, or nobody to give the role to yet."""
        if job.revoked_at is not None and job.action == Action.ADD:
            values = {
                "status": Status.EXPIRED,
                "next_attempt_at": None,
                "reason_code": ReasonCode.ORDER_REVOKED,
                "reason": REVOKED_BEFORE_DELIVERY,
            }
            return self._finish(job, values, WAITING)
        if job.refused is not None:
            return self._refuse(job, ReasonCode(job.refused))
        if job.action == Action.ADD and job.outranked:
            # A higher tier of the group is theirs already: this role would only be taken back.
            return self._complete(
                job, counter=None, reason_code=ReasonCode.OUTRANKED, reason=OUTRANKED_REASON
            )
        if job.bot_id is None or job.token_ciphertext is None:
            return self._park(
                job,
                ReasonCode.NO_BOT,
                "The store has not saved a Discord bot yet. It is delivered once the bot is saved.",
            )
        if not job.bot_enabled:
            return self._park(
                job,
                ReasonCode.BOT_DISABLED,
                "The store's bot is switched off. It is delivered once the bot is enabled (or saved) again.",
            )
        if job.discord_user_id is None:
            return self._park(
                job,
                ReasonCode.WAITING_FOR_CUSTOMER,
                "Waiting for the customer to link Discord or run /claim.",
            )
        return None

    def _change_role(self, job: _Job, client: DiscordClient) -> Outcome:
        """Make the role change at Discord; what Discord answers becomes the row's outcome."""
        wait = self.state.settings.rate_limit_wait
        try:
            if job.action == Action.ADD:
                return self._add(job, client, wait)
            return self._remove(job, client, wait)
        except RateLimited as limited:
            # A rate limit, not Discord failing: come back when the limit resets, attempt not spent.
            delay = limited.retry_after + self._rng.uniform(0, 0.25)
            code, words = _waiting_words(limited)
            return self._reschedule(job, delay, code, words, spent=False)
        except TransientDiscordError as error:
            if job.attempts >= self.state.settings.max_attempts:
                return self._fail(job, describe_transient(error))
            delay = self._backoff(job.attempts)
            return self._reschedule(
                job,
                delay,
                ReasonCode.DISCORD_UNAVAILABLE,
                f"Discord failed ({error.message}); retrying.",
                spent=True,
            )
        except PermanentDiscordError as error:
            return self._refused_by_discord(job, client, error, wait)

    def _refused_by_discord(
        self, job: _Job, client: DiscordClient, error: PermanentDiscordError, wait: float
    ) -> Outcome:
        """Discord said no for good: fail with the reason and its fix (or look again, if not explained)."""
        if job.uses_platform_bot and isinstance(error, Unauthorized):
            # The platform's token, not the store's: switching the store off would outlive the
            # operator's fix. Look again later; a new DISCORD_ROLES_BOT_TOKEN picks it up.
            return self._reschedule(
                job,
                PLATFORM_TOKEN_RECHECK,
                ReasonCode.PLATFORM_TOKEN_REVOKED,
                "Discord refused the platform's shared bot token; the platform's operator must set a "
                "new DISCORD_ROLES_BOT_TOKEN. Delivered once it works again.",
                spent=False,
            )
        failure = diagnose(
            error,
            client=client,
            guild_id=job.guild_id,
            role_id=job.role_id,
            role_name=job.role_name,
            bot_user_id=job.bot_user_id or self._shared_bot_user_id(job, client),
            max_wait=wait,
            memo=self.state.hierarchy,
        )
        if failure.look_again_in is not None and job.attempts < self.state.settings.max_attempts:
            # Not explained yet (the reads were held back): wait rather than fail with a guess.
            return self._reschedule(job, failure.look_again_in, failure.code, failure.reason, spent=True)
        return self._fail(job, failure, disable_bot=isinstance(error, Unauthorized))

    def _shared_bot_user_id(self, job: _Job, client: DiscordClient) -> str | None:
        """The shared bot's user id, asked of Discord once per process, for explaining a refusal."""
        if not job.uses_platform_bot:
            return None
        if self.state.platform_user_id is None:
            try:
                self.state.platform_user_id = str(client.get_current_user()["id"])
            except DiscordError:
                return None
        return self.state.platform_user_id

    def _add(self, job: _Job, client: DiscordClient, wait: float) -> Outcome:
        assert job.discord_user_id is not None
        member = client.get_member(job.guild_id, job.discord_user_id, max_wait=wait)
        if job.role_id in {str(role) for role in member.get("roles", [])}:
            if job.role_was_present is False:
                # An earlier attempt saw the role missing and sent the PUT, which timed out (or its
                # runner died) but was applied: the role is ours, and that PUT assigned it.
                return self._complete(job, role_was_present=False, counter="total_roles_assigned")
            # They hold it already: ours (another purchase of theirs) or theirs from before us. Nothing
            # was assigned now, so the store's count of assigned roles stays as it is.
            return self._complete(job, role_was_present=not self._granted_elsewhere(job), counter=None)
        if job.role_was_present is None:
            # Written before the PUT: if the PUT times out yet is applied, or this runner dies, the next
            # attempt finds the role and must still know it was absent before us.
            self._note_role_absent(job)
        client.add_member_role(
            job.guild_id, job.discord_user_id, job.role_id, reason=job.audit_reason, max_wait=wait
        )
        return self._complete(job, role_was_present=False, counter="total_roles_assigned")

    def _remove(self, job: _Job, client: DiscordClient, wait: float) -> Outcome:
        assert job.discord_user_id is not None
        if job.source != Source.MANUAL:
            # The store owner's hand is always obeyed; everything else asks the one removal rule.
            kept = self._why_kept(job)
            if kept is not None:
                return self._complete(job, counter=None, reason_code=kept, reason=_KEPT[kept])
        client.remove_member_role(
            job.guild_id, job.discord_user_id, job.role_id, reason=job.audit_reason, max_wait=wait
        )
        if is_tier_removal(job.idempotency_key):
            return self._complete(
                job,
                counter="total_roles_removed",
                reason_code=ReasonCode.TIER_REPLACED,
                reason=TIER_REPLACED_REASON,
            )
        return self._complete(job, counter="total_roles_removed")

    @survives_transient_db_errors
    def _granted_elsewhere(self, job: _Job) -> bool:
        with self._engine.connect() as session:
            return granted_by_us_elsewhere(session, self.state.models.Delivery, job)

    @survives_transient_db_errors
    def _why_kept(self, job: _Job) -> ReasonCode | None:
        with self._engine.connect() as session:
            return why_kept(session, self.state.models, job)

    @survives_transient_db_errors
    def _note_role_absent(self, job: _Job) -> None:
        delivery = self.state.models.Delivery
        with self._engine.begin() as session:
            session.execute(
                sa.update(delivery)
                .where(delivery.id == job.id, delivery.leased_by == self.runner_id)
                .values(role_was_present=False)
            )

    # -- recording outcomes ---------------------------------------------------------------------------

    @survives_transient_db_errors
    def _load(self, delivery_id: int) -> _Job | None:
        """The claimed row, with its store's bot; None if it is not ours (anymore) or not pending."""
        with self._engine.connect() as connection:
            row = connection.execute(_job_query(self.state.models), {"delivery_id": delivery_id}).first()
        if row is None or row.leased_by != self.runner_id or row.status != Status.PENDING:
            return None
        return _Job(**{field.name: getattr(row, field.name) for field in fields(_Job)})

    def _backoff(self, attempts: int) -> float:
        settings = self.state.settings
        ceiling = min(settings.retry_cap, settings.retry_base * 2 ** max(attempts - 1, 0))
        # Jitter keeps rows that failed together (a Discord outage) from all coming back together.
        return float(ceiling * self._rng.uniform(0.5, 1.0))

    def _complete(
        self,
        job: _Job,
        *,
        counter: str | None,
        role_was_present: bool | None = None,
        reason_code: ReasonCode | None = None,
        reason: str | None = None,
    ) -> Outcome:
        now = self._clock()
        values: dict[str, Any] = {
            "status": Status.COMPLETED,
            "next_attempt_at": None,
            "completed_at": now,
            "reason_code": reason_code,
            "reason": reason,
        }
        if role_was_present is not None:
            values["role_was_present"] = role_was_present
        return self._finish(job, values, COMPLETED, counter=counter)

    def _fail(self, job: _Job, failure: Failure, *, disable_bot: bool = False) -> Outcome:
        values = {
            "status": Status.FAILED,
            "next_attempt_at": None,
            "reason_code": failure.code,
            "reason": failure.reason,
        }
        return self._finish(job, values, FAILED, counter="total_errors", disable_bot=disable_bot)

    def _refuse(self, job: _Job, code: ReasonCode) -> Outcome:
        """The role gate says no: nothing goes to Discord, and the row says why (not a Discord error)."""
        values = {
            "status": Status.FAILED,
            "next_attempt_at": None,
            "reason_code": code,
            "reason": REFUSALS[code],
        }
        return self._finish(job, values, FAILED)

    def _reschedule(self, job: _Job, delay: float, code: ReasonCode, reason: str, *, spent: bool) -> Outcome:
        delivery = self.state.models.Delivery
        values: dict[str, Any] = {
            "next_attempt_at": self._clock() + timedelta(seconds=delay),
            "reason_code": code,
            "reason": reason,
        }
        if not spent:
            values["attempts"] = delivery.attempts - 1
        return self._finish(job, values, RETRIED)

    def _park(self, job: _Job, code: ReasonCode, reason: str) -> Outcome:
        """Nothing can run until someone acts (save the bot, link Discord): wait without spending attempts."""
        delivery = self.state.models.Delivery
        values = {
            "next_attempt_at": None,
            "reason_code": code,
            "reason": reason,
            "attempts": delivery.attempts - 1,
        }
        return self._finish(job, values, WAITING)

    @survives_transient_db_errors
    def _finish(
        self,
        job: _Job,
        values: dict[str, Any],
        result: str,
        *,
        counter: str | None = None,
        disable_bot: bool = False,
    ) -> Outcome:
        models = self.state.models
        delivery = models.Delivery
        now = self._clock()
        with self._engine.begin() as session:
            table = delivery.__table__  # type: ignore[attr-defined]
            row = session.execute(
                sa.update(delivery)
                .where(
                    delivery.id == job.id,
                    delivery.leased_by == self.runner_id,
                    delivery.status == Status.PENDING,
                )
                .values(**values, leased_by=None, lease_expires_at=None, updated_at=now)
                .returning(*table.c)
            ).first()
            if row is None:
                # The lease ran out and another runner (or a revocation) owns the row now.
                logger.warning("delivery %s: lease lost before its outcome (%s) was saved", job.id, result)
                return Outcome(job.id, LOST)
            bot = models.StoreBot
            if counter is not None:
                session.execute(
                    sa.update(bot)
                    .where(bot.store_id == job.store_id)
                    .values({counter: getattr(bot, counter) + 1})
                )
            if disable_bot:
                # Only the token that failed: if the owner saved a new one meanwhile, leave it on.
                session.execute(
                    sa.update(bot)
                    .where(bot.store_id == job.store_id, bot.token_ciphertext == job.token_ciphertext)
                    .values(is_enabled=False, disabled_reason=ReasonCode.TOKEN_REVOKED, updated_at=now)
                )
                self.state.bot_cache.forget(job.store_id)
            follow_up: list[int] = []
            if row.action == Action.ADD and row.status == Status.COMPLETED:
                if row.revoked_at is not None:
                    follow_up += _remove_if_revoked_in_flight(session, models, row, now)
                if job.tier_group is not None and row.reason_code != ReasonCode.OUTRANKED:
                    # A tier was given (or its grant ended meanwhile): lower tiers step aside, in
                    # this transaction, so the removal is only queued once the higher role is given.
                    follow_up += settle_tiers(
                        session, models, row.store_id, row.guild_id, row.discord_user_id, now
                    )
            info = DeliveryInfo.from_row(row)
        self.state.telemetry.delivery_finished(
            status=info.status,
            reason_code=info.reason_code,
            action=info.action,
            created_at=info.created_at,
            completed_at=info.completed_at if info.status == Status.COMPLETED else None,
        )
        if self._on_outcome is not None:
            try:
                self._on_outcome(result, info)
            except Exception:  # a receiver's bug must not make us retry a delivery that happened
                logger.exception("a receiver of delivery %s's outcome raised", job.id)
        return Outcome(job.id, result, info, tuple(follow_up))


def _waiting_words(limited: RateLimited) -> tuple[ReasonCode, str]:
    """Whose limit holds the delivery back, in honest words: Discord's 429, or our own pacing."""
    if limited.from_discord:
        return ReasonCode.RATE_LIMITED, "Waiting for Discord's rate limit."
    queue = "the bot's other requests" if limited.is_global else "other role changes for this server"
    return ReasonCode.PACED, f"Queued behind {queue}; it goes out in a few seconds."


def _remove_if_revoked_in_flight(
    connection: sa.Connection, models: Models, row: Any, now: datetime
) -> list[int]:
    """The order was revoked while this grant was being delivered: take the role back, by the usual
    rules (:func:`.provenance.why_kept`). The ids of rows queued to run."""
    if row.role_was_present is not False:
        return []
    kept = why_kept(connection, models, row)
    if kept == ReasonCode.KEPT_ON_END:
        insert_new(connection, models.Delivery, [kept_row(row, row.order_id, now)])
    if kept is not None:
        return []
    return insert_new(connection, models.Delivery, [removal_row(row, row.order_id, now)])


@cache
def _job_query(models: Models) -> sa.Select[Any]:
    """A delivery row (bound: ``delivery_id``) with what running it needs: its store's bot, and the role
    gate's answer. Built once: building it (the role gate's and the tier rule's subqueries) cost each
    job more CPU than running it."""
    delivery, bot = models.Delivery, models.StoreBot
    # An alias: the role gate's own subqueries read the mappings table and must not correlate to it.
    mapping = alias(models.RoleMapping, "tier_mapping")
    columns: tuple[Any, ...] = (
        delivery.id,
        delivery.store_id,
        delivery.idempotency_key,
        delivery.action,
        delivery.source,
        delivery.guild_id,
        delivery.role_id,
        delivery.role_name,
        delivery.package_id,
        delivery.revoked_at,
        delivery.role_was_present,
        delivery.discord_user_id,
        delivery.customer_id,
        delivery.order_id,
        delivery.attempts,
        delivery.leased_by,
        delivery.status,
        bot.id.label("bot_id"),
        sa.func.coalesce(bot.is_enabled, sa.false()).label("bot_enabled"),
        bot.bot_user_id,
        bot.token_ciphertext,
        sa.func.coalesce(bot.uses_platform_bot, sa.false()).label("uses_platform_bot"),
        refusal(models).label("refused"),
        mapping.tier_group,
        outranked(models, delivery, mapping).label("outranked"),
    )
    return (
        sa.select(*columns)
        .select_from(delivery)
        .outerjoin(bot, bot.store_id == delivery.store_id)
        .outerjoin(mapping, mapping_of(mapping, delivery))
        .where(delivery.id == sa.bindparam("delivery_id"))
    )
