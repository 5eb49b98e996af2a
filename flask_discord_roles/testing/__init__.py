"""Testing helpers for hosts and for us: a fake Discord server, signed interactions, a pytest plugin, and
a ready-made world (a bot in a server with roles and members) with helpers to run commands and link
customers.

``FakeDiscord`` is a real HTTP server on 127.0.0.1 that enforces what Discord enforces (auth, role
hierarchy, permissions, rate limits, OAuth2) so code tested against it behaves the same in production.

Names are imported on first use: the pytest plugin lives in this package and loads in every test run
of every host, so importing the package must not pull in werkzeug, requests or nacl by itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask_discord_roles.testing.fake import FakeDiscord
    from flask_discord_roles.testing.fixtures import (
        DiscordWorld,
        InteractionAnswer,
        build_discord_world,
        link_customer,
    )
    from flask_discord_roles.testing.ratelimits import RateLimitHit
    from flask_discord_roles.testing.recorder import RecordedCall
    from flask_discord_roles.testing.signing import InteractionResult, sign_interaction
    from flask_discord_roles.testing.state import (
        FakeBot,
        FakeChannel,
        FakeGuild,
        FakeMember,
        FakeRole,
        FakeUser,
    )

_HOMES = {
    "FakeDiscord": ".fake",
    "DiscordWorld": ".fixtures",
    "InteractionAnswer": ".fixtures",
    "build_discord_world": ".fixtures",
    "link_customer": ".fixtures",
    "RateLimitHit": ".ratelimits",
    "RecordedCall": ".recorder",
    "InteractionResult": ".signing",
    "sign_interaction": ".signing",
    "FakeBot": ".state",
    "FakeChannel": ".state",
    "FakeGuild": ".state",
    "FakeMember": ".state",
    "FakeRole": ".state",
    "FakeUser": ".state",
}

__all__ = [
    "DiscordWorld",
    "FakeBot",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "InteractionAnswer",
    "InteractionResult",
    "RateLimitHit",
    "RecordedCall",
    "build_discord_world",
    "link_customer",
    "sign_interaction",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value
