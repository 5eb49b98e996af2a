"""The tenant API's fixtures: an app with the API's settings, and a client holding a read and write token
of store-1 (``shop`` comes from the root conftest).

A module whose tests need more of the store (its server linked, a package mapped, orders placed) extends
``shop`` or ``api`` with those steps; a module that differs in settings marks itself with
``pytest.mark.app_settings``.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.api import API_CONFIG, Api, api_for


@pytest.fixture
def app_config() -> dict[str, Any]:
    """The fast queue, a rate limit no functional test reaches, and Discord calls with room to spare."""
    return dict(API_CONFIG)


@pytest.fixture
def api(app: Flask) -> Api:
    """The store's dashboard: a fresh token of store-1 with the read and write scopes."""
    return api_for(app)
