"""The fake's HTTP side: a WSGI app that runs each request through Discord's checks in Discord's order
(auth → global limit → route bucket → injected faults → the route's own rules), and the server thread.

With a simulated latency, a request first travels half a round trip; the instant it "reaches Discord"
is the one the limiters count it at, the one its ``Date`` header states and the one it is recorded at.
"""

from __future__ import annotations

import json
import math
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

import flask_discord_roles.testing.protocol as p
import flask_discord_roles.testing.routes_channels as routes_channels
import flask_discord_roles.testing.routes_commands as routes_commands
import flask_discord_roles.testing.routes_guilds as routes_guilds
import flask_discord_roles.testing.routes_oauth as routes_oauth
import flask_discord_roles.testing.routes_role_connections as routes_role_connections
import flask_discord_roles.testing.routes_webhooks as routes_webhooks
from flask_discord_roles.testing.faults import Fault, FaultInjector
from flask_discord_roles.testing.keepalive import KeepAliveServer
from flask_discord_roles.testing.latency import Latency
from flask_discord_roles.testing.oauth import Grant, OAuthStore
from flask_discord_roles.testing.ratelimits import RateLimiter, limited
from flask_discord_roles.testing.recorder import CallLog, RecordedCall
from flask_discord_roles.testing.spec import SpecBreak, form_errors
from flask_discord_roles.testing.spec_checks import SpecChecks
from flask_discord_roles.testing.state import FakeBot
from flask_discord_roles.testing.world import World

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["FAULT_BODIES", "ROUTE_MODULES", "Backend", "FakeDiscordApp", "ServerThread", "SitePages"]

# Importing the route modules is what registers their routes.
ROUTE_MODULES = (
    routes_channels,
    routes_commands,
    routes_guilds,
    routes_oauth,
    routes_role_connections,
    routes_webhooks,
)

FAULT_BODIES: dict[int, tuple[bytes, str]] = {
    500: (b'{"message": "500: Internal Server Error", "code": 0}', "application/json"),
    502: (
        b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
        b"</h1></center><hr><center>cloudflare</center></body></html>",
        "text/html",
    ),
    503: (b'{"message": "503: Service Unavailable", "code": 0}', "application/json"),
}


class SitePages(Protocol):
    """Web pages served beside the API (the sandbox): ``serve`` answers None for paths not its own."""

    def serve(self, request: Request) -> p.Reply | None: ...


@dataclass
class Backend:
    """What the WSGI app serves from; ``reset`` swaps ``world`` and ``oauth`` for fresh ones."""

    world: World = field(default_factory=World)
    oauth: OAuthStore = field(default_factory=OAuthStore)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    faults: FaultInjector = field(default_factory=FaultInjector)
    calls: CallLog = field(default_factory=CallLog)
    base_url: str = ""
    wake: threading.Event = field(default_factory=threading.Event)
    internal_errors: list[str] = field(default_factory=list)
    site_pages: SitePages | None = None
    spec: SpecChecks = field(default_factory=SpecChecks)
    latency: Latency = field(default_factory=Latency)


@dataclass(frozen=True)
class _Arrival:
    """When a request reached "Discord": on the monotonic clock (route buckets, recorded calls) and on
    the wall clock, Discord's own (the global windows and the ``Date`` header)."""

    monotonic: float
    wall: float

    @classmethod
    def now(cls) -> _Arrival:
        return cls(time.monotonic(), time.time())


@dataclass
class _Caller:
    """Who is calling, filled in as soon as it is known so even a 401 is recorded with its kind."""

    auth: str = "none"
    token: str = ""
    bot: FakeBot | None = None
    grant: Grant | None = None


def _match(method: str, path: str) -> tuple[p.Route | None, dict[str, str], bool]:
    path_known = False
    for candidate in p.ROUTES:
        found = candidate.pattern.match(path)
        if found is None:
            continue
        path_known = True
        if candidate.method == method:
            return candidate, found.groupdict(), True
    return None, {}, path_known


