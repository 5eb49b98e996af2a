"""The Discord REST client: one ``requests.Session`` per bot, rate limits respected, retries with backoff.

It knows nothing of Flask or the database. One client per bot token should be shared by every thread
that talks as that bot (the extension's ``ClientPool`` does that), because the global limit is per bot.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from .errors import (
    BadRequest,
    DiscordConnectionError,
    DiscordError,
    DiscordServerError,
    DiscordTimeout,
    Forbidden,
    NotFound,
    PermanentDiscordError,
    RateLimited,
    TokenDisabled,
    Unauthorized,
)
from .ratelimit import BucketManager, GlobalLimiter, RateLimitHeaders
from .routes import Route

logger = logging.getLogger("flask_discord_roles.discord")

DEFAULT_BASE_URL = "https://discord.com/api/v10"
DEFAULT_USER_AGENT = "DiscordBot (https://github.com/flask-discord-roles/flask-discord-roles, 0.1.0)"
AUDIT_LOG_REASON_LIMIT = 512

_PERMANENT_BY_STATUS: dict[int, type[PermanentDiscordError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
}


class DiscordClient:
    """Talks to Discord's REST API as one bot.

    Thread safe. Blocks (rather than fails) while a rate limit says wait, up to ``max_wait`` seconds per
    call. Retries 5xx, timeouts and connection errors ``max_retries`` times with exponential backoff and
    full jitter; waits out 429s without spending those retries. After a 401 the token is considered
    revoked and every later call raises :class:`TokenDisabled` without touching the network.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | tuple[float, float] = 10.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        global_limit: int = 50,
        global_period: float = 1.0,
        max_wait: float = 300.0,
        max_rate_limit_retries: int = 20,
        user_agent: str = DEFAULT_USER_AGENT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_wait = max_wait
        self.max_rate_limit_retries = max_rate_limit_retries
        self.user_agent = user_agent
        self._sleep = sleep
        self._session = session or self._new_session()
        self._buckets = BucketManager()
        self._global = GlobalLimiter(global_limit, global_period)
        self._disabled = threading.Event()

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        # Many threads share one bot's client; let them share a generous connection pool.
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=64, pool_block=True, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def __repr__(self) -> str:
        state = "disabled" if self._disabled.is_set() else "active"
        return f"<DiscordClient {self.base_url} {state}>"

    def __enter__(self) -> DiscordClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session's connections."""
        self._session.close()

    @property
    def is_disabled(self) -> bool:
        """True once Discord answered 401 for this token."""
        return self._disabled.is_set()

    # -- the request loop ------------------------------------------------------------------------

    def request(
        self,
        route: Route,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        reason: str | None = None,
        auth: bool = True,
    ) -> Any:
        """Send ``route`` and return the parsed JSON (None for 204). Raises a :class:`DiscordError`."""
        needs_token = auth and not route.is_webhook
        if needs_token and self._disabled.is_set():
            raise TokenDisabled(
                "this bot token was rejected by Discord earlier; save a new one", status=401, route=route.key
            )
        headers = {"User-Agent": self.user_agent}
        if needs_token:
            headers["Authorization"] = f"Bot {self._token}"
        if reason:
            headers["X-Audit-Log-Reason"] = quote(reason[:AUDIT_LOG_REASON_LIMIT], safe="")
        url = self.base_url + route.path
        deadline = time.monotonic() + self.max_wait
        failures = 0
        rate_limited = 0
        while True:
            bucket = self._buckets.bucket_for(route.key, route.major)
            try:
                if not bucket.acquire(deadline):
                    continue  # the route moved to a shared bucket: look it up again
            except TimeoutError:
                raise RateLimited(
                    "waited too long for a rate limit", retry_after=self.max_wait, route=route.key
                ) from None
            if needs_token:
                try:
                    self._global.acquire(deadline)
                except TimeoutError:
                    bucket.release(None)
                    raise RateLimited(
                        "waited too long for the global rate limit",
                        retry_after=self.max_wait,
                        is_global=True,
                        route=route.key,
                    ) from None
            limits: RateLimitHeaders | None = None
            outcome: _Result | DiscordError
            try:
                response = self._session.request(
                    route.method,
                    url,
                    headers=headers,
                    json=json,
                    params=params,
                    data=form,
                    timeout=self.timeout,
                )
                limits = RateLimitHeaders.parse(response.headers)
                self._buckets.learn_hash(route.key, route.major, limits)
                outcome = self._handle(route, response, limits, bucket)
            except requests.Timeout:
                outcome = DiscordTimeout("Discord did not answer in time", route=route.key)
            except requests.ConnectionError:
                outcome = DiscordConnectionError("could not connect to Discord", route=route.key)
            finally:
                # Exactly once per acquire, whatever happened, or a slot would stay "in flight" for good.
                bucket.release(limits)
                if needs_token:
                    self._global.release()
            if isinstance(outcome, _Result):
                return outcome.value
            error = outcome

            if isinstance(error, RateLimited):
                rate_limited += 1
                if rate_limited > self.max_rate_limit_retries:
                    raise error
                continue  # the limiter now holds requests back for retry_after
            if isinstance(error, PermanentDiscordError):
                raise error
            failures += 1
            if failures > self.max_retries:
                raise error
            delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (failures - 1)))
            logger.info("%s failed (%s); retry %d in %.2fs", route.key, error, failures, delay)
            self._sleep(delay)

    def _handle(
        self, route: Route, response: requests.Response, limits: RateLimitHeaders, bucket: Any
    ) -> _Result | DiscordError:
        status = response.status_code
        logger.debug("%s -> %d (bucket %s)", route.key, status, limits.bucket)
        if status < 300:
            return _Result(None if status == 204 or not response.content else _json(response))
        body = _json(response)
        code = body.get("code") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        if status == 429:
            retry_after = _retry_after(response, body)
            is_global = response.headers.get("X-RateLimit-Global", "").lower() == "true" or bool(
                isinstance(body, dict) and body.get("global")
            )
            scope = response.headers.get("X-RateLimit-Scope")
            logger.warning(
                "rate limited on %s (%s scope): retrying after %.3fs",
                route.key,
                "global" if is_global else (scope or "route"),
                retry_after,
            )
            if is_global:
                self._global.pause(retry_after)
            else:
                # The reply may just have moved the route to a named bucket: pause that one too.
                bucket.pause(retry_after)
                self._buckets.bucket_for(route.key, route.major).pause(retry_after)
            return RateLimited(
                str(message or "rate limited"),
                retry_after=retry_after,
                is_global=is_global,
                scope=scope,
                route=route.key,
            )
        if status >= 500:
            return DiscordServerError(
                str(message or f"Discord answered {status}"), status=status, code=code, route=route.key
            )
        error_class = _PERMANENT_BY_STATUS.get(status, PermanentDiscordError)
        if error_class is Unauthorized and not route.is_webhook:
            self._disabled.set()
            logger.warning("Discord rejected the bot token (401); no further requests with it")
        return error_class(str(message or f"HTTP {status}"), status=status, code=code, route=route.key)

    # -- the calls the product makes -------------------------------------------------------------

    def get_current_user(self) -> dict[str, Any]:
        """The bot's own user (its id is not always the application id)."""
        return dict(self.request(Route("GET", "/users/@me")))

    def get_guild(self, guild_id: str, *, with_counts: bool = False) -> dict[str, Any]:
        params = {"with_counts": "true"} if with_counts else None
        return dict(self.request(Route("GET", "/guilds/{guild_id}", guild_id=guild_id), params=params))

    def get_guild_roles(self, guild_id: str) -> list[dict[str, Any]]:
        return list(self.request(Route("GET", "/guilds/{guild_id}/roles", guild_id=guild_id)))

    def get_guild_channels(self, guild_id: str) -> list[dict[str, Any]]:
        return list(self.request(Route("GET", "/guilds/{guild_id}/channels", guild_id=guild_id)))

    def get_channel(self, channel_id: str) -> dict[str, Any]:
        return dict(self.request(Route("GET", "/channels/{channel_id}", channel_id=channel_id)))

    def get_member(self, guild_id: str, user_id: str) -> dict[str, Any]:
        route = Route("GET", "/guilds/{guild_id}/members/{user_id}", guild_id=guild_id, user_id=user_id)
        return dict(self.request(route))

    def add_member_role(
        self, guild_id: str, user_id: str, role_id: str, *, reason: str | None = None
    ) -> None:
        """Give a member a role (204; a repeat is a no-op)."""
        self.request(_member_role_route("PUT", guild_id, user_id, role_id), reason=reason)

    def remove_member_role(
        self, guild_id: str, user_id: str, role_id: str, *, reason: str | None = None
    ) -> None:
        """Take a role from a member (204; a repeat is a no-op)."""
        self.request(_member_role_route("DELETE", guild_id, user_id, role_id), reason=reason)

    def add_guild_member(
        self, guild_id: str, user_id: str, access_token: str, *, roles: list[str] | None = None
    ) -> dict[str, Any] | None:
        """Add a user to a guild with their OAuth token; None if they were already a member.

        Discord ignores ``roles`` for someone already there: assign those separately.
        """
        body: dict[str, Any] = {"access_token": access_token}
        if roles:
            body["roles"] = roles
        route = Route("PUT", "/guilds/{guild_id}/members/{user_id}", guild_id=guild_id, user_id=user_id)
        member = self.request(route, json=body)
        return None if member is None else dict(member)

    def bulk_overwrite_commands(
        self, application_id: str, commands: list[dict[str, Any]], *, guild_id: str | None = None
    ) -> list[dict[str, Any]]:
        if guild_id is None:
            route = Route("PUT", "/applications/{application_id}/commands", application_id=application_id)
        else:
            route = Route(
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                application_id=application_id,
                guild_id=guild_id,
            )
        return list(self.request(route, json=commands))

    def create_message(self, channel_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        return dict(self.request(route, json=payload))

    def create_dm(self, user_id: str) -> dict[str, Any]:
        return dict(self.request(Route("POST", "/users/@me/channels"), json={"recipient_id": user_id}))

    def edit_original_interaction_response(
        self, application_id: str, interaction_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        route = Route(
            "PATCH",
            "/webhooks/{webhook_id}/{interaction_token}/messages/@original",
            webhook_id=application_id,
            interaction_token=interaction_token,
        )
        return dict(self.request(route, json=payload, auth=False))

    def create_followup_message(
        self, application_id: str, interaction_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        route = Route(
            "POST",
            "/webhooks/{webhook_id}/{interaction_token}",
            webhook_id=application_id,
            interaction_token=interaction_token,
        )
        return dict(self.request(route, json=payload, auth=False))


class _Result:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _member_role_route(method: str, guild_id: str, user_id: str, role_id: str) -> Route:
    return Route(
        method,
        "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
        guild_id=guild_id,
        user_id=user_id,
        role_id=role_id,
    )


def _json(response: requests.Response) -> Any:
    """The body as JSON, or an empty dict when Discord (or a proxy in front of it) sent HTML."""
    try:
        return response.json()
    except ValueError:
        return {}


def _retry_after(response: requests.Response, body: Any) -> float:
    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
        return max(float(body["retry_after"]), 0.0)
    for header in ("X-RateLimit-Reset-After", "Retry-After"):
        try:
            return max(float(response.headers[header]), 0.0)
        except (KeyError, ValueError):
            continue
    return 1.0
