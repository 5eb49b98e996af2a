"""Ready-made Discord set-up for a host's tests: the ``discord_world`` fixture and the helpers it carries.

``discord_world`` is a bot in a server with roles and members on the test's ``fake_discord``, returned as
a :class:`DiscordWorld` whose methods do what a test otherwise spells out each time: run a slash command
as a member and read what the member saw, press a button, and link a customer's Discord account through
the app's real OAuth routes with Flask's test client.

The pytest plugin re-exports the fixture, so this module loads in every test run of every host: like the
plugin, it imports nothing heavy until a helper runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import pytest

if TYPE_CHECKING:
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

    from flask_discord_roles.testing.fake import FakeDiscord
    from flask_discord_roles.testing.signing import InteractionResult
    from flask_discord_roles.testing.state import FakeBot, FakeChannel, FakeGuild, FakeRole, FakeUser

__all__ = [
    "DEFAULT_INTERACTIONS_URL",
    "DiscordWorld",
    "InteractionAnswer",
    "build_discord_world",
    "discord_world",
    "link_customer",
]

DEFAULT_INTERACTIONS_URL = "/webhook/discord/interactions"
"""The platform bot's webhook (the default prefix); a store's own bot answers at ``…/<store slug>``."""

EPHEMERAL = 1 << 6
DEFERRED_ANSWER = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_APP_REDIRECTS = 10  # a page that redirects to itself must fail the test, not hang it
LINK_ENDPOINT = "discord_roles_linking.start"  # the extension's GET <DISCORD_ROLES_OAUTH_PREFIX>/link


@dataclass
class InteractionAnswer:
    """What the app answered a command or button press, and what the member sees now.

    ``response`` is the webhook's own HTTP answer. A deferred answer ("thinking…") is edited later by
    the app: :attr:`message` reads the message as it stands at the fake each time it is read, and
    :meth:`wait_for_message` waits for the edit when deliveries run on a background thread.
    """

    fake: FakeDiscord = field(repr=False)
    token: str = field(repr=False)  # the interaction's token: live for 15 minutes, so kept out of reprs
    response: InteractionResult

    @property
    def status_code(self) -> int:
        return self.response.status_code

    def json(self) -> Any:
        """The webhook's answer body: ``{"type": 4, "data": {…}}``, ``{"type": 5, …}`` and so on."""
        return self.response.json()

    @property
    def deferred(self) -> bool:
        """True when the app answered "thinking…" (type 5) and edits the answer afterwards."""
        return self._body().get("type") == DEFERRED_ANSWER

    @property
    def ephemeral(self) -> bool:
        """True when only the member sees the answer ("Only you can see this")."""
        data = self._body().get("data") or {}
        return bool(int(data.get("flags") or 0) & EPHEMERAL)

    @property
    def message(self) -> dict[str, Any] | None:
        """The answer message as the member sees it now (``content``, ``embeds``, ``components``).

        None while a deferred answer has not been edited yet.
        """
        world = self.fake.world
        with world.lock:
            record = world.interactions.get(self.token)
            return dict(record.original) if record is not None and record.original is not None else None

    @property
    def followups(self) -> list[dict[str, Any]]:
        """Follow-up messages the app sent about this interaction, oldest first."""
        world = self.fake.world
        with world.lock:
            record = world.interactions.get(self.token)
            return [dict(m) for m in record.followups.values()] if record is not None else []

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Everything the app sent about this interaction, in order (see ``interaction_responses``)."""
        return self.fake.interaction_responses.get(self.token, [])

    @property
    def text(self) -> str:
        """The words of :attr:`message`: its content, then each embed's title, description and fields."""
        message = self.message or {}
        parts = [message.get("content")]
        for embed in message.get("embeds") or []:
            parts += [embed.get("title"), embed.get("description")]
            for item in embed.get("fields") or []:
                parts += [item.get("name"), item.get("value")]
        return "\n".join(part for part in parts if isinstance(part, str) and part)

    def wait_for_message(self, timeout: float = 10.0) -> dict[str, Any]:
        """The answer message, once there is one (a deferred answer is edited by the app later)."""
        deadline = time.monotonic() + timeout
        while (message := self.message) is None:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"the app did not edit its deferred answer within {timeout} seconds; what it sent "
                    f"about the interaction: {self.responses}"
                )
            time.sleep(0.02)
        return message

    def _body(self) -> dict[str, Any]:
        """The answer body, or an empty one when the webhook did not answer with a JSON object."""
        try:
            body = self.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}


