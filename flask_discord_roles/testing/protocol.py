"""The plumbing shared by every fake route: replies, Discord-shaped errors, the route table, the context.

Routes register themselves with :func:`route`; the server matches them in registration order, so a
literal segment (``@original``) must be registered before a parameter in the same place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

if TYPE_CHECKING:
    from flask_discord_roles.testing.oauth import Grant, OAuthStore
    from flask_discord_roles.testing.state import FakeBot
    from flask_discord_roles.testing.world import World

__all__ = [
    "API_PREFIX",
    "ROUTES",
    "ApiError",
    "Context",
    "Handler",
    "Reply",
    "Route",
    "discord_error",
    "field_error",
    "invalid_form",
    "json_reply",
    "missing_access",
    "missing_permissions",
    "no_content",
    "route",
    "unauthorized",
]

API_PREFIX = r"/api(?:/v\d+)?"


@dataclass
class Reply:
    """An HTTP answer before rate-limit headers are added."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(data: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(data).encode(), "application/json")


def no_content() -> Reply:
    return Reply(204)


class ApiError(Exception):
    """Raised anywhere in a handler to answer with ``reply`` and change nothing."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def discord_error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> ApiError:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return ApiError(json_reply(body, status))


def field_error(code: str, message: str) -> dict[str, Any]:
    """One leaf of Discord's nested ``errors`` object."""
    return {"_errors": [{"code": code, "message": message}]}


def invalid_form(errors: dict[str, Any]) -> ApiError:
    return discord_error(400, 50035, "Invalid Form Body", errors)


def unauthorized() -> ApiError:
    return discord_error(401, 0, "401: Unauthorized")


def missing_access() -> ApiError:
    return discord_error(403, 50001, "Missing Access")


def missing_permissions() -> ApiError:
    return discord_error(403, 50013, "Missing Permissions")


@dataclass
class Context:
    """What a handler gets: the world (lock held), the request, path parameters and the caller."""

    world: World
    oauth: OAuthStore
    request: Request
    params: dict[str, str]
    base_url: str
    bot: FakeBot | None = None
    grant: Grant | None = None
    audit_log_reason: str | None = None

    def json_body(self) -> Any:
        raw = self.request.get_data(cache=True)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise discord_error(400, 50109, "The request body contains invalid JSON.") from None

    def json_object(self) -> dict[str, Any]:
        body = self.json_body()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise invalid_form(
                {
                    "_errors": [
                        {
                            "code": "DICT_TYPE_CONVERT",
                            "message": "Only dictionaries may be used in a DictType",
                        }
                    ]
                }
            )
        return body

    def require_bot(self) -> FakeBot:
        if self.bot is None:
            raise unauthorized()
        return self.bot


Handler = Callable[[Context], Reply]


@dataclass(frozen=True)
class Route:
    """A method + path pattern, its rate-limit family, how callers authenticate and its major param."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    family: str
    auth: str
    major: tuple[str, ...]
    global_limited: bool


ROUTES: list[Route] = []


def _compile(template: str, *, site: bool) -> re.Pattern[str]:
    body = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template.replace(".", r"\."))
    return re.compile(("" if site else API_PREFIX) + body + "/?$")


def route(
    method: str,
    template: str,
    *,
    family: str = "default",
    auth: str = "bot",
    major: tuple[str, ...] = (),
    global_limited: bool = True,
    site: bool = False,
) -> Callable[[Handler], Handler]:
    """Register a handler. ``auth`` is bot, bearer, bot_or_bearer or none."""

    def register(handler: Handler) -> Handler:
        pattern = _compile(template, site=site)
        ROUTES.append(Route(method, pattern, handler, family, auth, major, global_limited))
        return handler

    return register
