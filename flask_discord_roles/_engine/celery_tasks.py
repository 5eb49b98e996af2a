"""The Celery executor and the two tasks it sends; documented in :mod:`flask_discord_roles.celery`."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from flask import Flask

from flask_discord_roles._core.reconcile import start_scheduled_runs
from flask_discord_roles._engine.worker import Worker, run_now
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.errors import ConfigurationError

if TYPE_CHECKING:
    from flask_discord_roles._runtime.executor import Work

logger = logging.getLogger("flask_discord_roles.celery")

RUN_DELIVERIES = "flask_discord_roles.run_deliveries"
"""The task sent after each commit that made rows due."""

PROCESS_DUE = "flask_discord_roles.process_due"
"""The task to schedule with Celery beat: one pass over everything due."""

START_RECONCILE = "flask_discord_roles.start_reconcile"
"""A task to schedule with Celery beat (say nightly): start reconciling every store not ``off``;
``process_due`` then steps the runs a page at a time."""

# Which Flask app each Celery app's tasks serve. Weak both ways: the tasks (owned by the Celery app) hold
# the Flask app, and the Flask app holds the Celery app in its extensions, so a strong value here would
# keep every pair alive for the life of the process.
_registered: weakref.WeakKeyDictionary[Any, weakref.ref[Flask]] = weakref.WeakKeyDictionary()
_registering = threading.Lock()


class CeleryExecutor:
    """Sends one ``run_deliveries`` task per commit to the host's Celery app."""

    name = "celery"

    def submit(self, app: Flask, work: Work) -> None:
        """Send the committed rows to Celery (called after the host's commit)."""
        celery_app = celery_app_of(app)
        kwargs = {
            "delivery_ids": sorted(work.delivery_ids),
            "notification_ids": sorted(work.notification_ids),
        }
        if work.reply_ids:
            # Only when there are some: a worker still on an older release then keeps accepting the task.
            kwargs["reply_ids"] = sorted(work.reply_ids)
        if celery_app.conf.task_always_eager:
            # send_task would ignore eagerness (with a warning) and publish to the broker.
            task = celery_app.tasks.get(RUN_DELIVERIES)
            if task is None:
                raise ConfigurationError(
                    "task_always_eager is on but the flask_discord_roles tasks are not registered on "
                    "app.extensions['celery']: call flask_discord_roles.celery.register_tasks(celery_app, "
                    "app)."
                )
            task.apply_async(kwargs=kwargs)
        else:
            celery_app.send_task(RUN_DELIVERIES, kwargs=kwargs)
        logger.debug(
            "sent %s: %d deliveries, %d notifications",
            RUN_DELIVERIES,
            len(kwargs["delivery_ids"]),
            len(kwargs["notification_ids"]),
        )

    def ensure_started(self, app: Flask) -> None:
        # Nothing to start (the host runs the Celery workers), but a missing Celery app should fail the
        # first request loudly rather than be logged after every commit.
        celery_app_of(app)

    def shutdown(self, wait: bool = True) -> None:
        return None


def celery_app_of(app: Flask) -> Any:
    """The host's Celery app, ``app.extensions["celery"]``; a :class:`ConfigurationError` if missing."""
    celery_app = app.extensions.get("celery")
    if celery_app is None:
        raise ConfigurationError(
            "DISCORD_ROLES_EXECUTOR is 'celery' but app.extensions['celery'] is not set. Create your "
            "Celery app as in Flask's Celery guide (celery_init_app stores it there), call "
            "flask_discord_roles.celery.register_tasks(celery_app, app), and schedule "
            f"{PROCESS_DUE} with Celery beat; or choose another DISCORD_ROLES_EXECUTOR."
        )
    return celery_app


def register_tasks(celery_app: Any, flask_app: Flask) -> None:
    """Register ``run_deliveries`` and ``process_due`` on ``celery_app``, running against ``flask_app``.

    Call it where the Celery app is created (see the module docs), in every process that runs Celery
    workers; web processes that only send tasks may call it too. Calling it again for the same pair does
    nothing. A Celery app serves one Flask app: registering it for a second one raises
    :class:`ConfigurationError`, since ids in a task would be looked up in the wrong database.

    Tasks are registered lazily, the way ``@celery_app.task`` registers them, so the host may still
    configure its Celery app afterwards. They are not *shared* tasks: other Celery apps in the process
    do not get them.
    """
    with _registering:
        previous = _registered.get(celery_app)
        bound = previous() if previous is not None else None
        if bound is flask_app:
            return
        if bound is not None:
            raise ConfigurationError(
                f"this Celery app already runs flask-discord-roles tasks for the Flask app {bound.name!r}; "
                "give each Flask app its own Celery app (as Flask's celery_init_app does)."
            )

        def run_deliveries(
            delivery_ids: Iterable[int] = (),
            notification_ids: Iterable[int] = (),
            reply_ids: Iterable[int] = (),
        ) -> dict[str, int]:
            """Claim and run these rows, if they are still due (someone else may have run them).

            A /claim answer still waiting on a delivery that is retrying is sent by a later
            ``process_due``.
            """
            deliveries = sorted({int(i) for i in delivery_ids})
            notifications = sorted({int(i) for i in notification_ids})
            replies = sorted({int(i) for i in reply_ids})
            counts = {"deliveries": len(deliveries), "notifications": len(notifications)}
            if replies:
                counts["replies"] = len(replies)
            if not (deliveries or notifications or replies):
                return counts

            with flask_app.app_context():
                run_now(flask_app, deliveries, notifications, replies)
            return counts

        def process_due() -> dict[str, int]:
            """One pass over everything due: retries, expiry, ended grants and reminders, a step of each
            running backfill, and rows whose task was lost."""

            with flask_app.app_context():
                totals = Worker(flask_app, name="celery process_due").run(once=True)
            return asdict(totals)

        def start_reconcile(store_id: str | None = None, guild_id: str | None = None) -> dict[str, int]:
            """Start a reconciliation run per linked server of each store whose mode is not off."""
            with flask_app.app_context():
                state = get_state(flask_app)
                runs = start_scheduled_runs(state, store_id, guild_id)
                state.db.session.commit()
            return {"runs": len(runs)}

        # shared=False: a shared task would be added to every Celery app created later in the process.
        # ignore_result: the outcome lives in the database; results would only fill the result backend.
        celery_app.task(name=RUN_DELIVERIES, shared=False, ignore_result=True)(run_deliveries)
        celery_app.task(name=PROCESS_DUE, shared=False, ignore_result=True)(process_due)
        celery_app.task(name=START_RECONCILE, shared=False, ignore_result=True)(start_reconcile)
        _registered[celery_app] = weakref.ref(flask_app)
