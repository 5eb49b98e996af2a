"""The loop that keeps a pool of threads busy with due deliveries (the worker and the thread executor).

Each row is claimed (leased) just before a thread is free for it, so a runner never sits on rows it
cannot start. Rate-limited rows are rescheduled by the runner rather than blocking a thread, so one busy
guild does not hold up the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from flask_discord_roles._core.claim_replies import ClaimReplySender
from flask_discord_roles._core.notifications import NotificationSender
from flask_discord_roles._engine.runner import COMPLETED, FAILED, LOST, RETRIED, WAITING, DeliveryRunner
from flask_discord_roles.codes import SendStatus

logger = logging.getLogger("flask_discord_roles.worker")


@dataclass
class BatchReport:
    """What one pass over the queue did."""

    results: Counter[str] = field(default_factory=Counter)
    notifications: Counter[str] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.results or self.notifications or self.replies[SendStatus.SENT] or self.errors)

    def line(self, queue_depth: int) -> str:
        r = self.results
        text = (
            f"{r[COMPLETED]} done, {r[RETRIED]} retried, {r[FAILED]} failed, "
            f"{r[WAITING]} waiting for the store or customer"
        )
        if r[LOST]:
            text += f", {r[LOST]} taken over by another runner"
        if self.notifications:
            text += f"; {self.notifications[SendStatus.SENT]} notifications sent"
        if self.replies[SendStatus.SENT]:
            text += f"; {self.replies[SendStatus.SENT]} /claim answers sent"
        if self.errors:
            text += f"; {self.errors} crashed (their leases will run out and they will be retried)"
        return f"{text}; queue depth {queue_depth}"


class Drainer:
    """Runs due rows on ``threads`` threads until nothing is due, or ``stop`` is set."""

    def __init__(
        self,
        runner: DeliveryRunner,
        notifier: NotificationSender,
        *,
        replier: ClaimReplySender | None = None,
        threads: int,
        batch_size: int,
        stop: threading.Event,
        progress_every: float = 10.0,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.runner = runner
        self.notifier = notifier
        self.replier = replier
        self.threads = threads
        self.batch_size = batch_size
        self.stop = stop
        self.progress_every = progress_every
        # Called as each row finishes: the worker's heartbeat, so a long pass still counts as alive.
        self.on_progress = on_progress
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="discord-roles")

    def close(self, wait_for_running: bool = True) -> None:
        self._pool.shutdown(wait=wait_for_running, cancel_futures=True)

    def drain(self, *, only_ids: list[int] | None = None) -> BatchReport:
        """Claim and run due rows until none is due (or ``stop``); returns what happened."""
        report = BatchReport()
        self._send_notifications(report)
        inflight: dict[Future[object], int] = {}
        exhausted = False
        last_progress = time.monotonic()
        try:
            while not self.stop.is_set():
                # Keep up to one row queued behind each thread, so no thread waits on a claim round
                # trip, and refill only once the queue behind them has run dry: then a claim (a
                # transaction) fetches a thread's worth of rows, not the one row that just finished.
                room = 2 * self.threads - len(inflight)
                if len(inflight) <= self.threads and not exhausted:
                    ids = self.runner.claim(min(room, self.batch_size), only_ids=only_ids)
                    if not ids:
                        exhausted = True
                    for delivery_id in ids:
                        inflight[self._pool.submit(self.runner.run, delivery_id)] = delivery_id
                if not inflight:
                    break
                done, _ = wait(inflight, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    delivery_id = inflight.pop(future)
                    self._collect(future, delivery_id, report)
                if done and only_ids is None:
                    exhausted = False  # finished rows may have freed a rate limit; look again
                if time.monotonic() - last_progress > self.progress_every:
                    logger.info("in progress: %s", report.line(self.runner.queue_depth()))
                    last_progress = time.monotonic()
        finally:
            self._stop_inflight(inflight, report)
        # After the deliveries: a /claim's answer reports how they went.
        self._send_replies(report)
        return report

    def _collect(self, future: Future[object], delivery_id: int, report: BatchReport) -> None:
        try:
            outcome = future.result()
        except Exception:
            report.errors += 1
            logger.exception("delivery %s crashed its runner thread", delivery_id)
            return
        report.results[getattr(outcome, "result", LOST)] += 1
        if self.on_progress is not None:
            self.on_progress()

    def _stop_inflight(self, inflight: dict[Future[object], int], report: BatchReport) -> None:
        """On stop: rows not started go back at once; rows being sent are finished and recorded."""
        unstarted = [delivery_id for future, delivery_id in inflight.items() if future.cancel()]
        if unstarted:
            released = self.runner.release(unstarted)
            logger.info("released %d claimed deliveries that had not started", released)
        for future, delivery_id in inflight.items():
            if not future.cancelled():
                self._collect(future, delivery_id, report)  # result() waits for it to finish

    def _send_replies(self, report: BatchReport) -> None:
        if self.replier is None:
            return
        # Each due reply once per pass: one still waiting on its deliveries is due again later.
        ids = self.replier.claim(self.batch_size * 4)
        for reply_id in ids:
            if self.stop.is_set():
                self.replier.release([reply_id])
                continue
            try:
                report.replies[self.replier.run(reply_id)] += 1
            except Exception:
                report.errors += 1
                logger.exception("claim reply %s crashed", reply_id)

    def _send_notifications(self, report: BatchReport) -> None:
        # Few and cheap next to role changes: sent one after another, before the deliveries.
        while not self.stop.is_set():
            ids = self.notifier.claim(self.batch_size)
            if not ids:
                return
            for notification_id in ids:
                try:
                    report.notifications[self.notifier.run(notification_id)] += 1
                except Exception:
                    report.errors += 1
                    logger.exception("purchase notification %s crashed", notification_id)
