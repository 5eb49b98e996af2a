"""Deprecated import path: ``generate_key`` is exported by the package itself.

Write ``from flask_discord_roles import generate_key``; this module goes away in 1.0.
"""

from __future__ import annotations

from typing import Any

from flask_discord_roles._runtime.crypto import generate_key as _generate_key
from flask_discord_roles._runtime.deprecation import MovedNames

__all__ = ["generate_key"]  # noqa: F822  (each name is served by __getattr__, with a warning)

_MOVED = MovedNames(__name__, generate_key=(_generate_key, "import it from flask_discord_roles"))


def __getattr__(name: str) -> Any:
    return _MOVED.get(name)
