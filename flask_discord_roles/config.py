"""Deprecated import path: ``ConfigurationError`` is exported by the package itself.

Write ``from flask_discord_roles import ConfigurationError`` (it lives in ``flask_discord_roles.errors``);
this module goes away in 1.0. The settings are listed on the docs' configuration page.
"""

from __future__ import annotations

from typing import Any

from flask_discord_roles._runtime.deprecation import MovedNames
from flask_discord_roles.errors import ConfigurationError as _ConfigurationError

__all__ = ["ConfigurationError"]  # noqa: F822  (each name is served by __getattr__, with a warning)

_MOVED = MovedNames(__name__, ConfigurationError=(_ConfigurationError, "import it from flask_discord_roles"))


def __getattr__(name: str) -> Any:
    return _MOVED.get(name)
