"""The engine's fixtures: an app on the fast queue, and a shop open on FakeDiscord.

A module that runs deliveries another way marks itself, e.g.
``pytestmark = pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="worker")``; a module whose tests buy a
mapped package extends ``shop`` with the mapping.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles.testing import FakeDiscord
from tests.shop import FAST_QUEUE, Shop, open_shop


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Short backoff and leases, so fault tests finish in seconds; deliveries run inline."""
    return dict(FAST_QUEUE)


@pytest.fixture
def shop(app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord) -> Shop:
    """A store whose bot is in its server with Manage Roles; nothing linked or mapped yet."""
    return open_shop(app, db, fake_discord)