@dataclass(repr=False)
class DiscordWorld:
    """A bot in a server, with named roles and members, on a :class:`FakeDiscord`.

    The ``discord_world`` fixture builds one with :func:`build_discord_world`; build your own around any
    bot and server of the fake with ``DiscordWorld(fake_discord, bot, guild)``. Roles and members are
    named (``world.roles["VIP"]``, ``world.member("alice")``); methods that take a ``user`` accept a
    :class:`FakeUser` or the name of one of :attr:`members`.
    """

    fake: FakeDiscord
    bot: FakeBot
    guild: FakeGuild
    roles: dict[str, FakeRole] = field(default_factory=dict)
    members: dict[str, FakeUser] = field(default_factory=dict)
    channel: FakeChannel | None = None
    interactions_url: str = DEFAULT_INTERACTIONS_URL
    """Where :meth:`send_command` posts: your app's interactions webhook (a path for the test client)."""

    def __repr__(self) -> str:
        # Names only: the bot's repr holds its token, and a failing test prints the fixtures it used.
        return (
            f"DiscordWorld(bot={self.bot.name!r}, guild={self.guild.name!r}, roles={list(self.roles)!r}, "
            f"members={list(self.members)!r}, interactions_url={self.interactions_url!r})"
        )

    @property
    def owner(self) -> FakeUser:
        """The server's owner: every permission, so ``/link`` works for them."""
        with self.fake.world.lock:
            return self.fake.world.users[self.guild.owner_id]

    @property
    def bot_role(self) -> FakeRole:
        """The bot's own managed role, which must stay above every role it gives."""
        with self.fake.world.lock:
            for role in self.fake.guild(self.guild.id).roles.values():
                if role.bot_id == self.bot.user_id:
                    return role
        raise LookupError(f"the bot {self.bot.name!r} is not in the server {self.guild.name!r}")

    def member(self, name: str) -> FakeUser:
        """The member added under ``name``."""
        try:
            return self.members[name]
        except KeyError:
            raise LookupError(f"no member named {name!r}; the world has {sorted(self.members)}") from None

    def add_member(self, name: str, *, roles: Iterable[str] = (), global_name: str | None = None) -> FakeUser:
        """A new Discord user called ``name`` who joins the server, holding the roles named in ``roles``."""
        if name in self.members:
            raise ValueError(f"the world already has a member named {name!r}")
        role_ids = [self._role(role).id for role in roles]
        user = self.fake.create_user(name, global_name=global_name)
        self.fake.add_member(self.guild.id, user.id, roles=role_ids)
        self.members[name] = user
        return user

    def add_role(self, name: str, *, permissions: int = 0, color: int = 0) -> FakeRole:
        """A new role, placed above the other roles but below the bot's, so the bot can give it."""
        if name in self.roles:
            raise ValueError(f"the world already has a role named {name!r}")
        role = self.fake.create_role(self.guild.id, name, permissions=permissions, color=color)
        self.roles[name] = role
        return role

    def roles_of(self, user: FakeUser | str) -> set[str]:
        """The names of the roles the member holds in the server now (what Discord would show)."""
        user_id = self._user(user).id
        with self.fake.world.lock:
            roles = self.fake.guild(self.guild.id).roles
            return {roles[role_id].name for role_id in self.fake.member_roles(self.guild.id, user_id)}

    def send_command(
        self,
        client: FlaskClient | None,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser | str,
        url: str | None = None,
        member_permissions: int | None = None,
        locale: str = "en-US",
        check: bool = True,
    ) -> InteractionAnswer:
        """Run ``/name`` as ``user`` in the server: Discord's payload, signed with the bot's key, posted
        to :attr:`interactions_url` (or ``url``) through ``client``, Flask's test client.

        ``options`` maps option names to values (``{"code": "1234-…"}``). ``member_permissions``
        defaults to the member's real permissions in the server, as Discord computes them. With
        ``client=None`` the interaction goes over HTTP to ``url``, a running server. With ``check``, an
        answer other than 200 fails the test with the app's answer.
        """
        who = self._user(user)
        payload = self.fake.command_payload(
            self.bot,
            self.guild.id,
            who,
            name,
            dict(options) if options is not None else None,
            member_permissions=str(self._permissions(who, member_permissions)),
            channel_id=self.channel.id if self.channel is not None else None,
            locale=locale,
        )
        return self._send(client, payload, url, f"/{name}", check)

    def press_button(
        self,
        client: FlaskClient | None,
        custom_id: str,
        *,
        user: FakeUser | str,
        url: str | None = None,
        member_permissions: int | None = None,
        check: bool = True,
    ) -> InteractionAnswer:
        """Press the button whose ``custom_id`` is given, as ``user``, on a message of the bot's."""
        who = self._user(user)
        payload = self.fake.component_payload(
            self.bot,
            self.guild.id,
            who,
            custom_id,
            member_permissions=str(self._permissions(who, member_permissions)),
            channel_id=self.channel.id if self.channel is not None else None,
        )
        return self._send(client, payload, url, f"the button {custom_id!r}", check)

    def link_customer(
        self,
        client: FlaskClient,
        user: FakeUser | str,
        *,
        start: str | None = None,
        next: str | None = None,
        consent: str = "allow",
        check: bool = True,
    ) -> TestResponse:
        """Link ``user``'s Discord account to the customer signed in on ``client``: see
        :func:`link_customer`."""
        return link_customer(
            client, self.fake, self._user(user), start=start, next=next, consent=consent, check=check
        )

    # -- helpers --------------------------------------------------------------------------------

    def _user(self, user: FakeUser | str) -> FakeUser:
        return self.member(user) if isinstance(user, str) else user

    def _role(self, role: FakeRole | str) -> FakeRole:
        if not isinstance(role, str):
            return role
        try:
            return self.roles[role]
        except KeyError:
            raise LookupError(f"no role named {role!r}; the world has {sorted(self.roles)}") from None

    def _permissions(self, user: FakeUser, given: int | None) -> int:
        """What Discord sends as ``member.permissions``: computed in the channel, overwrites applied."""
        if given is not None:
            return given
        world = self.fake.world
        with world.lock:
            guild = world.guild(self.guild.id)
            if user.id not in guild.members:
                return 0
            if self.channel is not None:
                return world.permissions_in(world.channels[self.channel.id], user.id)
            return world.guild_permissions(guild, user.id)

    def _send(
        self,
        client: FlaskClient | None,
        payload: dict[str, Any],
        url: str | None,
        what: str,
        check: bool,
    ) -> InteractionAnswer:
        result = self.fake.send_interaction(url or self.interactions_url, self.bot, payload, client=client)
        if check and result.status_code != 200:
            raise AssertionError(
                f"{what} was answered {result.status_code} by {url or self.interactions_url}: "
                f"{result.text[:500]}"
            )
        return InteractionAnswer(self.fake, str(payload["token"]), result)


