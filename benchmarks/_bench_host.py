"""The host app the benchmarks' ``flask discord-roles worker`` subprocesses run (and the parent builds).

    flask --app benchmarks._bench_host:create_app discord-roles worker --concurrency 8

It is built the way a storefront builds its app: Flask-SQLAlchemy with its default connection pool, and
``DiscordRoles(app, db=db)``. Everything specific comes from the environment, so the parent process and
every worker read the same database with the same encryption key:

``BENCH_DATABASE_URL``
    SQLAlchemy URL of the run's database (PostgreSQL, with ``search_path`` set to the run's schema).
``BENCH_API_BASE_URL``
    FakeDiscord's ``api_base_url``.
``BENCH_ENCRYPTION_KEYS``
    ``DISCORD_ROLES_ENCRYPTION_KEYS``, comma-separated.
``BENCH_CONFIG`` (optional)
    A JSON object of further ``DISCORD_ROLES_*`` (or other Flask) settings.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles

DATABASE_URL = "BENCH_DATABASE_URL"
API_BASE_URL = "BENCH_API_BASE_URL"
ENCRYPTION_KEYS = "BENCH_ENCRYPTION_KEYS"
CONFIG = "BENCH_CONFIG"


def host_environment(
    database_url: str, api_base_url: str, encryption_keys: str, settings: dict[str, Any]
) -> dict[str, str]:
    """The variables :func:`create_app` reads (merge them into a copy of ``os.environ``)."""
    return {
        DATABASE_URL: database_url,
        API_BASE_URL: api_base_url,
        ENCRYPTION_KEYS: encryption_keys,
        CONFIG: json.dumps(settings),
    }


def build_app(
    database_url: str, api_base_url: str, encryption_keys: str, settings: dict[str, Any]
) -> tuple[Flask, SQLAlchemy]:
    """The host app and its ``db``, with the extension initialised."""
    app = Flask("bench_host")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url,
        DISCORD_ROLES_ENCRYPTION_KEYS=encryption_keys,
        DISCORD_ROLES_API_BASE_URL=api_base_url,
        DISCORD_ROLES_EXECUTOR="worker",
        DISCORD_ROLES_PUBLIC_BASE_URL="http://127.0.0.1",
    )
    app.config.update(settings)
    db = SQLAlchemy(app)
    DiscordRoles(app, db=db)
    return app, db


def create_app() -> Flask:
    """The worker's app factory; fails at once, naming the variable, if one is missing."""
    missing = [name for name in (DATABASE_URL, API_BASE_URL, ENCRYPTION_KEYS) if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"benchmarks._bench_host needs the environment variable(s) {', '.join(missing)}")
    settings = json.loads(os.environ.get(CONFIG) or "{}")
    app, _ = build_app(
        os.environ[DATABASE_URL], os.environ[API_BASE_URL], os.environ[ENCRYPTION_KEYS], settings
    )
    return app
