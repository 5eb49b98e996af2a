"""The polling loop behind ``flask discord-roles worker`` and the embedded thread executor.

It expires unclaimed rows, ends time-limited grants past their end (and sends expiry reminders), steps
the running backfills (each queues a window of rows) and reconciliation runs (a page of members each),
drains what is due on a few threads, logs one line per pass, then sleeps until the next row comes due
(or the poll interval, or a wake-up from a fresh commit). Stopping finishes the Discord calls in flight
and hands back rows claimed but not started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from flask_discord_roles._core.backfills import step_backfills
from flask_discord_roles._core.claim_replies import ClaimReplySender, forget_old_replies
from flask_discord_roles._core.grant_sweeps import end_due_grants, send_due_reminders
from flask_discord_roles._core.interaction_log import forget_old_interactions
from flask_discord_roles._core.notifications import NotificationSender
from flask_discord_roles._core.reconcile import step_runs as step_reconcile_runs
from flask_discord_roles._core.records import DeliveryInfo
from flask_discord_roles._core.role_connection_sender import RoleConnectionSender, push_due
from flask_discord_roles._engine.drain import BatchReport, Drainer
from flask_discord_roles._engine.runner import COMPLETED, FAILED, RETRIED, DeliveryRunner, new_runner_id
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.codes import Action, ReasonCode
from flask_discord_roles.signals import delivery_failed, role_delivered, role_removed

logger = logging.getLogger("flask_discord_roles.worker")


def outcome_signaller(app: Flask) -> object:
    """The runner's outcome callback: sends our signals with ``app`` as sender, inside its context."""

    def send(result: str, info: DeliveryInfo) -> None:
        if result == COMPLETED:
            if info.reason_code == ReasonCode.STILL_GRANTED:
                return  # nothing changed in Discord
            signal = role_delivered if info.action == Action.ADD else role_removed
        elif result == FAILED:
            signal = delivery_failed
        else:
            return
        with app.app_context():
            signal.send(app, delivery=info)

    return send


def build_runners(app: Flask, runner_id: str | None = None) -> tuple[DeliveryRunner, NotificationSender]:
    """A delivery runner and a notification sender for ``app``, sharing one runner id."""
    state = get_state(app)
    with app.app_context():
        engine = state.db.engine
    runner = DeliveryRunner(
        state,
        engine,
        runner_id=runner_id or new_runner_id(),
        on_outcome=outcome_signaller(app),  # type: ignore[arg-type]
    )
    return runner, NotificationSender(state, engine, runner.runner_id)


def build_reply_sender(app: Flask, runner_id: str) -> ClaimReplySender:
    """The sender of deferred /claim answers for ``app``, under ``runner_id``."""
    state = get_state(app)
    with app.app_context():
        engine = state.db.engine
    return ClaimReplySender(state, engine, runner_id)


def build_role_connection_sender(app: Flask, runner_id: str) -> RoleConnectionSender:
    """The pusher of Linked Roles connections for ``app``, under ``runner_id``."""
    state = get_state(app)
    with app.app_context():
        engine = state.db.engine
    return RoleConnectionSender(state, engine, runner_id)


@dataclass
class WorkerTotals:
    passes: int = 0
    completed: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0


GRANT_BATCHES_PER_PASS = 10
"""At most this many batches of grants ended per pass, so a backlog does not hold up the drain."""

ROLE_CONNECTIONS_PER_PASS = 50
"""At most this many Linked Roles connections pushed per pass: each is one call with a user's token."""

HOUSEKEEPING_INTERVAL = 3600.0
"""Seconds between a worker's housekeeping passes (each worker keeps its own schedule)."""


