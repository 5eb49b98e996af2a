"""Who runs deliveries once the host's transaction has committed (``DISCORD_ROLES_EXECUTOR``).

``thread`` (default)
    A small pool inside the app process, started lazily on the first commit or request. It also polls,
    so retries come due without any other process. Safe under gunicorn's fork: a child process notices it
    is not the one that started the pool and starts its own.
``worker``
    Nothing runs in the web process; ``flask discord-roles worker`` (one or many, on any machines) polls
    the queue. Work committed by the web process waits at most the poll interval.
``celery``
    A Celery task runs the same code (see :mod:`flask_discord_roles.celery`); the database stays the
    source of truth, so a lost task only delays rows until the next ``process_due`` beat.
``inline``
    Runs right after the commit, in the committing thread. For tests and scripts. A deferred /claim
    answer runs once the response has been sent (see :mod:`.services.claim_replies`).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref

from flask import Flask

from flask_discord_roles._engine.celery_tasks import CeleryExecutor
from flask_discord_roles._engine.worker import Worker, run_now
from flask_discord_roles._runtime.config import Settings
from flask_discord_roles._runtime.executor import Executor, Work

logger = logging.getLogger("flask_discord_roles.executors")


class InlineExecutor:
    """Runs the work at once, in the committing thread (it blocks the request: tests and scripts only)."""

    name = "inline"

    def submit(self, app: Flask, work: Work) -> None:
        run_now(app, sorted(work.delivery_ids), sorted(work.notification_ids), sorted(work.reply_ids))

    def ensure_started(self, app: Flask) -> None:
        return None

    def shutdown(self, wait: bool = True) -> None:
        return None


class WorkerExecutor:
    """Leaves everything to ``flask discord-roles worker``: the web process only writes rows."""

    name = "worker"

    def submit(self, app: Flask, work: Work) -> None:
        return None

    def ensure_started(self, app: Flask) -> None:
        return None

    def shutdown(self, wait: bool = True) -> None:
        return None


class ThreadExecutor:
    """A worker loop on a background thread of the app process, started on first use."""

    name = "thread"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        running = self._thread is not None and self._thread.is_alive()
        return f"<ThreadExecutor threads={self._settings.threads} running={running}>"

    def ensure_started(self, app: Flask) -> None:
        """Start the loop if it is not running in this process (first use, or after a fork)."""
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                # Forked: the parent's thread did not come along, and its events belong to the parent.
                self._thread, self._stop, self._wake = None, threading.Event(), threading.Event()
                self._pid = os.getpid()
            if self._thread is not None and self._thread.is_alive():
                return
            worker = Worker(app, stop=self._stop, wake=self._wake, name="thread executor")
            self._thread = threading.Thread(
                target=_run_quietly, args=(worker,), name="discord-roles-executor", daemon=True
            )
            self._thread.start()
            _running.add(self)

    def submit(self, app: Flask, work: Work) -> None:
        self.ensure_started(app)
        self._wake.set()

    def shutdown(self, wait: bool = True) -> None:
        """Stop the loop: calls in flight finish, claimed rows not started are handed back."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if wait and thread is not None and thread.is_alive() and thread is not threading.current_thread():
            # In-flight calls are bounded by the timeout and the rate-limit wait, three calls per row.
            settings = self._settings
            thread.join(timeout=3 * (settings.http_timeout + settings.rate_limit_wait) + 1)
        self._thread = None
        self._stop = threading.Event()


def _run_quietly(worker: object) -> None:
    try:
        worker.run()  # type: ignore[attr-defined]
    except Exception:
        logger.exception("the delivery thread stopped on an error; it restarts on the next commit")


_running: weakref.WeakSet[ThreadExecutor] = weakref.WeakSet()


@atexit.register
def _stop_running_executors() -> None:
    for executor in list(_running):
        executor.shutdown(wait=True)


def make_executor(settings: Settings) -> Executor:
    """The executor ``DISCORD_ROLES_EXECUTOR`` names."""
    if settings.executor == "inline":
        return InlineExecutor()
    if settings.executor == "worker":
        return WorkerExecutor()
    if settings.executor == "celery":
        return CeleryExecutor()
    return ThreadExecutor(settings)
