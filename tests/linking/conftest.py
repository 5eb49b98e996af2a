"""Linking's settings for the ``app`` fixture: the fast queue, deliveries run inline.

The OAuth flow's tests build their host with ``fresh_app`` and ``tests.linking.LINKING_CONFIG`` instead:
a session secret, a store id, and settings of each test's own on top.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.shop import FAST_QUEUE


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Short backoff and leases, so the roles a link makes due are delivered in the test's time."""
    return dict(FAST_QUEUE)