def _authenticate(route: p.Route, request: Request, backend: Backend, world: World) -> _Caller:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if route.auth == "none":
        return _Caller("basic" if scheme.lower() == "basic" else "none")
    if scheme == "Bot" and route.auth in ("bot", "bot_or_bearer"):
        bot = world.bot_by_token(credential)
        if bot is not None:
            return _Caller("bot", credential, bot=bot)
    elif scheme == "Bearer" and route.auth in ("bearer", "bot_or_bearer"):
        grant = backend.oauth.live_grant(credential)
        if grant is not None:
            return _Caller("bearer", credential, grant=grant)
    raise p.unauthorized()


def _rate_limited(headers: dict[str, str], body: dict[str, Any]) -> p.Reply:
    reply = p.json_reply(body, 429)
    reply.headers.update(headers)
    return reply


def _check_snowflakes(params: dict[str, str]) -> None:
    for name, value in params.items():
        if name.endswith("_id") and not (value.isdigit() and len(value) <= 20):
            raise p.invalid_form(
                {name: p.field_error("NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')}
            )


class FakeDiscordApp:
    """The WSGI callable. One instance per FakeDiscord; all state lives in ``backend``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        request = Request(environ)
        request.get_data(cache=True)
        self._travel()
        arrived = _Arrival.now()
        generation = self.backend.calls.generation
        spec_generation = self.backend.spec.generation
        caller = _Caller()
        scope: list[str | None] = [None]
        page: p.Reply | None = None
        try:
            # Pages for people are not API calls: no auth, no limits, not recorded in ``calls``.
            pages = self.backend.site_pages
            page = pages.serve(request) if pages is not None else None
            if page is None:
                spec_breaks = self._check_request(request, spec_generation)
                reply = self._handle(request, caller, scope, spec_breaks, arrived)
            else:
                reply = page
        except p.ApiError as error:
            reply = error.reply
        except Exception:  # a bug in the fake must not look like a Discord outage
            self.backend.internal_errors.append(traceback.format_exc())
            reply = p.json_reply({"message": "500: Internal Server Error (fake bug)", "code": 0}, 500)
        if page is None:
            self._record(request, caller, reply, scope[0], generation, arrived)
            if self.backend.spec.active:
                self.backend.spec.response(
                    request.method,
                    request.path,
                    reply.status,
                    reply.content_type,
                    reply.body,
                    spec_generation,
                )
        # Discord's edge stamps every answer with its own clock, to the second (RFC 7231 IMF-fixdate).
        reply.headers["Date"] = formatdate(arrived.wall, usegmt=True)
        response = Response(reply.body, status=reply.status, headers=reply.headers)
        if reply.content_type:
            response.content_type = reply.content_type
        elif not reply.body:
            del response.headers["Content-Type"]  # Discord's 204s carry no content type
        self._travel()
        return response(environ, start_response)

    def _travel(self) -> None:
        """One leg of the simulated network trip (cut short when the fake stops or resets)."""
        seconds = self.backend.latency.leg()
        if seconds > 0:
            self.backend.wake.wait(seconds)

    def _check_request(self, request: Request, generation: int) -> list[SpecBreak]:
        checks = self.backend.spec
        if not checks.active:
            return []
        query = request.args.to_dict(flat=False)
        body = request.get_data(cache=True)
        return checks.request(request.method, request.path, query, request.content_type, body, generation)

    def _handle(
        self,
        request: Request,
        caller: _Caller,
        scope: list[str | None],
        spec_breaks: list[SpecBreak],
        arrived: _Arrival,
    ) -> p.Reply:
        backend = self.backend
        world, oauth = backend.world, backend.oauth
        route, params, path_known = _match(request.method, request.path)
        if route is None:
            if path_known:
                return p.json_reply({"message": "405: Method Not Allowed", "code": 0}, 405)
            return p.json_reply({"message": "404: Not Found", "code": 0}, 404)
        found = _authenticate(route, request, backend, world)
        caller.auth, caller.token, caller.bot, caller.grant = (
            found.auth,
            found.token,
            found.bot,
            found.grant,
        )
        now = arrived.monotonic
        if caller.bot is not None and route.global_limited:
            verdict = backend.limiter.check_global(caller.token, arrived.wall)
            if not verdict.allowed:
                scope[0] = "global"
                return _rate_limited(verdict.headers, verdict.body)
        limit_headers: dict[str, str] = {}
        major = ":".join(params[name] for name in route.major)
        if route.family:
            verdict = backend.limiter.check_route(caller.token, route.family, major, now)
            limit_headers = verdict.headers
            if not verdict.allowed:
                scope[0] = "user"
                return _rate_limited(verdict.headers, verdict.body)
        fault = backend.faults.decide(route.family or "authorize")
        reply = self._apply_fault(fault, caller.token, route, major, limit_headers, scope)
        if reply is None:
            reason = request.headers.get("X-Audit-Log-Reason")
            ctx = p.Context(
                world,
                oauth,
                request,
                params,
                backend.base_url,
                caller.bot,
                caller.grant,
                unquote(reason) if reason is not None else None,
            )
            with world.lock:
                try:
                    _check_snowflakes(params)
                    refused = form_errors(spec_breaks) if backend.spec.strict else {}
                    if refused:
                        # Discord refuses what its spec forbids only once auth and limits have passed.
                        raise p.invalid_form(refused)
                    reply = route.handler(ctx)
                except p.ApiError as error:
                    reply = error.reply
        for name, value in limit_headers.items():
            reply.headers.setdefault(name, value)
        return reply

    def _apply_fault(
        self,
        fault: Fault,
        token: str,
        route: p.Route,
        major: str,
        limit_headers: dict[str, str],
        scope: list[str | None],
    ) -> p.Reply | None:
        if fault.delay:
            self.backend.wake.wait(fault.delay)
        if fault.kind == "error":
            body, content_type = FAULT_BODIES[fault.status]
            return p.Reply(fault.status, body, content_type)
        if fault.kind == "rate_limit":
            scope[0] = "shared"
            self.backend.limiter.record_shared(token, route.family, major, time.monotonic())
            headers = dict(limit_headers)
            headers["X-RateLimit-Scope"] = "shared"
            headers["Retry-After"] = str(math.ceil(fault.retry_after))
            return _rate_limited(headers, limited(fault.retry_after, is_global=False))
        return None

    def _record(
        self,
        request: Request,
        caller: _Caller,
        reply: p.Reply,
        scope: str | None,
        generation: int,
        arrived: _Arrival,
    ) -> None:
        raw = request.get_data(cache=True)
        body: Any = None
        if raw and request.mimetype == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        is_form = request.mimetype == "application/x-www-form-urlencoded"
        reason = request.headers.get("X-Audit-Log-Reason")
        self.backend.calls.add(
            RecordedCall(
                method=request.method,
                path=request.path,
                query=dict(request.args),
                headers=dict(request.headers),
                json=body,
                form=dict(request.form) if is_form else None,
                status=reply.status,
                time=arrived.monotonic,
                discord_time=arrived.wall,
                auth=caller.auth,
                token_suffix=caller.token[-6:] if caller.token else None,
                audit_log_reason=unquote(reason) if reason is not None else None,
                rate_limit_scope=scope,
                body=raw,
            ),
            generation=generation,
        )


class ServerThread:
    """Serves one WSGI app on 127.0.0.1:<free port> from a daemon thread."""

    def __init__(self, app: FakeDiscordApp) -> None:
        self._server = KeepAliveServer(("127.0.0.1", 0), app)
        self.port: int = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeDiscord:{self.port}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)
