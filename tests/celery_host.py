"""A host app with a Celery app, for the Celery worker subprocess the Celery executor tests start.

    python -m celery -A tests.celery_host:celery_app worker --pool=solo -Q <queue>

It is built the way a storefront following Flask's Celery guide builds it (``celery_init_app``), on the
test's database and with the test app's encryption key, so the worker can read the bot token the test
saved. Everything comes from the environment (see :func:`celery_environment`):

``CELERY_HOST_DATABASE_URL``
    The test's database (its SQLite file, or its PostgreSQL URL with the test's schema).
``CELERY_HOST_API_BASE_URL``
    FakeDiscord's ``api_base_url`` (the fake runs in the test process, on loopback).
``CELERY_HOST_ENCRYPTION_KEYS``
    The test app's ``DISCORD_ROLES_ENCRYPTION_KEYS``, comma-separated.
``CELERY_HOST_BROKER_URL`` and ``CELERY_HOST_QUEUE``
    The Redis broker and the queue this test run's tasks go to (unique per run).

The apps are built on first access to ``flask_app`` or ``celery_app``, so the test process can import
the helpers here without those variables.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from celery import Celery, Task
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles
from flask_discord_roles.celery import register_tasks
from tests.shop import FAST_QUEUE

DATABASE_URL = "CELERY_HOST_DATABASE_URL"
API_BASE_URL = "CELERY_HOST_API_BASE_URL"
ENCRYPTION_KEYS = "CELERY_HOST_ENCRYPTION_KEYS"
BROKER_URL = "CELERY_HOST_BROKER_URL"
QUEUE = "CELERY_HOST_QUEUE"
_REQUIRED = (DATABASE_URL, API_BASE_URL, ENCRYPTION_KEYS, BROKER_URL, QUEUE)


def celery_config(broker_url: str, queue: str) -> dict[str, Any]:
    """The Celery settings both sides use: one broker, and this run's own queue."""
    return {
        "broker_url": broker_url,
        "task_default_queue": queue,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        # No remote control: its broadcast (pidbox) keys would be shared with every other test run.
        "worker_enable_remote_control": False,
    }


def celery_environment(
    database_url: str, api_base_url: str, encryption_keys: str | list[str], broker_url: str, queue: str
) -> dict[str, str]:
    """The environment variables this module reads (to merge into a copy of ``os.environ``)."""
    keys = encryption_keys if isinstance(encryption_keys, str) else ",".join(encryption_keys)
    return {
        DATABASE_URL: database_url,
        API_BASE_URL: api_base_url,
        ENCRYPTION_KEYS: keys,
        BROKER_URL: broker_url,
        QUEUE: queue,
    }


def celery_init_app(app: Flask) -> Celery:
    """Flask's documented pattern: tasks run in the app's context; the app is at extensions["celery"]."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    app.extensions["celery"] = celery_app
    register_tasks(celery_app, app)
    return celery_app


def create_app() -> Flask:
    """The worker's host app; fails at once, naming the variable, if the test forgot one."""
    missing = [name for name in _REQUIRED if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"tests.celery_host needs the environment variable(s) {', '.join(missing)}")
    app = Flask("host_app")
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=os.environ[DATABASE_URL],
        SQLALCHEMY_ENGINE_OPTIONS={"poolclass": sa.pool.NullPool},
        DISCORD_ROLES_ENCRYPTION_KEYS=os.environ[ENCRYPTION_KEYS],
        DISCORD_ROLES_API_BASE_URL=os.environ[API_BASE_URL],
        CELERY=celery_config(os.environ[BROKER_URL], os.environ[QUEUE]),
    )
    app.config.update(FAST_QUEUE)
    app.config["DISCORD_ROLES_EXECUTOR"] = "celery"
    db = SQLAlchemy(app)
    DiscordRoles(app, db=db)
    celery_init_app(app)
    return app


_apps: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    # `celery -A tests.celery_host:celery_app` looks the attribute up: build the apps then, once.
    if name not in ("flask_app", "celery_app"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _apps:
        flask_app = create_app()
        _apps.update(flask_app=flask_app, celery_app=flask_app.extensions["celery"])
    return _apps[name]
