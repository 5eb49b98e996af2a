"""The engine's settings: the fast queue, deliveries run inline (``shop`` comes from the root conftest).

A module that runs deliveries another way marks itself, e.g.
``pytestmark = pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="worker")``; a module whose tests buy a
mapped package extends ``shop`` with the mapping.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.shop import FAST_QUEUE


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Short backoff and leases, so fault tests finish in seconds; deliveries run inline."""
    return dict(FAST_QUEUE)
