"""A host app for `flask discord-roles worker` subprocesses started by the resilience tests.

    flask --app tests.worker_host:create_app discord-roles worker --concurrency 8

It is built the way ``tests/conftest.build_host_app`` builds the test's own app, on the same database and
with the same encryption key (so the worker can read the bot token the test saved), with
:data:`tests.shop.FAST_QUEUE` settings but ``DISCORD_ROLES_EXECUTOR = "worker"``. Everything it needs
comes from the environment:

``WORKER_HOST_DATABASE_URL``
    The test's database (its SQLite file, or its PostgreSQL URL with the test's schema).
``WORKER_HOST_API_BASE_URL``
    FakeDiscord's ``api_base_url`` (the fake runs in the test process, on loopback).
``WORKER_HOST_ENCRYPTION_KEYS``
    The test app's ``DISCORD_ROLES_ENCRYPTION_KEYS``, comma-separated.
``WORKER_HOST_CONFIG`` (optional)
    A JSON object of further ``DISCORD_ROLES_*`` settings, applied over :data:`tests.shop.FAST_QUEUE`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles
from tests.shop import FAST_QUEUE

DATABASE_URL = "WORKER_HOST_DATABASE_URL"
API_BASE_URL = "WORKER_HOST_API_BASE_URL"
ENCRYPTION_KEYS = "WORKER_HOST_ENCRYPTION_KEYS"
CONFIG = "WORKER_HOST_CONFIG"


def worker_environment(
    database_url: str, api_base_url: str, encryption_keys: str | list[str], **settings: Any
) -> dict[str, str]:
    """The environment variables :func:`create_app` reads (to merge into a copy of ``os.environ``)."""
    keys = encryption_keys if isinstance(encryption_keys, str) else ",".join(encryption_keys)
    return {
        DATABASE_URL: database_url,
        API_BASE_URL: api_base_url,
        ENCRYPTION_KEYS: keys,
        CONFIG: json.dumps(settings),
    }


def create_app() -> Flask:
    """The worker's host app; fails at once, naming the variable, if the test forgot one."""
    missing = [name for name in (DATABASE_URL, API_BASE_URL, ENCRYPTION_KEYS) if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"tests.worker_host needs the environment variable(s) {', '.join(missing)}")
    app = Flask("host_app")
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=os.environ[DATABASE_URL],
        # A pool, as a real worker has (conftest's NullPool is there so no connection outlives a test; a
        # worker's die with its process). Without one, PostgreSQL forks a backend for every transaction.
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 16, "max_overflow": 16},
        DISCORD_ROLES_ENCRYPTION_KEYS=os.environ[ENCRYPTION_KEYS],
        DISCORD_ROLES_API_BASE_URL=os.environ[API_BASE_URL],
    )
    app.config.update(FAST_QUEUE)
    app.config["DISCORD_ROLES_EXECUTOR"] = "worker"
    app.config.update(json.loads(os.environ.get(CONFIG) or "{}"))
    db = SQLAlchemy(app)
    DiscordRoles(app, db=db)
    return app
