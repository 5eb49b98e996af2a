"""Deprecated import path: ``DiscordRoles`` is exported by the package itself.

Write ``from flask_discord_roles import DiscordRoles``; this module goes away in 1.0. ``get_state`` and
``DiscordRolesState`` are internal now: the public modules (``bots``, ``deliveries``, ``guilds``, ...) and
``DiscordRoles``' own methods (``models``, ``shutdown``) do what they were used for.
"""

from __future__ import annotations

from typing import Any

from flask_discord_roles._extension import DiscordRoles as _DiscordRoles
from flask_discord_roles._runtime.deprecation import MovedNames
from flask_discord_roles._runtime.state import DiscordRolesState as _DiscordRolesState
from flask_discord_roles._runtime.state import get_state as _get_state

__all__ = ["DiscordRoles", "DiscordRolesState", "get_state"]  # noqa: F822  (served by __getattr__)

_INTERNAL = (
    "it is internal now; use the public modules (bots, deliveries, guilds, ...) or DiscordRoles' methods"
)
_MOVED = MovedNames(
    __name__,
    DiscordRoles=(_DiscordRoles, "import it from flask_discord_roles"),
    DiscordRolesState=(_DiscordRolesState, _INTERNAL),
    get_state=(_get_state, _INTERNAL),
)


def __getattr__(name: str) -> Any:
    return _MOVED.get(name)
