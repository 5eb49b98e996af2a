"""Deprecated import path: how times are written is internal now; this module goes away in 1.0.

Every time the tenant API and the Python API's ``to_dict`` views return is already text in UTC with
whole seconds, ``YYYY-MM-DDTHH:MM:SSZ``: parse it with ``%Y-%m-%dT%H:%M:%SZ``.
"""

from __future__ import annotations

from typing import Any

import flask_discord_roles._runtime.timestamps as _timestamps
from flask_discord_roles._runtime.deprecation import MovedNames

__all__ = ["EXAMPLE", "FORMAT", "PATTERN", "format_timestamp"]  # noqa: F822  (served by __getattr__)

_ADVICE = "it is internal now; the times we return are already formatted (UTC, whole seconds, Z)"
_MOVED = MovedNames(__name__, **{name: (getattr(_timestamps, name), _ADVICE) for name in __all__})


def __getattr__(name: str) -> Any:
    return _MOVED.get(name)
