"""The interactions webhook's fixtures: an app whose web process only answers (a worker delivers), and a
plain test client to post to the webhook with (``shop`` comes from the root conftest).

A module that differs in settings marks itself with ``pytest.mark.app_settings``; one whose store
needs more than the open shop extends ``shop``.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Nothing runs in the web process: the webhook answers, and a test runs the worker when it wants
    the deliveries done."""
    return {"DISCORD_ROLES_EXECUTOR": "worker"}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A plain test client: pytest-flask's ``client`` would keep the last request's context open."""
    return app.test_client()
