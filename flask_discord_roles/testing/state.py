"""The Discord objects the fake keeps in memory, shaped so they serialise exactly like Discord's JSON.

These are plain dataclasses: tests read them freely, and every change made while the server runs goes
through :class:`~flask_discord_roles.testing.world.World`, which holds the lock.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nacl.signing import SigningKey

__all__ = [
    "DISCORD_EPOCH_MS",
    "DM",
    "GUILD_TEXT",
    "FakeBot",
    "FakeChannel",
    "FakeGuild",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "InteractionRecord",
    "iso_now",
    "make_bot_token",
    "new_signing_key",
    "new_snowflake",
]

DISCORD_EPOCH_MS = 1420070400000

# Guild channel and DM channel types, as Discord numbers them.
GUILD_TEXT = 0
DM = 1


class _Snowflakes:
    """Unique, increasing snowflakes whose timestamp part is the real creation time, like Discord's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22 | (1 << 17)
            self._last = max(candidate, self._last + 1)
            return str(self._last)


new_snowflake = _Snowflakes().next


def iso_now() -> str:
    """Discord's ISO-8601 timestamps with microseconds and an explicit UTC offset."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def make_bot_token(user_id: str) -> str:
    """A token shaped like Discord's: base64(user id) . base64(timestamp) . HMAC-like tail."""
    stamp = int(time.time()).to_bytes(4, "big")
    return f"{_b64url(user_id.encode())}.{_b64url(stamp)}.{_b64url(secrets.token_bytes(28))}"


@dataclass
class FakeUser:
    """A Discord account; ``dms_open=False`` makes DMs to it fail with 50007 like a privacy setting."""

    id: str
    username: str
    global_name: str | None = None
    avatar: str | None = None
    bot: bool = False
    discriminator: str = "0"
    dms_open: bool = True
    locale: str = "en-US"
    email: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The user object as anyone sees it, with every field Discord always sends (nulls included)."""
        data: dict[str, Any] = {
            "id": self.id,
            "username": self.username,
            "global_name": self.global_name,
            "avatar": self.avatar,
            "discriminator": self.discriminator,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }
        if self.bot:
            data["bot"] = True
        return data

    def to_private_json(self, *, with_email: bool) -> dict[str, Any]:
        """The user as ``GET /users/@me`` shows it to itself: with ``mfa_enabled``, ``locale``, premium.

        ``with_email`` (a bot, or a token with the ``email`` scope) adds ``email`` and ``verified``; a
        bot's email is null, as on Discord.
        """
        data = {**self.to_json(), "mfa_enabled": False, "locale": self.locale, "premium_type": 0}
        if with_email:
            data.update(email=self.email, verified=True)
        return data


@dataclass
class FakeBot:
    """An application with its bot user: the user id is deliberately not the application id."""

    application_id: str
    user_id: str
    name: str
    token: str
    public_key: str
    signing_key: SigningKey
    client_secret: str
    avatar: str | None = None
    is_token_valid: bool = True
    # The GUILD_MEMBERS privileged intent, switched on in the Developer Portal: List Guild Members needs it.
    members_intent: bool = True
    # The developer account that owns the application; it lives outside the fake's users.
    owner_id: str = field(default_factory=lambda: new_snowflake())

    @property
    def client_id(self) -> str:
        return self.application_id

    def application_json(self) -> dict[str, Any]:
        """The application object as Discord shows it to others (``/oauth2/@me``, messages)."""
        return {
            "id": self.application_id,
            "name": self.name,
            "icon": None,
            "description": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": self.public_key,
            "flags": 0,
            "flags_new": "0",
        }

    def private_application_json(self, bot_user: dict[str, Any]) -> dict[str, Any]:
        """``GET /applications/@me``: the application as its own bot sees it, with its developer as owner."""
        owner = FakeUser(self.owner_id, f"{self.name.lower().replace(' ', '_')}_developer")
        return {
            **self.application_json(),
            "bot": bot_user,
            "owner": owner.to_json(),
            "team": None,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "approximate_guild_count": 0,
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "explicit_content_filter": 0,
            "eligible_oauth2_scopes": ["applications.commands", "bot", "identify", "guilds.join"],
            "integration_types_config": {"0": {}},
        }


@dataclass
class FakeRole:
    """A guild role; ``bot_id`` marks the managed role Discord creates when a bot joins."""

    id: str
    guild_id: str
    name: str
    position: int
    permissions: int = 0
    managed: bool = False
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    bot_id: str | None = None

    @property
    def hierarchy_key(self) -> tuple[int, int]:
        """Sort key of the role list: higher position is higher, and on a tie the lower id is higher."""
        return (self.position, -int(self.id))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": None,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": self.hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": self.mentionable,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": self.bot_id}
        return data


@dataclass
class FakeMember:
    """A user's membership of one guild; ``roles`` never contains @everyone, as in Discord."""

    user_id: str
    roles: list[str] = field(default_factory=list)
    joined_at: str = field(default_factory=iso_now)
    nick: str | None = None

    def to_json(self, user: FakeUser) -> dict[str, Any]:
        """The guild member object, ``user`` being the account this membership belongs to."""
        return {
            "user": user.to_json(),
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": list(self.roles),
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }


