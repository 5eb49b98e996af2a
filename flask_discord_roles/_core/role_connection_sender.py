"""Pushing queued role connections to Discord with each customer's own OAuth token.

Claimed under a lease like purchase notifications; run inside an app context (the worker pass's), since
refreshing a customer's token goes through :mod:`.customer_tokens` in the app's session. Discord busy
(429, 5xx, timeouts) is retried with backoff; a grant the customer took back, or one without the
``role_connections.write`` scope, fails with a reason code and is not retried: only linking again helps.
A row queued again while being pushed stays with this runner until it finishes (no two pushes of one
user race), then waits, due, with the newer values.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.customer_tokens import usable_token
from flask_discord_roles._core.leasing import LeasedQueue
from flask_discord_roles._core.linked_roles import has_scope
from flask_discord_roles._core.role_connection_metadata import linked_roles_app
from flask_discord_roles._runtime.models import DiscordAccount, RoleConnectionUpdate
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import ReasonCode, SendStatus
from flask_discord_roles.discord.errors import (
    DiscordError,
    PermanentDiscordError,
    RateLimited,
    TransientDiscordError,
    Unauthorized,
)
from flask_discord_roles.discord.user_client import DiscordUserClient

logger = logging.getLogger("flask_discord_roles.linked_roles")

SENT, RETRIED, FAILED, LOST = "sent", "retried", "failed", "lost"


class _Outcome(Exception):
    """How one push ended, raised from deep inside to :meth:`RoleConnectionSender.run`."""

    def __init__(
        self, status: SendStatus, code: ReasonCode | None = None, reason: str | None = None, delay: float = 0
    ) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason, self.delay = status, code, reason, delay


class RoleConnectionSender(LeasedQueue):
    """Claims due role connections under a lease and pushes them (inside an app context)."""

    _rng = random.Random()

    @property
    def model(self) -> type[RoleConnectionUpdate]:
        return self.state.models.RoleConnectionUpdate

    def run(self, update_id: int) -> str:
        """Push one claimed row; ``sent``, ``retried``, ``failed`` or ``lost`` (no longer ours)."""
        session = self.state.db.session
        row = session.get(self.model, update_id, populate_existing=True)
        if row is None or row.leased_by != self.runner_id:
            session.rollback()
            return LOST
        metadata = {key: value for key, value in row.metadata_values.items() if value is not None}
        attempts, seen = row.attempts, row.updated_at
        try:
            self._push(row, metadata)
            outcome = _Outcome(SendStatus.SENT)
        except _Outcome as ended:
            outcome = ended
        except TransientDiscordError as error:
            outcome = self._backoff(attempts, error.message)
        except Exception as error:  # a bug must not stop the worker's pass: the row waits, counted
            logger.exception("role connection %s: unexpected %s", update_id, type(error).__name__)
            session.rollback()
            outcome = self._backoff(attempts, f"Unexpected {type(error).__name__}; see the logs.")
        # Token refreshes were flushed in the session: they are kept whatever the push's outcome.
        session.commit()
        return self._finish(update_id, outcome, seen)

    def _push(self, row: RoleConnectionUpdate, metadata: dict[str, Any]) -> None:
        account = self._account(row)
        if account is None:
            raise _Outcome(SendStatus.FAILED, ReasonCode.ACCOUNT_UNLINKED, "The customer unlinked Discord.")
        if not has_scope(account.scopes):
            raise _Outcome(
                SendStatus.FAILED,
                ReasonCode.SCOPE_MISSING,
                "The customer linked Discord without allowing role connections.",
            )
        app = linked_roles_app(self.state, row.store_id)
        if app is None:
            raise _Outcome(SendStatus.FAILED, ReasonCode.NO_BOT, "No Discord application to link through.")
        now = self._clock()
        token = usable_token(self.state, account, now)
        if token is not None:
            try:
                self._put(token, app.application_id, app.platform_name, metadata)
                return
            except Unauthorized:
                # Revoked, or ended sooner than Discord said: a refresh tells which.
                token = usable_token(self.state, account, now, force_refresh=True)
        if token is not None:
            try:
                self._put(token, app.application_id, app.platform_name, metadata)
                return
            except Unauthorized:
                pass
        raise _Outcome(
            SendStatus.FAILED,
            ReasonCode.AUTHORIZATION_REVOKED,
            "Discord no longer honours the customer's authorisation: they must link Discord again.",
        )

    def _put(
        self, token: str, application_id: str, platform_name: str | None, metadata: dict[str, Any]
    ) -> None:
        try:
            with self._client(token) as client:
                client.put_user_role_connection(
                    application_id, platform_name=platform_name, metadata=metadata
                )
        except RateLimited as limited:
            code = ReasonCode.RATE_LIMITED if limited.from_discord else ReasonCode.PACED
            raise _Outcome(SendStatus.PENDING, code, None, limited.retry_after) from None
        except Unauthorized:
            raise
        except PermanentDiscordError as error:
            raise _Outcome(
                SendStatus.FAILED, ReasonCode.DISCORD_REJECTED, f"Discord refused it: {error.message}"
            ) from None

    def _account(self, row: RoleConnectionUpdate) -> DiscordAccount | None:
        model = self.state.models.DiscordAccount
        return self.state.db.session.scalar(
            sa.select(model).where(
                model.store_id == row.store_id, model.discord_user_id == row.discord_user_id
            )
        )

    def _client(self, token: str) -> DiscordUserClient:
        return user_client(self.state, token)

    def _backoff(self, attempts: int, reason: str) -> _Outcome:
        settings = self.state.settings
        if attempts >= settings.max_attempts:
            return _Outcome(SendStatus.FAILED, ReasonCode.DISCORD_UNAVAILABLE, reason)
        delay = min(settings.retry_cap, settings.retry_base * 2 ** max(attempts - 1, 0))
        return _Outcome(
            SendStatus.PENDING,
            ReasonCode.DISCORD_UNAVAILABLE,
            reason,
            delay * self._rng.uniform(0.5, 1),
        )

    def _finish(self, update_id: int, outcome: _Outcome, seen: datetime) -> str:
        now: datetime = self._clock()
        values: dict[str, Any] = {
            "status": outcome.status,
            "reason_code": outcome.code,
            "reason": outcome.reason,
            "leased_by": None,
            "lease_expires_at": None,
        }
        if outcome.status == SendStatus.SENT:
            values["pushed_at"] = now
        if outcome.status == SendStatus.PENDING:
            values["next_attempt_at"] = now + timedelta(seconds=outcome.delay)
        session = self.state.db.session
        model = self.model
        ours = (model.id == update_id, model.leased_by == self.runner_id)
        updated = session.execute(
            sa.update(model)
            .where(*ours, model.updated_at == seen)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            # Queued again while we pushed (or no longer ours): the newer values stay pending, due now.
            session.execute(
                sa.update(model)
                .where(*ours)
                .values(leased_by=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )
            session.commit()
            return LOST
        session.commit()
        if outcome.status == SendStatus.FAILED:
            logger.warning("role connection %s failed: %s (%s)", update_id, outcome.code, outcome.reason)
        return RETRIED if outcome.status == SendStatus.PENDING else str(outcome.status)


def push_due(sender: RoleConnectionSender, limit: int = 50) -> dict[str, int]:
    """Claim and push up to ``limit`` due role connections; counts by outcome."""
    counts: dict[str, int] = {}
    for update_id in sender.claim(limit):
        result = sender.run(update_id)
        counts[result] = counts.get(result, 0) + 1
    return counts


def user_client(state: DiscordRolesState, token: str) -> DiscordUserClient:
    """A client acting as the customer. No waiting or retrying inside: the queue's backoff does that, so
    a worker thread never sleeps (and an unlink request never hangs on Discord)."""
    settings = state.settings
    return DiscordUserClient(
        token,
        base_url=settings.api_base_url,
        timeout=settings.http_timeout,
        max_retries=0,
        max_wait=settings.rate_limit_wait,
        user_agent=settings.user_agent,
    )


def withdraw_connection(state: DiscordRolesState, account: DiscordAccount, now: datetime) -> bool:
    """The customer unlinks: what we told Discord about them goes, and so does their queued push.

    Without this a "verified buyer" role would outlive the link. Best effort, like revoking the
    customer's tokens right after (their token is the only one Discord takes for it, and it is about to
    go): Discord being down does not stop the unlink. True when Discord confirmed the removal.
    """
    model = state.models.RoleConnectionUpdate
    session = state.db.session
    queued = session.scalar(
        sa.select(model).where(
            model.store_id == account.store_id, model.discord_user_id == account.discord_user_id
        )
    )
    if queued is None:
        return False  # nothing was ever queued, so nothing was ever pushed
    session.delete(queued)
    app = linked_roles_app(state, account.store_id)
    if app is None or not has_scope(account.scopes):
        return False
    try:
        token = usable_token(state, account, now)
        if token is None:
            return False
        with user_client(state, token) as client:
            client.delete_user_role_connection(app.application_id)
    except DiscordError as error:
        logger.warning(
            "store %s: the role connection of a customer who unlinked was not removed at Discord (%s)",
            account.store_id,
            type(error).__name__,
        )
        return False
    return True
