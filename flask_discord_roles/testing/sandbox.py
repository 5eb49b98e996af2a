"""The sandbox: FakeDiscord's own web pages, where a person watches a guild and acts as a Discord user.

It is a view and a remote control of the same world the API routes serve: reads and changes happen
under ``world.lock``, and interactions go out through :meth:`FakeDiscord.send_interaction`, so the app
receives exactly what the tests send it. Sandbox requests are not API calls: they are neither rate
limited nor recorded in ``FakeDiscord.calls``.

Interactions are delivered with no lock held: the app may call the fake back (an ``@original`` edit,
a member lookup) before it answers, and those calls need the lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import requests
from werkzeug.wrappers import Request

import flask_discord_roles.testing.protocol as p
from flask_discord_roles.testing.images import serve_image
from flask_discord_roles.testing.routes_channels import public_message
from flask_discord_roles.testing.sandbox_pages import (
    COMMANDS,
    GuildView,
    IndexView,
    Run,
    guild_page,
    index_page,
    page,
)
from flask_discord_roles.testing.state import FakeBot

if TYPE_CHECKING:
    from flask_discord_roles.testing.oauth import OAuthStore
    from flask_discord_roles.testing.signing import InteractionResult
    from flask_discord_roles.testing.world import World

__all__ = ["RUNS_SHOWN", "Action", "Sandbox", "SandboxHost", "SandboxState"]


class SandboxHost(Protocol):
    """What the sandbox needs of its FakeDiscord (named here so the two modules do not import each other)."""

    @property
    def world(self) -> World: ...

    def check_interactions_endpoint(self, url: str, bot: FakeBot, client: Any = None) -> list[str]: ...

    def command_payload(
        self,
        bot: FakeBot,
        guild_id: str | None,
        user: str,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        member_permissions: str = "0",
    ) -> dict[str, Any]: ...

    def component_payload(
        self, bot: FakeBot, guild_id: str | None, user: str, custom_id: str, *, member_permissions: str = "0"
    ) -> dict[str, Any]: ...

    def send_interaction(self, url: str, bot: FakeBot, payload: Mapping[str, Any]) -> InteractionResult: ...


RUNS_SHOWN = 20


@dataclass
class SandboxState:
    """What only the sandbox knows: where each app receives interactions, and what was sent."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    interactions_urls: dict[str, str] = field(default_factory=dict)  # by application id
    runs: list[Run] = field(default_factory=list)
    notice: str | None = None


Action = Callable[[Request, dict[str, str]], p.Reply]


def _html(body: bytes, status: int = 200) -> p.Reply:
    return p.Reply(status, body, "text/html; charset=utf-8")


def _see_other(location: str) -> p.Reply:
    return p.Reply(303, b"", None, {"Location": location})


def _not_found(what: str) -> p.Reply:
    return _html(page("Not found", f'<p><a href="/sandbox">← Sandbox</a></p><h1>{what}</h1>'), 404)


