"""Running deliveries as Celery tasks (``DISCORD_ROLES_EXECUTOR = "celery"``).

The host owns its Celery app and keeps it at ``app.extensions["celery"]``, as in Flask's Celery guide
(``celery_init_app``). Two tasks run our code in the host's Celery workers:

``flask_discord_roles.run_deliveries``
    Sent once per commit that made rows due, with the ids of those rows (``delivery_ids`` and
    ``notification_ids``, lists of ints, and ``reply_ids`` when a ``/claim`` is waiting for its answer).
    It claims and runs exactly those rows that are still due, answers last.
``flask_discord_roles.process_due``
    One pass of the worker loop: retries whose backoff is over, expiry of unclaimed deliveries, and rows
    whose task was lost (a broker hiccup, a web process killed right after its commit).

Retries with backoff are scheduled *in the database*, not as Celery countdowns, so nothing runs them
unless ``process_due`` is scheduled: run Celery beat with it every 30 seconds or so. Register the tasks
where the Celery app is made, so web processes, workers and beat all see the same app::

    from celery import Celery, Task
    from flask_discord_roles.celery import register_tasks

    def celery_init_app(app: Flask) -> Celery:
        class FlaskTask(Task):
            def __call__(self, *args, **kwargs):
                with app.app_context():
                    return self.run(*args, **kwargs)

        celery_app = Celery(app.name, task_cls=FlaskTask)
        celery_app.config_from_object(app.config["CELERY"])
        celery_app.conf.beat_schedule = {
            "discord-roles": {
                "task": "flask_discord_roles.process_due",
                "schedule": 30.0,
                "options": {"expires": 30.0},  # a pass nobody ran in time is replaced by the next one
            },
        }
        celery_app.set_default()
        app.extensions["celery"] = celery_app
        register_tasks(celery_app, app)
        return celery_app

    # celery -A make_celery worker --loglevel INFO      and      celery -A make_celery beat

Both tasks are idempotent. A runner claims a row with one UPDATE under a lease and records the outcome
only while it still holds that lease, so a task delivered twice, a ``run_deliveries`` racing a
``process_due``, or two overlapping beat passes never run one row twice: the second finds nothing due.
That is also why the tasks need no Celery retries: a task that fails leaves its rows in the database,
and the next ``process_due`` picks them up.

The web process only *sends* ``run_deliveries`` (by name, with ``send_task``), so it does not need the
tasks registered; with ``task_always_eager`` (tests) it runs the registered task in place instead, since
Celery ignores eagerness for ``send_task``. Task messages carry row ids only: no tokens, no keys.

Celery ships no type information, so its objects are typed ``Any`` here; this module does not import
Celery at all and works with whatever Celery app the host hands it.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from flask import Flask

from .config import ConfigurationError

if TYPE_CHECKING:
    from .dispatch import Work

logger = logging.getLogger("flask_discord_roles.celery")

RUN_DELIVERIES = "flask_discord_roles.run_deliveries"
"""The task sent after each commit that made rows due."""

PROCESS_DUE = "flask_discord_roles.process_due"
"""The task to schedule with Celery beat: one pass over everything due."""

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
            from .executors import run_now

            with flask_app.app_context():
                run_now(flask_app, deliveries, notifications, replies)
            return counts

        def process_due() -> dict[str, int]:
            """One pass over everything due: retries, expiry, and rows whose task was lost."""
            from .worker import Worker

            with flask_app.app_context():
                totals = Worker(flask_app, name="celery process_due").run(once=True)
            return asdict(totals)

        # shared=False: a shared task would be added to every Celery app created later in the process.
        # ignore_result: the outcome lives in the database; results would only fill the result backend.
        celery_app.task(name=RUN_DELIVERIES, shared=False, ignore_result=True)(run_deliveries)
        celery_app.task(name=PROCESS_DUE, shared=False, ignore_result=True)(process_due)
        _registered[celery_app] = weakref.ref(flask_app)
