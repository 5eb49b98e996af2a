"""The running demo for tests: ``example_app.demo.start_demo`` on a test database and a free port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from example_app.demo import Demo, start_demo

# Hashing the demo accounts' passwords with scrypt costs ~0.15 s each, at every start and sign-in.
FAST_PASSWORD_HASH = "pbkdf2:sha256:1000"


@contextmanager
def running_demo(database_url: str, **config: Any) -> Iterator[Demo]:
    """The demo as ``make demo`` starts it, on ``database_url``, with ``config`` on top; stopped after."""
    demo = start_demo(
        port=0,
        config={
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": sa.pool.NullPool},
            "PASSWORD_HASH_METHOD": FAST_PASSWORD_HASH,
            **config,
        },
    )
    try:
        yield demo
    finally:
        demo.stop()
