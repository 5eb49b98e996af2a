"""FakeDiscord: a real HTTP server on loopback that behaves like Discord's API v10 for our purposes.

Tests arrange the world with the Python methods here (guilds, roles, members, bots), point the code
under test at ``api_base_url``, and assert on the resulting state, ``calls`` and rate-limit hits.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from nacl.signing import SigningKey

import flask_discord_roles.testing.payloads as payloads
from flask_discord_roles.testing.latency import Latency
from flask_discord_roles.testing.oauth import OAuthStore
from flask_discord_roles.testing.permissions import MANAGE_ROLES
from flask_discord_roles.testing.ratelimits import RateLimitHit
from flask_discord_roles.testing.recorder import RecordedCall
from flask_discord_roles.testing.routes_channels import build_message
from flask_discord_roles.testing.sandbox import Sandbox
from flask_discord_roles.testing.server import Backend, FakeDiscordApp, ServerThread
from flask_discord_roles.testing.signing import InteractionResult, deliver, sign_interaction
from flask_discord_roles.testing.spec import SpecBreak, load_spec
from flask_discord_roles.testing.state import (
    FakeBot,
    FakeChannel,
    FakeGuild,
    FakeRole,
    FakeUser,
    make_bot_token,
    new_snowflake,
)
from flask_discord_roles.testing.world import World

__all__ = ["ACKNOWLEDGING_TYPES", "FakeDiscord"]

ACKNOWLEDGING_TYPES = frozenset({4, 5, 6, 7, 8, 9})


class FakeDiscord:
    """A fake Discord API. Nothing listens until :meth:`start` (or ``with FakeDiscord() as fake``)."""

    def __init__(self) -> None:
        self._backend = Backend()
        self._server: ServerThread | None = None
        # A lambda, because reset() swaps the OAuth store the sandbox must keep following.
        self._sandbox = Sandbox(self, lambda: self._backend.oauth)
        self._backend.site_pages = self._sandbox

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FakeDiscord is already running")
        self._backend.wake = threading.Event()
        self._server = ServerThread(FakeDiscordApp(self._backend))
        self._backend.base_url = f"http://127.0.0.1:{self._server.port}"
        self._server.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._backend.wake.set()  # cut injected sleeps short so shutdown does not wait for them
        self._server.stop()
        self._server = None

    def __enter__(self) -> FakeDiscord:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeDiscord is not running: call start() first")
        return self._backend.base_url

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/api/v10"

    def reset(self) -> None:
        """Forget everything (state, limits, latency, faults, calls); the server keeps its port."""
        backend = self._backend
        backend.world = World()
        backend.oauth = OAuthStore()
        backend.limiter.reset()
        backend.latency = Latency()
        backend.faults.configure()
        backend.calls.clear()
        backend.spec.clear()
        backend.internal_errors.clear()
        self._sandbox.reset()
        old_wake, backend.wake = backend.wake, threading.Event()
        old_wake.set()

    @property
    def world(self) -> World:
        """The raw state, for assertions this class has no helper for (hold ``world.lock``)."""
        return self._backend.world

    # -- bots, users, guilds, roles, members ----------------------------------------------------

    def create_bot(self, name: str = "Store Bot", *, application_id: str | None = None) -> FakeBot:
        return self.world.create_bot(name, application_id=application_id)

    def revoke_bot_token(self, bot: FakeBot) -> None:
        """Like an owner resetting the token: the old one answers 401 from now on."""
        bot.is_token_valid = False

    def rotate_bot_token(self, bot: FakeBot) -> str:
        """Give the bot a new valid token (the old one stops working) and return it."""
        with self.world.lock:
            bot.token = make_bot_token(bot.user_id)
            bot.is_token_valid = True
            return bot.token

    def create_user(
        self, username: str, *, global_name: str | None = None, avatar: str | None = None
    ) -> FakeUser:
        return self.world.create_user(username, global_name=global_name, avatar=avatar)

    def close_dms(self, user: FakeUser | str, *, closed: bool = True) -> None:
        """Like the user turning off direct messages from server members: a bot's DM to them is
        refused with 403 ``50007`` (Cannot send messages to this user). ``closed=False`` opens them again."""
        with self.world.lock:
            self.world.users[payloads.user_id_of(user)].dms_open = not closed

    def create_guild(self, name: str = "Test Guild", *, owner_id: str | None = None) -> FakeGuild:
        return self.world.create_guild(name, owner_id=owner_id)

    def guild(self, guild_id: str) -> FakeGuild:
        return self.world.guild(guild_id)

    def create_role(
        self,
        guild_id: str,
        name: str,
        *,
        position: int | None = None,
        permissions: int = 0,
        managed: bool = False,
        color: int = 0,
    ) -> FakeRole:
        return self.world.create_role(
            guild_id, name, position=position, permissions=permissions, managed=managed, color=color
        )

    def move_role(self, guild_id: str, role_id: str, position: int) -> None:
        self.world.move_role(guild_id, role_id, position)

    def force_role_position(self, guild_id: str, role_id: str, position: int) -> None:
        """Set a position without renumbering: produces the ties that old guilds really have."""
        self.world.force_role_position(guild_id, role_id, position)

    def add_bot_to_guild(
        self,
        bot: FakeBot,
        guild_id: str,
        *,
        permissions: int = MANAGE_ROLES,
        role_position: int | None = None,
    ) -> FakeRole:
        """Invite the bot: it joins with a managed role named after it (top of the list by default)."""
        return self.world.add_bot_to_guild(
            bot, guild_id, permissions=permissions, role_position=role_position
        )

    def add_member(self, guild_id: str, user_id: str, *, roles: Iterable[str] = ()) -> None:
        self.world.add_member(guild_id, user_id, roles)

    def remove_member(self, guild_id: str, user_id: str) -> None:
        with self.world.lock:
            self.world.guild(guild_id).members.pop(user_id, None)

    def member_roles(self, guild_id: str, user_id: str) -> set[str]:
        with self.world.lock:
            return set(self.world.member(guild_id, user_id).roles)

    def is_member(self, guild_id: str, user_id: str) -> bool:
        with self.world.lock:
            return user_id in self.world.guild(guild_id).members

    def audit_log(self, guild_id: str) -> list[dict[str, Any]]:
        """Role and join changes the bots made, with their URL-decoded X-Audit-Log-Reason."""
        with self.world.lock:
            return list(self.world.audit_log.get(guild_id, []))

    # -- channels, messages, commands -----------------------------------------------------------

    def create_channel(
        self, guild_id: str, name: str = "general", *, overwrites: Iterable[Mapping[str, Any]] = ()
    ) -> FakeChannel:
        return self.world.create_channel(guild_id, name, [dict(ow) for ow in overwrites])

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        with self.world.lock:
            return list(self.world.channels[channel_id].messages)

    def dm_messages(self, bot: FakeBot, user: FakeUser | str) -> list[dict[str, Any]]:
        """Messages the bot sent to the user by DM (empty if it never opened a DM)."""
        with self.world.lock:
            channel_id = self.world.dm_channels.get((bot.user_id, payloads.user_id_of(user)))
            return list(self.world.channels[channel_id].messages) if channel_id else []

    def commands(self, application_id: str, guild_id: str | None = None) -> list[dict[str, Any]]:
        with self.world.lock:
            return list(self.world.commands.get((application_id, guild_id), []))

    def set_route_limit(self, name: str, limit: int, window: float) -> None:
        self._backend.limiter.set_route_limit(name, limit, window)

    def set_global_limit(self, limit: int | None = 50, window: float = 1.0) -> None:
        """``limit`` requests per bot in each ``window`` of the fake's clock (``None``: no limit).

        The windows are aligned to the clock, ``[k * window, (k + 1) * window)`` in epoch seconds, as
        Discord counts per second of its own clock: the one its ``Date`` header states.
        """
        self._backend.limiter.set_global_limit(limit, window)

    def set_latency(self, round_trip: float = 0.0, jitter: float = 0.0, *, seed: int | None = None) -> None:
        """Put the fake ``round_trip`` seconds away (call with no arguments for no distance).

        A request waits half a round trip before the fake sees it (that instant is the one the rate
        limits count, the ``Date`` header states and ``calls`` record), the answer the other half
        before it leaves. Each half varies at random by up to ``jitter`` / 2 (``seed`` repeats the
        draws). Each request waits in its own thread: a far fake is slow, not serial.
        """
        self._backend.latency = Latency(round_trip, jitter, seed)

    def set_faults(
        self,
        *,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        timeout_seconds: float = 5.0,
        slow_seconds: float = 0.0,
        rate_limit_rate: float = 0.0,
        rate_limit_retry_after: float = 0.5,
        seed: int | None = None,
        routes: Iterable[str] | None = None,
    ) -> None:
        """Replace the fault settings (call with no arguments to turn faults off)."""
        self._backend.faults.configure(
            error_rate=error_rate,
            timeout_rate=timeout_rate,
            timeout_seconds=timeout_seconds,
            slow_seconds=slow_seconds,
            rate_limit_rate=rate_limit_rate,
            rate_limit_retry_after=rate_limit_retry_after,
            seed=seed,
            routes=routes,
        )

    @property
    def calls(self) -> list[RecordedCall]:
        return self._backend.calls.snapshot()

    def calls_to(self, method: str, path_pattern: str) -> list[RecordedCall]:
        return self._backend.calls.matching(method, path_pattern)

    def clear_calls(self) -> None:
        self._backend.calls.clear()

    # -- Discord's OpenAPI spec ------------------------------------------------------------------

    @property
    def check_spec(self) -> bool:
        """True: every request, answer and interaction answer is held to Discord's spec (kept by
        :meth:`reset`). Breaks are listed in :attr:`spec_breaks`; needs the ``testing`` extra."""
        return self._backend.spec.check

    @check_spec.setter
    def check_spec(self, value: bool) -> None:
        if value:
            load_spec()  # fail now, with the install hint, rather than inside the server thread
        self._backend.spec.check = value

    @property
    def strict_spec(self) -> bool:
        """True: a request that breaks Discord's spec is answered as Discord would, 400 with code 50035
        (Invalid Form Body) and the field errors, instead of being served (kept by :meth:`reset`)."""
        return self._backend.spec.strict

    @strict_spec.setter
    def strict_spec(self, value: bool) -> None:
        if value:
            load_spec()
        self._backend.spec.strict = value

    @property
    def spec_breaks(self) -> list[SpecBreak]:
        """Every way an exchange broke the spec since the last reset, each with its JSON path and reason."""
        return self._backend.spec.breaks

    def spec_counts(self) -> dict[str, int]:
        """Exchanges checked and broken since the last reset, per side (request, response, ...)."""
        return self._backend.spec.counts()

    # -- rate limits, faults, recorded calls ----------------------------------------------------

    @property
    def rate_limit_hits(self) -> list[RateLimitHit]:
        return list(self._backend.limiter.hits)

    @property
    def invalid_requests(self) -> int:
        """401, 403 and non-shared 429 answers: what Discord counts towards its IP ban."""
        return self._backend.calls.invalid_requests

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of bugs in the fake itself (answered as 500); should stay empty."""
        return list(self._backend.internal_errors)

    def stats(self) -> dict[str, Any]:
        hits = self.rate_limit_hits
        return {
            "total": len(self.calls),
            "by_status": self._backend.calls.statuses(),
            "invalid_requests": self.invalid_requests,
            "rate_limited": {
                scope: sum(1 for h in hits if h.scope == scope) for scope in ("user", "global", "shared")
            },
        }

    # -- OAuth2 ---------------------------------------------------------------------------------

    @property
    def oauth_consent(self) -> str:
        return self._backend.oauth.consent

    @oauth_consent.setter
    def oauth_consent(self, value: str) -> None:
        if value not in ("allow", "deny"):
            raise ValueError("oauth_consent is 'allow' or 'deny'")
        self._backend.oauth.consent = value

    @property
    def interactive_consent(self) -> bool:
        """True: the authorize page shows Authorize / Cancel for a person instead of consenting."""
        return self._backend.oauth.interactive

    @interactive_consent.setter
    def interactive_consent(self, value: bool) -> None:
        self._backend.oauth.interactive = value

    def oauth_login_as(self, user: FakeUser | str) -> None:
        """The user who 'clicks Authorize' on the next authorize requests."""
        self._backend.oauth.login_user_id = payloads.user_id_of(user)

    def allow_redirect_uri(self, uri: str) -> None:
        """Register a redirect URI (``"*"`` allows any http(s) URI); loopback ones always pass."""
        self._backend.oauth.allowed_redirects.add(uri)

    def expire_user_tokens(self, user: FakeUser | str) -> None:
        self._backend.oauth.expire_user(payloads.user_id_of(user))

    def create_user_token(
        self, bot: FakeBot, user: FakeUser | str, scopes: Iterable[str] = ("identify", "guilds.join")
    ) -> str:
        """Skip the browser: an access token the user granted to ``bot``'s application."""
        grant = self._backend.oauth.issue_grant(bot.client_id, payloads.user_id_of(user), tuple(scopes))
        return grant.access_token

    def authorize_url(self, bot: FakeBot, redirect_uri: str, **params: str) -> str:
        """The fake's authorize URL for ``bot`` with ``scope``, ``state``, PKCE... as given."""
        query = {"response_type": "code", "client_id": bot.client_id, "redirect_uri": redirect_uri}
        query.setdefault("scope", "identify guilds.join")
        query.update(params)
        return f"{self.base_url}/oauth2/authorize?{urlencode(query)}"

    # -- the sandbox (web pages for a person) ---------------------------------------------------

    @property
    def cdn_url(self) -> str:
        """Where FakeDiscord serves avatars and icons; an app derives it from ``api_base_url``."""
        return self.base_url

    @property
    def sandbox_url(self) -> str:
        """The sandbox's index page: guilds, users, who you are, the apps' interactions URLs."""
        return f"{self.base_url}/sandbox"

    def set_interactions_url(self, bot: FakeBot, url: str | None) -> None:
        """The Interactions Endpoint URL an owner pastes in the Developer Portal (None clears it).

        The sandbox sends the commands and button presses a person makes there to this URL.
        """
        self._sandbox.set_interactions_url(bot.application_id, url)

    def interactions_url(self, bot: FakeBot) -> str | None:
        return self._sandbox.interactions_url(bot.application_id)

    # -- interactions (the fake acting as Discord towards an app) -------------------------------

    def command_payload(
        self,
        bot: FakeBot,
        guild_id: str | None,
        user: FakeUser | str,
        name: str,
        options: list[dict[str, Any]] | dict[str, Any] | None = None,
        *,
        member_permissions: str = "0",
        app_permissions: str | None = None,
        channel_id: str | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        data = payloads.command_data(self.world, bot, guild_id, name, options)
        return payloads.interaction(
            self.world,
            bot,
            2,
            guild_id=guild_id,
            user=user,
            data=data,
            member_permissions=member_permissions,
            app_perms=app_permissions,
            channel_id=channel_id,
            locale=locale,
        )

    def component_payload(
        self,
        bot: FakeBot,
        guild_id: str | None,
        user: FakeUser | str,
        custom_id: str,
        *,
        member_permissions: str = "0",
        component_type: int = 2,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        payload = payloads.interaction(
            self.world,
            bot,
            3,
            guild_id=guild_id,
            user=user,
            data={"custom_id": custom_id, "component_type": component_type},
            member_permissions=member_permissions,
            channel_id=channel_id,
        )
        payload["message"] = {
            "id": new_snowflake(),
            "channel_id": payload["channel_id"],
            "author": self.world.users[bot.user_id].to_json(),
            "content": "",
            "components": [],
            "embeds": [],
            "flags": 0,
            "type": 0,
        }
        return payload

    def ping_payload(self, bot: FakeBot) -> dict[str, Any]:
        return payloads.interaction(self.world, bot, 1, guild_id=None, user=None, data=None)

    def send_interaction(
        self,
        url: str,
        bot: FakeBot,
        payload: Mapping[str, Any],
        *,
        timestamp: str | None = None,
        client: Any = None,
        signing_key: Any = None,
    ) -> InteractionResult:
        """Sign and POST ``payload`` to the app; an acknowledging answer is recorded as initial.

        The interaction counts as acknowledged once its answer is back here, as Discord counts it when
        the answer reaches Discord: until then the app's webhook calls about it are refused.
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        stamp = timestamp if timestamp is not None else str(int(time.time()))
        headers = sign_interaction(signing_key or bot.signing_key, stamp, body)
        token = str(payload.get("token", ""))
        with self.world.lock:
            record = self.world.interactions.get(token)
            if record is not None:
                record.sent_at = time.monotonic()
                record.answer_in_flight = client is None
        if record is None:
            return self._check_answer(url, deliver(url, body, headers, client))
        try:
            result = deliver(
                url, body, headers, client, received=lambda result: self._note_initial_response(token, result)
            )
        finally:
            with self.world.lock:
                record.answer_in_flight = False
                self.world.answers.notify_all()
        return self._check_answer(url, result)

    def _check_answer(self, url: str, result: InteractionResult) -> InteractionResult:
        """Hold a 200 answer to the spec's interaction response (what a callback would carry)."""
        if self._backend.spec.active and result.status_code == 200:
            try:
                answer = result.json()
            except ValueError:
                answer = None
            self._backend.spec.interaction_response(url, answer)
        return result

    def _note_initial_response(self, token: str, result: InteractionResult) -> None:
        try:
            answer = result.json() if result.status_code == 200 else None
        except ValueError:
            answer = None
        with self.world.lock:
            record = self.world.interactions.get(token)
            if record is None:
                return
            record.answer_in_flight = False
            self.world.answers.notify_all()
            if not isinstance(answer, dict):
                return
            if answer.get("type") in ACKNOWLEDGING_TYPES and not record.acknowledged:
                record.acknowledged = True
                if answer.get("type") == 4 and record.original is None:
                    bot = self.world.bots[record.application_id]
                    author = self.world.users[bot.user_id].to_json()
                    record.original = build_message("0", author, answer.get("data") or {})
            self.world.record_interaction_response(
                token, "initial", answer, method="POST", acknowledged_before=False, status=result.status_code
            )

    def ping(self, url: str, bot: FakeBot, client: Any = None) -> InteractionResult:
        return self.send_interaction(url, bot, self.ping_payload(bot), client=client)

    def probe_invalid_signature(self, url: str, bot: FakeBot, client: Any = None) -> InteractionResult:
        """A PING signed with the wrong key, as Discord sends to check the app rejects it (401)."""
        payload = self.ping_payload(bot)
        return self.send_interaction(url, bot, payload, client=client, signing_key=SigningKey.generate())

    def check_interactions_endpoint(self, url: str, bot: FakeBot, client: Any = None) -> list[str]:
        """What Discord checks when the URL is saved; returns the problems (empty list: accepted)."""
        problems = []
        pong = self.ping(url, bot, client)
        content_type = pong.headers.get("Content-Type", "")
        if pong.status_code != 200 or not content_type.startswith("application/json"):
            problems.append(f"PING answered {pong.status_code} {content_type!r}")
        elif pong.json() != {"type": 1}:
            problems.append(f"PING answered {pong.text!r}, expected {{'type': 1}}")
        probe = self.probe_invalid_signature(url, bot, client)
        if probe.status_code != 401:
            problems.append(f"invalid signature answered {probe.status_code}, expected 401")
        return problems

    @property
    def interaction_responses(self) -> dict[str, list[dict[str, Any]]]:
        """Per interaction token, in the order they arrived: the initial answer, callbacks, @original
        edits and follow-ups, including those refused because they came before the answer.

        Each entry is ``{"kind", "method", "data", "acknowledged_before", "status", "time"}``; ``kind``
        is initial, callback, edit_original, delete_original, followup or edit_followup; ``status`` is
        what the fake answered (404 for a call before the acknowledgement; the app's own status for
        ``initial``).
        """
        with self.world.lock:
            return {t: [dict(entry) for entry in v] for t, v in self.world.interaction_responses.items()}

    def responses_before_acknowledgement(self) -> list[dict[str, Any]]:
        """Every edit, delete or follow-up an app sent for an interaction it had not yet answered.

        Empty when the app never got ahead of its own answer. Each entry is an
        :attr:`interaction_responses` entry plus its ``token``; the fake refused all of them (404,
        10015 Unknown Webhook), as Discord does.
        """
        with self.world.lock:
            return [
                {**entry, "token": token}
                for token, entries in self.world.interaction_responses.items()
                for entry in entries
                if entry["kind"] not in ("initial", "callback") and not entry["acknowledged_before"]
            ]

    def new_interaction_token(self, bot: FakeBot, *, acknowledged: bool = True) -> str:
        """A live interaction token without a payload, for webhook-only tests.

        It counts as already answered (its webhook works) unless ``acknowledged=False``.
        """
        return self.world.mint_interaction(bot.application_id, acknowledged=acknowledged).token

    # -- Linked Roles ---------------------------------------------------------------------------

    def role_connection_metadata(self, application_id: str) -> list[dict[str, Any]]:
        """The application's role-connection metadata records, as Discord's GET answers them."""
        with self.world.lock:
            return [record.to_json() for record in self.world.role_connections.records(application_id)]

    def role_connection(self, user: FakeUser | str, application_id: str) -> dict[str, Any] | None:
        """What the application last PUT as the user's role connection (None if it never did)."""
        with self.world.lock:
            key = (payloads.user_id_of(user), application_id)
            connection = self.world.role_connections.connections.get(key)
            return None if connection is None else connection.to_json()
