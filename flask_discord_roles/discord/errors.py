"""What can go wrong talking to Discord, split by what the caller should do about it.

:class:`TransientDiscordError` means "try again later" (Discord slow, down, or limiting us);
:class:`PermanentDiscordError` means a person has to fix something (role hierarchy, a deleted role, a
revoked token). Every error carries Discord's JSON ``code`` and ``message`` and the route *template* —
never a token, never the request's headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "CANNOT_MESSAGE_USER",
    "INTERACTION_ALREADY_ACKNOWLEDGED",
    "INVALID_FORM_BODY",
    "INVALID_OAUTH_TOKEN",
    "MISSING_ACCESS",
    "MISSING_PERMISSIONS",
    "UNKNOWN_GUILD",
    "UNKNOWN_INTERACTION",
    "UNKNOWN_MEMBER",
    "UNKNOWN_ROLE",
    "UNKNOWN_USER",
    "UNKNOWN_WEBHOOK",
    "BadRequest",
    "DiscordConnectionError",
    "DiscordError",
    "DiscordServerError",
    "DiscordTimeout",
    "Forbidden",
    "NotFound",
    "PermanentDiscordError",
    "RateLimited",
    "TokenDisabled",
    "TransientDiscordError",
    "Unauthorized",
]

UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_ROLE = 10011
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
INTERACTION_ALREADY_ACKNOWLEDGED = 40060
MISSING_ACCESS = 50001
CANNOT_MESSAGE_USER = 50007
MISSING_PERMISSIONS = 50013
INVALID_OAUTH_TOKEN = 50025
INVALID_FORM_BODY = 50035


class DiscordError(Exception):
    """A request to Discord did not succeed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        route: str | None = None,
        errors: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.route = route
        # Discord's per-field details for 50035 (invalid form body), as it sent them.
        self.errors = errors
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.code is not None:
            parts.append(f"code {self.code}")
        where = f" on {self.route}" if self.route else ""
        head = " ".join(parts)
        return f"{head}: {self.message}{where}" if head else f"{self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class TransientDiscordError(DiscordError):
    """Worth retrying later: Discord was slow, down or rate limiting us."""


class DiscordServerError(TransientDiscordError):
    """Discord answered 5xx."""


class DiscordTimeout(TransientDiscordError):
    """Discord did not answer in time. The request may still have been applied."""


class DiscordConnectionError(TransientDiscordError):
    """Discord could not be reached."""


class RateLimited(TransientDiscordError):
    """Still rate limited after waiting as long as we were allowed to.

    ``from_discord`` says whose limit it is: True when Discord answered 429 (to this request, or to an
    earlier one whose pause still holds); False when the request was never sent because our own pacing,
    from the limits Discord's headers announced, says its slot frees after the caller's ``max_wait``.
    Only the first is "Discord is rate limiting us"; ``status`` is 429 only then.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        is_global: bool = False,
        scope: str | None = None,
        route: str | None = None,
        from_discord: bool = True,
    ) -> None:
        self.retry_after = retry_after
        self.is_global = is_global
        self.scope = scope
        self.from_discord = from_discord
        super().__init__(message, status=429 if from_discord else None, route=route)


class PermanentDiscordError(DiscordError):
    """Retrying will not help until a person fixes something."""


class BadRequest(PermanentDiscordError):
    """400: Discord refused the request's content (e.g. code 50035, invalid form body)."""


class Unauthorized(PermanentDiscordError):
    """401: the token is wrong, reset or revoked."""


class TokenDisabled(Unauthorized):
    """This client got a 401 earlier and no longer sends requests with its token."""


class Forbidden(PermanentDiscordError):
    """403: missing permission or access (50013: hierarchy or Manage Roles; 50001: no access)."""


class NotFound(PermanentDiscordError):
    """404: unknown guild, member, role, user, webhook or interaction."""