class Sandbox:
    """Serves ``/sandbox`` pages for one FakeDiscord; :meth:`serve` answers None for other paths."""

    def __init__(self, fake: SandboxHost, oauth: Callable[[], OAuthStore]) -> None:
        self._fake = fake
        self._oauth = oauth
        self.state = SandboxState()
        self._routes: list[tuple[str, re.Pattern[str], Action]] = [
            ("GET", re.compile(r"/sandbox/?"), self._index),
            ("POST", re.compile(r"/sandbox/act-as"), self._act_as),
            ("POST", re.compile(r"/sandbox/consent"), self._consent_mode),
            ("POST", re.compile(r"/sandbox/bots/(?P<app_id>\d+)/interactions-url"), self._save_url),
            ("GET", re.compile(r"/sandbox/guilds/(?P<guild_id>\d+)/?"), self._guild),
            ("POST", re.compile(r"/sandbox/guilds/(?P<guild_id>\d+)/join"), self._join),
            (
                "POST",
                re.compile(r"/sandbox/guilds/(?P<guild_id>\d+)/roles/(?P<role_id>\d+)/move"),
                self._move_role,
            ),
            ("POST", re.compile(r"/sandbox/guilds/(?P<guild_id>\d+)/command"), self._command),
            ("POST", re.compile(r"/sandbox/guilds/(?P<guild_id>\d+)/press"), self._press),
        ]

    def reset(self) -> None:
        self.state = SandboxState()

    def set_interactions_url(self, application_id: str, url: str | None) -> None:
        with self.state.lock:
            if url:
                self.state.interactions_urls[application_id] = url
            else:
                self.state.interactions_urls.pop(application_id, None)

    def interactions_url(self, application_id: str) -> str | None:
        with self.state.lock:
            return self.state.interactions_urls.get(application_id)

    def serve(self, request: Request) -> p.Reply | None:
        path = request.path
        if path != "/sandbox" and not path.startswith("/sandbox/"):
            return serve_image(request)  # the CDN's avatars and icons, for the pages people look at
        known = False
        for method, pattern, action in self._routes:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            known = True
            if method == request.method:
                return action(request, found.groupdict())
        if known:
            return _html(page("Method not allowed", "<h1>Method not allowed</h1>"), 405)
        return _not_found("No such sandbox page")

    # -- helpers --------------------------------------------------------------------------------

    def _current_user_id(self) -> str | None:
        return self._oauth().login_user_id

    def _take_notice(self) -> str | None:
        with self.state.lock:
            notice, self.state.notice = self.state.notice, None
            return notice

    def _notify(self, text: str) -> None:
        with self.state.lock:
            self.state.notice = text

    def _urls(self) -> dict[str, str]:
        with self.state.lock:
            return dict(self.state.interactions_urls)

    # -- pages ----------------------------------------------------------------------------------

    def _index(self, request: Request, params: dict[str, str]) -> p.Reply:
        oauth = self._oauth()
        view = IndexView(oauth.login_user_id, oauth.interactive, self._urls(), self._take_notice())
        world = self._fake.world
        with world.lock:
            return _html(index_page(world, view))

    def _guild(self, request: Request, params: dict[str, str]) -> p.Reply:
        world = self._fake.world
        guild_id = params["guild_id"]
        with self.state.lock:
            runs = [r for r in reversed(self.state.runs) if r.guild_id == guild_id][:RUNS_SHOWN]
            # Copies, so a delivery finishing mid-render cannot change a run half-way through.
            runs = [Run(**vars(r)) for r in runs]
        view = GuildView(self._current_user_id(), self._urls(), runs, self._take_notice())
        with world.lock:
            guild = world.guilds.get(guild_id)
            if guild is None:
                return _not_found("No such server")
            return _html(guild_page(world, guild, view))

    # -- who you are, consent mode, app settings ------------------------------------------------

    def _act_as(self, request: Request, params: dict[str, str]) -> p.Reply:
        user_id = request.form.get("user_id", "")
        world = self._fake.world
        with world.lock:
            user = world.users.get(user_id)
            if user is None or user.bot:
                self._notify("Pick one of the users listed.")
            else:
                self._oauth().login_user_id = user.id
        return _see_other(_local(request.form.get("next", ""), "/sandbox"))

    def _consent_mode(self, request: Request, params: dict[str, str]) -> p.Reply:
        self._oauth().interactive = request.form.get("mode") == "interactive"
        return _see_other("/sandbox")

    def _save_url(self, request: Request, params: dict[str, str]) -> p.Reply:
        """Like saving the URL in the Developer Portal: Discord PINGs it first and refuses a bad one."""
        world = self._fake.world
        with world.lock:
            bot = world.bots.get(params["app_id"])
        if bot is None:
            return _not_found("No such application")
        url = request.form.get("url", "").strip()
        if not url:
            self.set_interactions_url(bot.application_id, None)
            return _see_other("/sandbox")
        try:
            problems = self._fake.check_interactions_endpoint(url, bot)
        except requests.RequestException as error:
            problems = [f"could not reach it: {type(error).__name__}"]
        if problems:
            self._notify(f"The interactions endpoint URL was not saved: {'; '.join(problems)}")
        else:
            self.set_interactions_url(bot.application_id, url)
        return _see_other("/sandbox")

    # -- the guild's remote control -------------------------------------------------------------

    def _join(self, request: Request, params: dict[str, str]) -> p.Reply:
        world = self._fake.world
        user_id = self._current_user_id()
        with world.lock:
            if params["guild_id"] not in world.guilds:
                return _not_found("No such server")
            if user_id is not None and user_id in world.users:
                world.add_member(params["guild_id"], user_id)
        return _see_other(f"/sandbox/guilds/{params['guild_id']}")

    def _move_role(self, request: Request, params: dict[str, str]) -> p.Reply:
        """One step up or down in the list, as dragging a role in the server's settings does."""
        world = self._fake.world
        step = 1 if request.form.get("direction") == "up" else -1
        with world.lock:
            guild = world.guilds.get(params["guild_id"])
            if guild is None or params["role_id"] not in guild.roles or params["role_id"] == guild.id:
                return _not_found("No such role")
            ordered = [r.id for r in world.ordered_roles(guild)]
            # Positions count from 1 at the bottom; the list index survives ties a test forced.
            target = ordered.index(params["role_id"]) + 1 + step
            world.move_role(guild.id, params["role_id"], max(1, min(target, len(ordered))))
        return _see_other(f"/sandbox/guilds/{guild.id}")

    def _command(self, request: Request, params: dict[str, str]) -> p.Reply:
        command = request.form.get("command", "")
        if command not in COMMANDS:
            return self._refuse(params["guild_id"], "Unknown command.")
        code = request.form.get("code", "").strip()
        options: dict[str, Any] = {"code": code} if code and command in ("claim", "link") else {}
        label = f"/{command}" + (f" code:{code}" if options else "")

        def build(bot: FakeBot, user_id: str, permissions: str) -> dict[str, Any]:
            return self._fake.command_payload(
                bot, params["guild_id"], user_id, command, options, member_permissions=permissions
            )

        return self._send(request, params["guild_id"], label, build)

    def _press(self, request: Request, params: dict[str, str]) -> p.Reply:
        custom_id = request.form.get("custom_id", "")
        source = request.form.get("from_token", "")

        def build(bot: FakeBot, user_id: str, permissions: str) -> dict[str, Any]:
            payload = self._fake.component_payload(
                bot, params["guild_id"], user_id, custom_id, member_permissions=permissions
            )
            world = self._fake.world
            with world.lock:
                record = world.interactions.get(source)
                if record is not None and record.original is not None:
                    # Discord sends the message the button sits on; the app may read its flags.
                    payload["message"] = {**public_message(record.original), "id": payload["message"]["id"]}
            return payload

        return self._send(request, params["guild_id"], f"button {custom_id}", build)

    def _refuse(self, guild_id: str, text: str) -> p.Reply:
        self._notify(text)
        return _see_other(f"/sandbox/guilds/{guild_id}")

    def _send(
        self,
        request: Request,
        guild_id: str,
        label: str,
        build: Callable[[FakeBot, str, str], dict[str, Any]],
    ) -> p.Reply:
        world = self._fake.world
        user_id = self._current_user_id()
        with world.lock:
            guild = world.guilds.get(guild_id)
            if guild is None:
                return _not_found("No such server")
            bot = world.bots.get(request.form.get("application_id", ""))
            if user_id is None or user_id not in guild.members:
                return self._refuse(guild_id, "Act as a member of this server first.")
            if bot is None or bot.user_id not in guild.members:
                return self._refuse(guild_id, "Pick an application of this server with an endpoint URL.")
            # Discord puts the member's real permissions in the payload (/link needs Manage Server).
            permissions = str(world.guild_permissions(guild, user_id))
        url = self.interactions_url(bot.application_id)
        if url is None:
            return self._refuse(guild_id, f"{bot.name} has no interactions endpoint URL yet.")
        payload = build(bot, user_id, permissions)
        run = Run(str(payload["token"]), guild_id, user_id, bot.application_id, label)
        with self.state.lock:
            self.state.runs.append(run)
        try:
            result = self._fake.send_interaction(url, bot, payload)
        except requests.RequestException as error:
            with self.state.lock:
                run.error = f"The app did not answer ({type(error).__name__}): {url}"
            return _see_other(f"/sandbox/guilds/{guild_id}")
        answer: Any = None
        if result.status_code == 200:
            try:
                answer = result.json()
            except ValueError:
                answer = None
        with self.state.lock:
            run.status = result.status_code
            if isinstance(answer, dict):
                run.answer = answer
            else:
                # What a Discord user sees when the app fails to answer properly.
                run.error = f"The application did not respond ({result.status_code}: {result.text[:200]})"
        return _see_other(f"/sandbox/guilds/{guild_id}")


def _local(target: str, default: str) -> str:
    """Only redirect within the sandbox, so a crafted form cannot send a person elsewhere."""
    return target if target.startswith("/sandbox") and "//" not in target else default