@dataclass
class FakeGuild:
    """A server: its roles (including @everyone, whose id is the guild's) and its members."""

    id: str
    name: str
    owner_id: str
    roles: dict[str, FakeRole] = field(default_factory=dict)
    members: dict[str, FakeMember] = field(default_factory=dict)

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]

    def to_json(self, *, with_counts: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "icon": None,
            "description": None,
            "home_header": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "features": [],
            "owner_id": self.owner_id,
            "application_id": None,
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 0,
            "roles": [role.to_json() for role in self.roles.values()],
            "default_message_notifications": 0,
            "mfa_level": 0,
            "explicit_content_filter": 0,
            "max_presences": None,
            "max_members": 500000,
            "max_stage_video_channel_users": 50,
            "max_video_channel_users": 25,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "rules_channel_id": None,
            "safety_alerts_channel_id": None,
            "public_updates_channel_id": None,
            "premium_progress_bar_enabled": False,
            "nsfw": False,
            "nsfw_level": 0,
            "emojis": [],
            "stickers": [],
            "incidents_data": None,
        }
        if with_counts:
            data["approximate_member_count"] = len(self.members)
            data["approximate_presence_count"] = (len(self.members) + 1) // 2
        return data


@dataclass
class FakeChannel:
    """A guild text channel (type 0, with permission overwrites) or a DM (type 1, with recipients)."""

    id: str
    type: int
    name: str | None = None
    guild_id: str | None = None
    overwrites: list[dict[str, Any]] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    position: int = 0

    def to_json(self, users: dict[str, FakeUser], *, viewer_id: str | None = None) -> dict[str, Any]:
        """The channel as Discord sends it; a DM lists its recipients other than ``viewer_id``."""
        if self.type == DM:
            return {
                "id": self.id,
                "type": DM,
                "last_message_id": self.messages[-1]["id"] if self.messages else None,
                "flags": 0,
                "recipients": [
                    users[uid].to_json() for uid in self.recipients if uid in users and uid != viewer_id
                ],
            }
        return {
            "id": self.id,
            "type": self.type,
            "guild_id": self.guild_id,
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [
                {**ow, "allow": str(ow["allow"]), "deny": str(ow["deny"])} for ow in self.overwrites
            ],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "last_message_id": self.messages[-1]["id"] if self.messages else None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }


@dataclass
class InteractionRecord:
    """An interaction the fake sent: its token lives 15 minutes and may be acknowledged once.

    ``answer_in_flight`` is true while the fake waits, over real HTTP, for the app's answer to it.
    """

    id: str
    application_id: str
    token: str
    created: float
    sent_at: float | None = None
    acknowledged: bool = False
    answer_in_flight: bool = False
    original: dict[str, Any] | None = None
    followups: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def age_origin(self) -> float:
        """Deadlines run from delivery to the app (or from minting if never delivered)."""
        return self.sent_at if self.sent_at is not None else self.created


def new_signing_key() -> SigningKey:
    return SigningKey.generate()