class Worker:
    """Processes due work for one app until stopped (or once, with ``once=True``)."""

    def __init__(
        self,
        app: Flask,
        *,
        threads: int | None = None,
        batch_size: int | None = None,
        poll_interval: float | None = None,
        runner_id: str | None = None,
        stop: threading.Event | None = None,
        wake: threading.Event | None = None,
        name: str = "worker",
    ) -> None:
        settings = get_state(app).settings
        self.app = app
        self.name = name
        self.poll_interval = poll_interval or settings.poll_interval
        self.stop = stop or threading.Event()
        self.wake = wake or threading.Event()
        self.runner, self.notifier = build_runners(app, runner_id)
        self.replier = build_reply_sender(app, self.runner.runner_id)
        self.drainer = Drainer(
            self.runner,
            self.notifier,
            replier=self.replier,
            threads=threads or settings.threads,
            batch_size=batch_size or settings.batch_size,
            stop=self.stop,
            on_progress=self.beat,
        )
        self.role_connections = build_role_connection_sender(app, self.runner.runner_id)
        self.totals = WorkerTotals()
        # When the worker last made progress (time.monotonic): /healthz of --metrics-port reads it.
        self.last_beat = time.monotonic()
        self._housekeeping_due = 0.0
        # A backfill or a reconciliation is still reading through its customers or members: the next
        # pass follows at once, without the poll's sleep.
        self._scanning = False

    def run(self, *, once: bool = False) -> WorkerTotals:
        """Loop until :attr:`stop` is set; with ``once``, a single pass over what is due now."""
        logger.info(
            "%s %s started: %d threads, polling every %gs",
            self.name,
            self.runner.runner_id,
            self.drainer.threads,
            self.poll_interval,
        )
        try:
            while not self.stop.is_set():
                self.run_pass()
                if once:
                    break
                self._sleep()
        finally:
            self.drainer.close()
            logger.info("%s %s stopped", self.name, self.runner.runner_id)
        return self.totals

    def run_pass(self) -> BatchReport | None:
        """Expire what is past its claim window, then drain what is due; one log line if anything moved."""
        try:
            expired = self.runner.expire_unclaimed()
            self._sweep_grants()
            self._housekeeping()
            self._scanning = any([self._step_backfills(), self._step_reconcile_runs()])
            report = self.drainer.drain()
            self._push_role_connections()
            depth = self.runner.queue_depth() if (report.busy or expired) else 0
        except SQLAlchemyError:
            # The database is down or failing: nothing is lost (rows stay leased or pending); try later.
            logger.exception("%s: the database failed; trying again in %gs", self.name, self.poll_interval)
            self.stop.wait(self.poll_interval)
            return None
        self.beat()
        self.totals.passes += 1
        self.totals.expired += expired
        self.totals.completed += report.results[COMPLETED]
        self.totals.retried += report.results[RETRIED]
        self.totals.failed += report.results[FAILED]
        if report.busy or expired:
            suffix = f"; {expired} expired unclaimed" if expired else ""
            logger.info("%s batch: %s%s", self.name, report.line(depth), suffix)
        return report

    def beat(self) -> None:
        """A pass, or one delivery of a long pass, finished: the worker is alive."""
        self.last_beat = time.monotonic()

    def _sweep_grants(self) -> None:
        """End time-limited grants past their end and send the expiry reminders that are due. The
        removals the first queues are due now, so the drain that follows runs them."""
        state = get_state(self.app)
        with self.app.app_context():
            now = utcnow()
            ended = end_due_grants(state, now=now, max_batches=GRANT_BATCHES_PER_PASS)
            reminded = send_due_reminders(state, now=now)
        if ended.grants or reminded:
            logger.info(
                "%s: %d time-limited grants ended, %d expiry reminders sent",
                self.name,
                len(ended.grants),
                reminded,
            )

    def _engine(self) -> Engine:
        with self.app.app_context():
            return get_state(self.app).db.engine

    def _step_backfills(self) -> bool:
        """Top up the running backfills' windows (the drain below runs what they queued); True while a
        scan is still finding customers."""
        return step_backfills(get_state(self.app), self._engine(), self.runner.runner_id) > 0

    def _step_reconcile_runs(self) -> bool:
        """Read the next page of members of each running reconciliation (the drain runs its repairs);
        True while a run is still reading members."""
        steps = step_reconcile_runs(get_state(self.app), self._engine(), self.runner.runner_id)
        return any(step.members for step in steps)

    def _push_role_connections(self) -> None:
        """Push the Linked Roles connections that are due (each customer's own token, a few a pass)."""
        with self.app.app_context():
            pushed = push_due(self.role_connections, ROLE_CONNECTIONS_PER_PASS)
        if pushed:
            logger.info("%s: role connections %s", self.name, pushed)

    def _housekeeping(self) -> None:
        """Once an hour: forget interaction ids old enough that Discord will never redeliver them, and
        /claim answers whose interaction token has long expired."""
        if time.monotonic() < self._housekeeping_due:
            return
        self._housekeeping_due = time.monotonic() + HOUSEKEEPING_INTERVAL
        state = get_state(self.app)
        engine = self._engine()
        forgotten = forget_old_interactions(state.models, engine)
        if forgotten:
            logger.info("%s: forgot %d interaction ids older than a day", self.name, forgotten)
        answered = forget_old_replies(state.models, engine, now=utcnow())
        if answered:
            logger.info("%s: forgot %d /claim answers older than a day", self.name, answered)

    def _sleep(self) -> None:
        if self._scanning:
            return
        timeout = self.poll_interval
        try:
            due_times = [
                self.runner.next_due_at(),
                self.replier.next_due_at(),
                self.role_connections.next_due_at(),
            ]
        except SQLAlchemyError:
            due_times = []
        next_due = min((moment for moment in due_times if moment is not None), default=None)
        if next_due is not None:
            timeout = min(timeout, max(0.05, _seconds_until(next_due)))
        if self.wake.wait(timeout):
            self.wake.clear()


def _seconds_until(moment: datetime) -> float:
    return (moment - utcnow()).total_seconds()


def run_now(
    app: Flask,
    delivery_ids: Sequence[int],
    notification_ids: Sequence[int],
    reply_ids: Sequence[int] = (),
) -> None:
    """Claim and run exactly these rows (those still due) in this thread; claim answers last."""
    runner, notifier = build_runners(app)
    for notification_id in notifier.claim(max(len(notification_ids), 1), only_ids=list(notification_ids)):
        notifier.run(notification_id)
    # One at a time: a lease covers one row's calls, so rows claimed together at the end of a large
    # order could lose theirs before this thread reached them.
    waiting = list(delivery_ids)
    while waiting:
        # What a row queued as it finished (the removal of a lower tier) runs right after it.
        for claimed in runner.claim(1, only_ids=[waiting.pop(0)]):
            waiting += runner.run(claimed).follow_up
    if reply_ids:
        replier = build_reply_sender(app, runner.runner_id)
        for reply_id in replier.claim(len(reply_ids), only_ids=list(reply_ids)):
            replier.run(reply_id)
