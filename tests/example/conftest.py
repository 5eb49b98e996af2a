"""The example storefront's fixtures: the demo, running for real on the test's database.

A module that drives the demo differently (a test client posting forms, no CSRF token read) marks itself
with ``pytest.mark.app_settings``, which the demo's app gets on top of its own settings.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from example_app.demo import Demo
from tests.conftest import marked_settings
from tests.demo import running_demo


@pytest.fixture
def demo(database_url: str, request: pytest.FixtureRequest) -> Iterator[Demo]:
    """The demo exactly as ``make demo`` starts it (thread executor and all), on a free port."""
    with running_demo(database_url, **marked_settings(request)) as running:
        yield running
