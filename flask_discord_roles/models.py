"""Deprecated import path: the tables are internal now; this module goes away in 1.0.

The mapped classes of an app are ``discord_roles.models`` (the ``DiscordRoles`` object's), one attribute
per table; read deliveries, servers and settings through the public modules (``deliveries``, ``guilds``,
``store_settings``, ...), which return plain values.
"""

from __future__ import annotations

from typing import Any

import flask_discord_roles._runtime.models as _models
from flask_discord_roles._runtime.deprecation import MovedNames

__all__ = [  # noqa: F822  (each name is served by __getattr__, with a warning)
    "ApiToken",
    "ClaimReply",
    "Delivery",
    "DiscordAccount",
    "LinkCode",
    "LinkedGuild",
    "Models",
    "ProcessedInteraction",
    "PurchaseNotification",
    "RoleMapping",
    "StoreBot",
    "StoreSettings",
    "utcnow",
]

_ADVICE = "it is internal now; the mapped classes are discord_roles.models (the DiscordRoles object's)"
_MOVED = MovedNames(__name__, **{name: (getattr(_models, name), _ADVICE) for name in __all__})


def __getattr__(name: str) -> Any:
    return _MOVED.get(name)