def build_discord_world(
    fake: FakeDiscord,
    *,
    roles: Iterable[str] = ("VIP", "Supporter"),
    members: Iterable[str] = ("alice", "bob"),
    bot_name: str = "Shop Bot",
    guild_name: str = "Shop Server",
) -> DiscordWorld:
    """A server with a ``#general`` channel, the ``roles`` (highest first, as Discord lists them), the
    bot invited with Manage Roles (its own role above them all, so it can give every one) and the
    ``members``, holding no role.
    """
    bot = fake.create_bot(bot_name)
    guild = fake.create_guild(guild_name)
    world = DiscordWorld(fake, bot, guild, channel=fake.create_channel(guild.id, "general"))
    names = list(roles)
    for name in reversed(names):  # each new role goes on top of the ones before
        world.add_role(name)
    world.roles = {name: world.roles[name] for name in names}
    fake.add_bot_to_guild(bot, guild.id)  # Manage Roles, and the top of the role list
    for name in members:
        world.add_member(name, global_name=name.title())
    return world


@pytest.fixture
def discord_world(fake_discord: FakeDiscord) -> DiscordWorld:
    """A ready Discord for the test: ``world.bot`` in ``world.guild`` with Manage Roles, above the roles
    ``world.roles["VIP"]`` and, below it, ``world.roles["Supporter"]``, with the members
    ``world.member("alice")`` and ``world.member("bob")`` holding no role. Built by
    :func:`build_discord_world` on ``fake_discord``.
    """
    return build_discord_world(fake_discord)


