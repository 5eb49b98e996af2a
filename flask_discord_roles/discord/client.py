"""The Discord REST client: one ``requests.Session`` per token, rate limits respected, retries with backoff.

It knows nothing of Flask or the database. One client per bot token should be shared by every thread
that talks as that bot (the extension's ``ClientPool`` does that), because the global limit is per bot.
:class:`RestClient` is the request loop; :class:`DiscordClient` adds the calls a bot makes, and
:class:`~flask_discord_roles.discord.user_client.DiscordUserClient` the calls made with a user's token.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from flask_discord_roles.discord.errors import (
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
from flask_discord_roles.discord.observers import RequestObserver, SentRequest
from flask_discord_roles.discord.ratelimit import (
    Bucket,
    BucketManager,
    GlobalLimiter,
    GlobalTicket,
    RateLimitHeaders,
    WaitTooLong,
)
from flask_discord_roles.discord.role_connections import RoleConnectionMetadata
from flask_discord_roles.discord.routes import Route
from flask_discord_roles.discord.sessions import SessionOwner

__all__ = ["AUDIT_LOG_REASON_LIMIT", "DEFAULT_BASE_URL", "DEFAULT_USER_AGENT", "DiscordClient", "RestClient"]

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


class RestClient(SessionOwner):
    """Talks to Discord's REST API with one token: the request loop that every call goes through.

    Thread safe. Blocks (rather than fails) while a rate limit says wait, up to ``max_wait`` seconds per
    call. Retries 5xx, timeouts and connection errors ``max_retries`` times with exponential backoff and
    full jitter; waits out 429s without spending those retries. After a 401 the token is considered
    revoked and every later call raises :class:`TokenDisabled` without touching the network.

    :param token: sent as ``Authorization: Bot …`` (``Bearer`` for a user's token) and never shown in
        reprs, errors or logs.
    :param base_url: the API root (FakeDiscord's ``api_base_url`` in tests).
    :param timeout: seconds, or ``(connect, read)``; a timed-out request may still have been applied.
    :param max_retries: retries after a 5xx, timeout or connection error (429s do not count).
    :param backoff_base: first retry waits up to this long; each further one up to twice as long...
    :param backoff_cap: ...but never more than this.
    :param global_limit: requests per ``global_period`` for this bot (Discord: 50 per 1 s).
    :param global_period: seconds.
    :param max_wait: total seconds one call may spend queueing, waiting out 429s and backing off.
    :param max_rate_limit_retries: 429s one call may wait out before :class:`RateLimited` is raised.
    :param user_agent: Discord requires ``DiscordBot (url, version)``.
    :param session: a ``requests.Session`` to use (left open by :meth:`close`); by default one is made.
    :param sleep: how to wait between retries (tests pass a recorder).
    :param observer: told about every request sent (route, status, time): how metrics count them.
    """

    #: How the token is sent (``Authorization: <auth_scheme> <token>``) and what it is called in messages.
    auth_scheme: ClassVar[str] = "Bot"
    credential_name: ClassVar[str] = "bot token"
    #: What a person does once Discord has refused the token (401), said in :class:`TokenDisabled`.
    after_401: ClassVar[str] = "save a new token"

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
        observer: RequestObserver | None = None,
    ) -> None:
        self._token = token
        self._observer = observer
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_wait = max_wait
        self.max_rate_limit_retries = max_rate_limit_retries
        self.user_agent = user_agent
        self._sleep = sleep
        # A session the caller passed in is theirs to close; one we made is ours.
        self._owns_session = session is None
        self._session = session if session is not None else self._new_session(self.base_url)
        self._buckets = BucketManager()
        self._global = GlobalLimiter(global_limit, global_period)
        self._disabled = threading.Event()

    @staticmethod
    def _new_session(base_url: str) -> requests.Session:
        session = requests.Session()
        # Many threads share one bot's client; let them share a generous connection pool.
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=64, pool_block=True, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        # The environment (proxies, CA bundle) is read once here instead of on every request: requests
        # would otherwise re-read it, and look for a ~/.netrc entry, each time (about half a millisecond
        # of a worker's CPU per call), and a netrc entry for Discord could replace our Authorization header.
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
        session.trust_env = False
        return session

    def __repr__(self) -> str:
        state = "disabled" if self._disabled.is_set() else "active"
        return f"<{type(self).__name__} {self.base_url} {state}>"

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
        max_wait: float | None = None,
    ) -> Any:
        """Send ``route`` and return the parsed JSON (None for 204). Raises a :class:`DiscordError`.

        ``max_wait`` (default: the client's) bounds the time this call may spend queueing for rate
        limits, waiting out 429s and backing off. A queue worker passes a small value to get
        :class:`RateLimited` (with ``retry_after``) at once instead of blocking a thread for a busy guild.
        """
        needs_token = auth and not route.is_webhook
        if needs_token and self._disabled.is_set():
            raise self._token_disabled(route)
        headers = {"User-Agent": self.user_agent}
        if needs_token:
            headers["Authorization"] = f"{self.auth_scheme} {self._token}"
        if reason:
            headers["X-Audit-Log-Reason"] = quote(reason[:AUDIT_LOG_REASON_LIMIT], safe="")
        outgoing = {"headers": headers, "json": json, "params": params, "data": form}
        deadline = time.monotonic() + (self.max_wait if max_wait is None else max_wait)
        failures = 0
        rate_limited = 0
        while True:
            bucket = self._buckets.bucket_for(route.key, route.major)
            slots = self._acquire(route, bucket, deadline, needs_token=needs_token)
            if slots is None:
                continue  # the route moved to a shared bucket: look it up again
            window, ticket = slots
            outcome = self._send(route, bucket, window, ticket, outgoing)
            if isinstance(outcome, _Result):
                return outcome.value
            error = outcome

            if isinstance(error, RateLimited):
                # Waiting out a 429 spends no retry: a queued burst must drain, not fail. The cap and
                # the deadline only stop a client that something keeps refusing.
                rate_limited += 1
                if (
                    rate_limited > self.max_rate_limit_retries
                    or time.monotonic() + error.retry_after > deadline
                ):
                    raise error
                continue  # the limiters now hold requests back for retry_after
            if isinstance(error, PermanentDiscordError):
                raise error
            failures += 1
            # Full jitter: many threads failing together must not come back together.
            delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (failures - 1)))
            if failures > self.max_retries or time.monotonic() + delay > deadline:
                raise error
            logger.info("%s failed (%s); retry %d in %.2fs", route.key, error, failures, delay)
            self._sleep(delay)

    def _acquire(
        self, route: Route, bucket: Bucket, deadline: float, *, needs_token: bool
    ) -> tuple[int, GlobalTicket | None] | None:
        """Wait for a slot in the route's bucket and, for a call with the bot token, in the global limit.

        Returns the bucket window and the global ticket (None for a call without the bot token) to
        release after sending, or None when the route moved to a shared bucket meanwhile (nothing is
        held then). Raises :class:`RateLimited` when waiting would pass
        ``deadline``, and :class:`TokenDisabled` when another thread got a 401 while this one queued.
        """
        try:
            window = bucket.acquire(deadline)
        except WaitTooLong as busy:
            raise RateLimited(
                "the route's rate limit would make this call wait too long",
                retry_after=busy.retry_after,
                scope="bucket",
                route=route.key,
                from_discord=busy.after_429,
            ) from None
        if window is None:
            return None
        if not needs_token:
            return window, None
        try:
            ticket = self._global.acquire(deadline)
        except WaitTooLong as busy:
            bucket.release(window, None)
            raise RateLimited(
                "the global rate limit would make this call wait too long",
                retry_after=busy.retry_after,
                is_global=True,
                scope="global",
                route=route.key,
                from_discord=busy.after_429,
            ) from None
        if self._disabled.is_set():
            # Another thread got the 401 while this one queued: do not send a dead token.
            bucket.release(window, None)
            self._global.release(ticket)
            raise self._token_disabled(route)
        return window, ticket

    def _send(
        self,
        route: Route,
        bucket: Bucket,
        window: int,
        ticket: GlobalTicket | None,
        outgoing: Mapping[str, Any],
    ) -> _Result | DiscordError:
        """Send once in the slots :meth:`_acquire` got, and give them back; the result or the error."""
        sent_token = ticket is not None
        limits: RateLimitHeaders | None = None
        date: float | None = None
        unanswered = False
        outcome: _Result | DiscordError
        status: int | None = None
        started = time.monotonic()
        try:
            response = self._request(
                route.method, self.base_url + route.url_path, timeout=self.timeout, **outgoing
            )
            status = response.status_code
            if ticket is not None:  # only the global limit reads Discord's clock
                date = _date(response.headers)
            limits = RateLimitHeaders.parse(response.headers)
            self._buckets.learn_hash(route.key, route.major, limits)
            outcome = self._handle(route, response, limits, bucket, sent_token=sent_token)
        # requests' own messages hold the URL, which for webhooks holds an interaction token: only
        # the exception's class name is kept.
        except requests.Timeout as exc:
            unanswered = not isinstance(exc, requests.ConnectTimeout)
            outcome = DiscordTimeout(
                f"Discord did not answer in time ({type(exc).__name__})", route=route.key
            )
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            outcome = DiscordConnectionError(
                f"could not talk to Discord ({type(exc).__name__})", route=route.key
            )
        except requests.RequestException as exc:
            # Not a network hiccup (a malformed URL, say): retrying would fail the same way.
            outcome = PermanentDiscordError(f"request not sent ({type(exc).__name__})", route=route.key)
        finally:
            # Exactly once per acquire, whatever happened, or a slot would stay "in flight" for good.
            bucket.release(window, limits, sent=started)
            if ticket is not None:
                self._global.release(ticket, date=date, unanswered=unanswered)
        if self._observer is not None:
            self._tell_observer(route, status, time.monotonic() - started, outcome)
        return outcome

    def _tell_observer(
        self, route: Route, status: int | None, seconds: float, outcome: _Result | DiscordError
    ) -> None:
        assert self._observer is not None
        scope = None
        if isinstance(outcome, RateLimited):
            scope = "global" if outcome.is_global else (outcome.scope or "route")
        try:
            self._observer(SentRequest(route.key, status, seconds, scope))
        except Exception:  # counting a request must never fail it
            logger.exception("the request observer raised")

    def _handle(
        self,
        route: Route,
        response: requests.Response,
        limits: RateLimitHeaders,
        bucket: Bucket,
        *,
        sent_token: bool,
    ) -> _Result | DiscordError:
        """Turn a response into a result or an error, pausing limiters and disabling the token as due."""
        status = response.status_code
        logger.debug("%s -> %d (bucket %s)", route.key, status, limits.bucket)
        if status < 300:
            return _Result(None if status == 204 or not response.content else _json(response))
        body = _json(response)
        fields = body if isinstance(body, dict) else {}
        code = fields.get("code") if isinstance(fields.get("code"), int) else None
        message = fields.get("message")
        if status == 429:
            retry_after = _retry_after(response, body)
            is_global = response.headers.get("X-RateLimit-Global", "").lower() == "true" or bool(
                fields.get("global")
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
        if error_class is Unauthorized and sent_token:
            self._disabled.set()
            logger.warning("Discord rejected the %s (401); no further requests with it", self.credential_name)
        details = fields.get("errors")
        return error_class(
            str(message or f"HTTP {status}"),
            status=status,
            code=code,
            route=route.key,
            errors=details if isinstance(details, dict) else None,
        )

    def _token_disabled(self, route: Route) -> TokenDisabled:
        return TokenDisabled(
            f"Discord rejected this {self.credential_name} earlier (401); {self.after_401}",
            status=401,
            route=route.key,
        )


class DiscordClient(RestClient):
    """Talks to Discord's REST API as one bot: the calls the product makes.

    Construct it with the bot token and the options of :class:`RestClient`.
    """

    def get_current_user(self) -> dict[str, Any]:
        """The bot's own user (its id is not always the application id)."""
        return dict(self.request(Route("GET", "/users/@me")))

    def get_current_application(self) -> dict[str, Any]:
        """The application the bot token belongs to (its ``id`` is the application id)."""
        return dict(self.request(Route("GET", "/applications/@me")))

    def get_guild(self, guild_id: str, with_counts: bool = False) -> dict[str, Any]:
        """The guild; ``with_counts`` adds ``approximate_member_count`` and presence count."""
        params = {"with_counts": "true"} if with_counts else None
        return dict(self.request(Route("GET", "/guilds/{guild_id}", guild_id=guild_id), params=params))

    def get_guild_roles(self, guild_id: str, *, max_wait: float | None = None) -> list[dict[str, Any]]:
        """Every role with ``position``, ``permissions`` (decimal string) and ``managed``."""
        route = Route("GET", "/guilds/{guild_id}/roles", guild_id=guild_id)
        return list(self.request(route, max_wait=max_wait))

    def get_guild_channels(self, guild_id: str) -> list[dict[str, Any]]:
        """Every channel of the guild, with its permission overwrites."""
        return list(self.request(Route("GET", "/guilds/{guild_id}/channels", guild_id=guild_id)))

    def get_channel(self, channel_id: str) -> dict[str, Any]:
        """One channel (guild channel or DM)."""
        return dict(self.request(Route("GET", "/channels/{channel_id}", channel_id=channel_id)))

    def get_member(self, guild_id: str, user_id: str, *, max_wait: float | None = None) -> dict[str, Any]:
        """A member with their ``roles``; :class:`NotFound` code 10007 if they are not in the guild."""
        route = Route("GET", "/guilds/{guild_id}/members/{user_id}", guild_id=guild_id, user_id=user_id)
        return dict(self.request(route, max_wait=max_wait))

    def list_members(
        self, guild_id: str, *, after: str | None = None, limit: int = 1000, max_wait: float | None = None
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` (1-1000) members in user id order, after the user id ``after``.

        Discord answers only a bot with the GUILD_MEMBERS privileged intent: others get
        :class:`Forbidden` code 50001 (Missing Access).
        """
        route = Route("GET", "/guilds/{guild_id}/members", guild_id=guild_id)
        params = {"limit": str(limit), "after": after or "0"}
        return list(self.request(route, params=params, max_wait=max_wait))

    def add_member_role(
        self,
        guild_id: str,
        user_id: str,
        role_id: str,
        *,
        reason: str | None = None,
        max_wait: float | None = None,
    ) -> None:
        """Give a member a role (204; a repeat is a no-op). ``max_wait``: see :meth:`request`."""
        route = _member_role_route("PUT", guild_id, user_id, role_id)
        self.request(route, reason=reason, max_wait=max_wait)

    def remove_member_role(
        self,
        guild_id: str,
        user_id: str,
        role_id: str,
        *,
        reason: str | None = None,
        max_wait: float | None = None,
    ) -> None:
        """Take a role from a member (204; a repeat is a no-op). ``max_wait``: see :meth:`request`."""
        route = _member_role_route("DELETE", guild_id, user_id, role_id)
        self.request(route, reason=reason, max_wait=max_wait)

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
        """Replace the application's commands: global, or in one guild (instant) when ``guild_id``."""
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

    def create_message(
        self, channel_id: str, payload: dict[str, Any], *, max_wait: float | None = None
    ) -> dict[str, Any]:
        """Post a message; put ``allowed_mentions: {"parse": []}`` in payloads with others' text."""
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        return dict(self.request(route, json=payload, max_wait=max_wait))

    def create_dm(self, user_id: str) -> dict[str, Any]:
        """Open (or find) the DM channel with a user; post to its ``id`` with :meth:`create_message`."""
        return dict(self.request(Route("POST", "/users/@me/channels"), json={"recipient_id": user_id}))

    def edit_original_interaction_response(
        self, application_id: str, interaction_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Edit the answer to an interaction (after a deferred response): no bot token, no global limit."""
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
        """Send another message about an interaction, within its token's 15 minutes."""
        route = Route(
            "POST",
            "/webhooks/{webhook_id}/{interaction_token}",
            webhook_id=application_id,
            interaction_token=interaction_token,
        )
        return dict(self.request(route, json=payload, auth=False))

    def get_global_commands(self, application_id: str) -> list[dict[str, Any]]:
        """The application's global commands as Discord has them registered now."""
        route = Route("GET", "/applications/{application_id}/commands", application_id=application_id)
        return list(self.request(route))

    def get_role_connection_metadata(self, application_id: str) -> list[RoleConnectionMetadata]:
        """The Linked Roles fields the application declared (none: an empty list)."""
        records = self.request(_role_connection_metadata_route("GET", application_id))
        return [RoleConnectionMetadata.from_json(record) for record in records or []]

    def put_role_connection_metadata(
        self, application_id: str, records: Iterable[RoleConnectionMetadata]
    ) -> list[RoleConnectionMetadata]:
        """Replace the application's Linked Roles fields (at most 5) and return them as Discord kept them.

        :class:`BadRequest` (code 50035, with ``errors`` per field) if Discord refuses any of them; then
        nothing changed.
        """
        body = [record.to_json() for record in records]
        saved = self.request(_role_connection_metadata_route("PUT", application_id), json=body)
        return [RoleConnectionMetadata.from_json(record) for record in saved or []]


class _Result:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _role_connection_metadata_route(method: str, application_id: str) -> Route:
    return Route(
        method, "/applications/{application_id}/role-connections/metadata", application_id=application_id
    )


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


def _date(headers: Mapping[str, str]) -> float | None:
    """The ``Date`` header in epoch seconds (what the global limiter learns Discord's clock from)."""
    raw = headers.get("Date")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _retry_after(response: requests.Response, body: Any) -> float:
    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
        return max(float(body["retry_after"]), 0.0)
    for header in ("Retry-After", "X-RateLimit-Reset-After"):
        try:
            return max(float(response.headers[header]), 0.0)
        except (KeyError, ValueError):
            continue
    return 1.0
