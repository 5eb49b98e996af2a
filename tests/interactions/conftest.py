"""The interactions webhook's fixtures: an app whose web process only answers (a worker delivers), a
shop open on FakeDiscord, and a plain test client to post to the webhook with.

A module that differs in settings marks itself with ``pytest.mark.app_settings``; one whose store
needs more than the open shop extends ``shop``.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles.testing import FakeDiscord
from tests.shop import Shop, open_shop


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Nothing runs in the web process: the webhook answers, and a test runs the worker when it wants
    the deliveries done."""
    return {"DISCORD_ROLES_EXECUTOR": "worker"}


@pytest.fixture
def shop(app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord) -> Shop:
    """A store whose bot is saved and in its server with Manage Roles; nothing linked or mapped yet."""
    return open_shop(app, db, fake_discord)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A plain test client: pytest-flask's ``client`` would keep the last request's context open."""
    return app.test_client()
