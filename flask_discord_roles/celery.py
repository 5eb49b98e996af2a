"""Running deliveries as Celery tasks (``DISCORD_ROLES_EXECUTOR = "celery"``).

The host owns its Celery app and keeps it at ``app.extensions["celery"]``, as in Flask's Celery guide
(``celery_init_app``). Three tasks run our code in the host's Celery workers:

``flask_discord_roles.run_deliveries``
    Sent once per commit that made rows due, with the ids of those rows (``delivery_ids`` and
    ``notification_ids``, lists of ints, and ``reply_ids`` when a ``/claim`` is waiting for its answer).
    It claims and runs exactly those rows that are still due, answers last.
``flask_discord_roles.process_due``
    One pass of the worker loop: retries whose backoff is over, expiry of unclaimed deliveries, the end of
    time-limited grants past their expiry plus grace and the expiry reminders that are due, and rows
    whose task was lost (a broker hiccup, a web process killed right after its commit), and a page of
    each running reconciliation.
``flask_discord_roles.start_reconcile``
    Starts reconciling every store whose ``reconcile_mode`` is not ``off`` (optional ``store_id`` and
    ``guild_id`` narrow it); schedule it with beat (nightly, say). ``process_due`` steps the runs.

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

The tasks are idempotent (``start_reconcile`` keeps a server's running run). A runner claims a row with
one UPDATE under a lease and records the outcome only while it still holds that lease, so a task
delivered twice, a ``run_deliveries`` racing a ``process_due``, or two overlapping beat passes never run
one row twice: the second finds nothing due.
That is also why the tasks need no Celery retries: a task that fails leaves its rows in the database,
and the next ``process_due`` picks them up.

The web process only *sends* ``run_deliveries`` (by name, with ``send_task``), so it does not need the
tasks registered; with ``task_always_eager`` (tests) it runs the registered task in place instead, since
Celery ignores eagerness for ``send_task``. Task messages carry row ids only: no tokens, no keys.

Celery ships no type information, so its objects are typed ``Any`` here; this module does not import
Celery at all and works with whatever Celery app the host hands it.
"""

from __future__ import annotations

from flask_discord_roles._engine.celery_tasks import (
    PROCESS_DUE,
    RUN_DELIVERIES,
    START_RECONCILE,
    register_tasks,
)

__all__ = ["PROCESS_DUE", "RUN_DELIVERIES", "START_RECONCILE", "register_tasks"]