def link_customer(
    client: FlaskClient,
    fake: FakeDiscord,
    user: FakeUser,
    *,
    start: str | None = None,
    next: str | None = None,
    consent: str = "allow",
    check: bool = True,
) -> TestResponse:
    """Link ``user``'s Discord account to the customer signed in on ``client``, the way a browser does.

    Flask's test client opens ``start`` (default: the extension's ``/discord/link``, with ``next``) and
    follows your app's redirects until one leads to the fake's consent page; there ``user`` clicks
    Authorize (``consent="deny"``: Cancel), and the test client follows the fake's redirect back to
    your callback, which trades the code for tokens with the fake. Returns the callback's answer. Sign
    the customer in on ``client`` first, as your app does. Afterwards ``user`` stays the one signed in
    to Discord (as after ``fake.oauth_login_as(user)``); the fake's consent settings are as they were.

    With ``check``, anything but a 200 from the callback fails the test with what went wrong; pass
    ``check=False`` to look at a refusal yourself.
    """
    if consent not in ("allow", "deny"):
        raise ValueError("consent is 'allow' (Authorize) or 'deny' (Cancel)")
    answer = client.get(_link_start(client, start, next))
    for _ in range(MAX_APP_REDIRECTS):
        if answer.status_code not in REDIRECTS or answer.location.startswith(fake.base_url):
            break
        answer = client.get(answer.location)
    if answer.status_code not in REDIRECTS or not answer.location.startswith(fake.base_url):
        if check:
            raise AssertionError(
                f"the app did not send the browser to Discord: it answered {answer.status_code} "
                f"{answer.get_data(as_text=True)[:500]}"
            )
        return answer
    back = _click_on_consent_page(fake, answer.location, user, consent)
    linked = client.get(back)
    if check and linked.status_code != 200:
        raise AssertionError(
            f"linking {user.username!r} failed: the callback answered {linked.status_code} "
            f"{linked.get_data(as_text=True)[:500]}"
        )
    return linked


def _link_start(client: FlaskClient, start: str | None, next_path: str | None) -> str:
    if start is None:
        from flask import url_for

        with client.application.test_request_context():
            start = url_for(LINK_ENDPOINT)
    if next_path is None:
        return start
    separator = "&" if "?" in start else "?"
    return f"{start}{separator}{urlencode({'next': next_path})}"


def _click_on_consent_page(fake: FakeDiscord, authorize_url: str, user: FakeUser, consent: str) -> str:
    """The fake's redirect back to the app after ``user`` decided: fetched over loopback HTTP with the
    standard library, as a browser would, with the fake's consent settings put back afterwards."""
    import http.client

    before = fake.oauth_consent, fake.interactive_consent
    fake.oauth_login_as(user)
    fake.oauth_consent, fake.interactive_consent = consent, False
    parts = urlsplit(authorize_url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        page = connection.getresponse()
        body = page.read().decode("utf-8", "replace")
        location = page.getheader("Location")
    finally:
        connection.close()
        fake.oauth_consent, fake.interactive_consent = before
    if page.status != 302 or location is None:
        raise AssertionError(f"Discord's consent page answered {page.status}: {body[:500]}")
    return location
