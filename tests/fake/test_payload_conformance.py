"""Every object the fake builds, and every answer it gives, matches Discord's published OpenAPI spec.

The spec is read with its README's conventions: a ``oneOf`` may match more than one branch (so it is
checked as ``anyOf``) and an integer field accepts an integer string. Two places where Discord's docs and
the spec disagree follow the docs: a field error's ``code`` is a string (``BASE_TYPE_REQUIRED``) and a
429 body has no ``code``. Behaviour the spec cannot express (hierarchy, permissions, rate limits) is
checked by the other tests in this package; these only pin shapes.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import requests

import flask_discord_roles.testing
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.payloads import command_data, interaction
from flask_discord_roles.testing.routes_channels import build_message, public_message
from tests.fake.helpers import Store

SPEC_MIRROR = Path("/work/.mirror/discord+discord-api-spec/repo")
SPEC_COMMIT = "74fda0fad044407ea280043a03ffc9bc64c4e49e"
VENDORED = Path(flask_discord_roles.testing.__file__).parent / "discord_spec" / "openapi.json"


@functools.cache
def _spec() -> dict[str, Any]:
    """``$DISCORD_API_SPEC``, the vendored copy, else the pinned commit of a local mirror; else skip."""
    override = os.environ.get("DISCORD_API_SPEC")
    for path in (Path(override) if override else None, VENDORED):
        if path is not None and path.is_file():
            return dict(json.loads(path.read_text()))
    if SPEC_MIRROR.is_dir():
        raw = subprocess.run(
            ["git", "-C", str(SPEC_MIRROR), "show", f"{SPEC_COMMIT}:specs/openapi.json"],
            check=True,
            capture_output=True,
        ).stdout
        return dict(json.loads(raw))
    pytest.skip("Discord's OpenAPI spec is not available here")


def _read_as_readme_says(node: Any) -> Any:
    """``oneOf`` as ``anyOf``; an integer field also takes a string of digits."""
    if isinstance(node, list):
        return [_read_as_readme_says(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {("anyOf" if key == "oneOf" else key): _read_as_readme_says(value) for key, value in node.items()}
    kinds = out.get("type")
    if kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds):
        listed = [kinds] if isinstance(kinds, str) else list(kinds)
        out["type"] = [*listed, "string"] if "string" not in listed else listed
        integer_string = {"if": {"type": "string"}, "then": {"pattern": r"^-?[0-9]+$"}}
        out["allOf"] = [*out.get("allOf", []), integer_string]
    return out


@functools.cache
def _components() -> dict[str, Any]:
    components = _read_as_readme_says(_spec()["components"])
    # Errata, following Discord's docs: field errors carry string codes, and a 429 has no code.
    error = components["schemas"]["Error"]
    error["properties"]["code"] = {"type": ["integer", "string"]}
    limited = components["schemas"]["RatelimitedResponse"]
    message_only = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
    limited["allOf"][0] = message_only
    return dict(components)


def spec_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Where ``instance`` breaks ``schema`` (which may ``$ref`` the spec's components), one line each."""
    validator = jsonschema_rs.Draft202012Validator(
        {**_read_as_readme_says(schema), "components": _components()}, validate_formats=True
    )
    return [
        f"/{'/'.join(map(str, error.instance_path))}: {error.message[:200]}"
        for error in validator.iter_errors(instance)
    ]


def component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def response_schema(method: str, path: str, status: int) -> dict[str, Any]:
    """The schema the spec gives for one operation's answer, falling back to its 4XX entry."""
    responses = _spec()["paths"][path][method.lower()]["responses"]
    entry = responses.get(str(status)) or responses[f"{str(status)[0]}XX"]
    if "$ref" in entry:
        entry = _spec()["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
    return dict(entry["content"]["application/json"]["schema"])


def assert_conforms(schema: dict[str, Any], instance: Any, what: str) -> None:
    errors = spec_errors(schema, instance)
    assert not errors, f"{what} breaks Discord's spec:\n" + "\n".join(errors)


# -- the payload builders ---------------------------------------------------------------------------


def test_the_check_notices_a_missing_field_and_a_bad_timestamp(store: Store) -> None:
    thin = {k: v for k, v in store.buyer.to_json().items() if k != "primary_guild"}
    assert spec_errors(component("UserResponse"), thin), "a user without primary_guild slipped through"
    member = store.fake.world.member(store.guild.id, store.buyer.id).to_json(store.buyer)
    undated = {**member, "joined_at": "today"}
    assert spec_errors(component("GuildMemberResponse"), undated), "a joined_at 'today' slipped through"


def test_a_user_is_a_spec_user(store: Store) -> None:
    for user in (store.buyer, store.fake.world.users[store.bot.user_id]):
        assert_conforms(component("UserResponse"), user.to_json(), f"user {user.username}")


def test_the_current_user_carries_the_private_fields(store: Store) -> None:
    for with_email in (False, True):
        seen = store.buyer.to_private_json(with_email=with_email)
        assert_conforms(component("UserPIIResponse"), seen, f"the user seen by itself ({with_email=})")
    assert store.buyer.to_private_json(with_email=False).keys().isdisjoint({"email", "verified"})


def test_a_role_is_a_spec_role(store: Store) -> None:
    for role in store.guild.roles.values():
        assert_conforms(component("GuildRoleResponse"), role.to_json(), f"role {role.name}")


def test_a_guild_is_a_spec_guild(store: Store) -> None:
    assert_conforms(component("GuildWithCountsResponse"), store.guild.to_json(), "the guild")
    counted = store.guild.to_json(with_counts=True)
    assert_conforms(component("GuildWithCountsResponse"), counted, "the guild with counts")


def test_channels_are_spec_channels(store: Store) -> None:
    users = store.fake.world.users
    everyone = [{"id": store.guild.id, "type": 0, "deny": 1024}]
    text = store.fake.create_channel(store.guild.id, "general", overwrites=everyone)
    assert_conforms(component("GuildChannelResponse"), text.to_json(users), "a text channel")
    dm = store.fake.world.dm_channel(store.bot, store.buyer.id)
    seen = dm.to_json(users, viewer_id=store.bot.user_id)
    assert_conforms(component("PrivateChannelResponse"), seen, "a DM channel")
    assert [u["id"] for u in seen["recipients"]] == [store.buyer.id], "a DM lists the other side only"


def test_an_application_is_a_spec_application(store: Store) -> None:
    world = store.fake.world
    assert_conforms(component("ApplicationResponse"), store.bot.application_json(), "the application")
    private = store.bot.private_application_json(world.users[store.bot.user_id].to_json())
    assert_conforms(component("PrivateApplicationResponse"), private, "the application seen by itself")


def test_a_message_is_a_spec_message(store: Store) -> None:
    author = store.fake.world.users[store.bot.user_id].to_json()
    button = {"type": 2, "style": 1, "label": "Claim", "custom_id": "claim:1"}
    body = {
        "content": "hi",
        "embeds": [{"title": "Receipt", "fields": [{"name": "Role", "value": "VIP"}]}],
        "components": [{"type": 1, "components": [button]}],
    }
    message = public_message(build_message("1", author, body))
    assert_conforms(component("MessageResponse"), message, "a message")
    assert message["embeds"][0]["type"] == "rich", "an embed sent by an app is a rich embed"
    row = message["components"][0]
    assert (row["id"], row["components"][0]["id"]) == (1, 2), "components are numbered depth first"


def test_interaction_users_and_members_are_spec_shaped(store: Store) -> None:
    world = store.fake.world
    data = command_data(world, store.bot, store.guild.id, "buy", {"item": "vip"})
    in_guild = interaction(world, store.bot, 2, guild_id=store.guild.id, user=store.buyer, data=data)
    assert_conforms(component("GuildMemberResponse"), in_guild["member"], "an interaction's member")
    assert_conforms(component("GuildChannelResponse"), in_guild["channel"], "an interaction's channel")
    channel = store.fake.create_channel(store.guild.id, "shop")
    from_channel = interaction(
        world, store.bot, 2, guild_id=store.guild.id, user=store.buyer, data=data, channel_id=channel.id
    )
    assert_conforms(component("GuildChannelResponse"), from_channel["channel"], "a known channel")
    in_dm = interaction(world, store.bot, 2, guild_id=None, user=store.buyer, data=data)
    assert_conforms(component("UserResponse"), in_dm["user"], "an interaction's user")
    assert_conforms(component("PrivateChannelResponse"), in_dm["channel"], "an interaction's DM channel")
    ping = interaction(world, store.bot, 1, guild_id=None, user=None, data=None)
    assert_conforms(component("UserResponse"), ping["user"], "a ping's user")


# -- the answers, over HTTP -------------------------------------------------------------------------


def _check(response: requests.Response, method: str, spec_path: str) -> None:
    assert response.status_code != 500, response.text
    if response.status_code == 204:
        return
    schema = response_schema(method, spec_path, response.status_code)
    assert_conforms(schema, response.json(), f"{method} {spec_path} ({response.status_code})")


def test_every_bot_route_answers_as_the_spec_says(store: Store) -> None:
    fake, bot, guild, api = store.fake, store.bot, store.guild, store.api
    channel = fake.create_channel(guild.id, "general")
    commands = f"/applications/{bot.application_id}/guilds/{guild.id}/commands"
    option = {"type": 3, "name": "item", "description": "What to buy", "required": True}
    command = {"name": "buy", "description": "Buy a role", "options": [option]}
    guild_commands = "/applications/{application_id}/guilds/{guild_id}/commands"
    message = {"content": "hi", "embeds": [{"title": "Receipt"}]}
    dm = api.post(store.url("/users/@me/channels"), json={"recipient_id": store.buyer.id})
    calls: list[tuple[Callable[[], requests.Response], str, str]] = [
        (lambda: api.get(store.url("/users/@me")), "GET", "/users/@me"),
        (lambda: api.get(store.url(f"/users/{store.buyer.id}")), "GET", "/users/{user_id}"),
        (lambda: api.get(store.url("/applications/@me")), "GET", "/applications/@me"),
        (lambda: dm, "POST", "/users/@me/channels"),
        (lambda: api.get(store.url(f"/channels/{dm.json()['id']}")), "GET", "/channels/{channel_id}"),
        (lambda: api.get(store.url(f"/channels/{channel.id}")), "GET", "/channels/{channel_id}"),
        (
            lambda: api.post(store.url(f"/channels/{channel.id}/messages"), json=message),
            "POST",
            "/channels/{channel_id}/messages",
        ),
        (lambda: api.get(store.url(f"/guilds/{guild.id}")), "GET", "/guilds/{guild_id}"),
        (lambda: api.get(store.url(f"/guilds/{guild.id}?with_counts=true")), "GET", "/guilds/{guild_id}"),
        (lambda: api.get(store.url(f"/guilds/{guild.id}/roles")), "GET", "/guilds/{guild_id}/roles"),
        (lambda: api.get(store.url(f"/guilds/{guild.id}/channels")), "GET", "/guilds/{guild_id}/channels"),
        (
            lambda: api.get(store.url(f"/guilds/{guild.id}/members/{store.buyer.id}")),
            "GET",
            "/guilds/{guild_id}/members/{user_id}",
        ),
        (lambda: api.put(store.url(commands), json=[command]), "PUT", guild_commands),
        (lambda: api.get(store.url(commands)), "GET", guild_commands),
        (
            lambda: api.put(store.url(f"/applications/{bot.application_id}/commands"), json=[command]),
            "PUT",
            "/applications/{application_id}/commands",
        ),
    ]
    for call, method, spec_path in calls:
        response = call()
        assert response.ok, f"{method} {spec_path}: {response.status_code} {response.text}"
        _check(response, method, spec_path)


def test_a_member_added_with_oauth_is_a_spec_member(
    store: Store, session_factory: Callable[..., requests.Session]
) -> None:
    newcomer = store.fake.create_user("newcomer")
    token = store.fake.create_user_token(store.bot, newcomer, scopes=("identify", "email", "guilds.join"))
    path = f"/guilds/{store.guild.id}/members/{newcomer.id}"
    response = store.api.put(store.url(path), json={"access_token": token})
    assert response.status_code == 201, response.text
    _check(response, "PUT", "/guilds/{guild_id}/members/{user_id}")
    bearer = session_factory(f"Bearer {token}")
    for spec_path in ("/users/@me", "/oauth2/@me"):
        response = bearer.get(store.url(spec_path))
        assert response.ok, response.text
        _check(response, "GET", spec_path)
    me = bearer.get(store.url("/users/@me")).json()
    assert me["email"] == "newcomer@example.com", "the email scope shows the user's email"


def test_interaction_webhook_messages_are_spec_messages(store: Store) -> None:
    world = store.fake.world
    payload = interaction(world, store.bot, 2, guild_id=store.guild.id, user=store.buyer, data={})
    base = store.url(f"/webhooks/{store.bot.application_id}/{payload['token']}")
    plain = requests.Session()
    try:
        answered = plain.post(
            store.url(f"/interactions/{payload['id']}/{payload['token']}/callback"),
            json={"type": 4, "data": {"content": "thanks", "embeds": [{"description": "paid"}]}},
        )
        assert answered.status_code == 204, answered.text
        original = "/webhooks/{webhook_id}/{webhook_token}/messages/@original"
        _check(plain.get(base + "/messages/@original"), "GET", original)
        row = {"type": 1, "components": [{"type": 2, "style": 1, "label": "Claim", "custom_id": "claim"}]}
        embed = {"title": "Paid", "fields": [{"name": "Role", "value": "VIP"}]}
        edit = {"content": "edited", "embeds": [embed], "components": [row]}
        _check(plain.patch(base + "/messages/@original", json=edit), "PATCH", original)
        followup = plain.post(base, json={"content": "more"})
        _check(followup, "POST", "/webhooks/{webhook_id}/{webhook_token}")
        edited = plain.patch(base + f"/messages/{followup.json()['id']}", json={"content": "again"})
        _check(edited, "PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    finally:
        plain.close()


@pytest.mark.parametrize(
    ("path", "spec_path"),
    [
        ("/guilds/{unknown}", "/guilds/{guild_id}"),
        ("/channels/{unknown}", "/channels/{channel_id}"),
        ("/users/{unknown}", "/users/{user_id}"),
    ],
)
def test_error_bodies_are_spec_errors(store: Store, path: str, spec_path: str) -> None:
    response = store.api.get(store.url(path.format(unknown="1234567890123")))
    assert response.status_code == 404, response.text
    _check(response, "GET", spec_path)


def test_a_field_error_is_a_spec_error(store: Store) -> None:
    # An audit-log reason over 512 characters: a field error for a request the spec itself allows.
    reason = {"X-Audit-Log-Reason": "x" * 513}
    response = store.api.put(store.role_url(), headers=reason)
    assert response.status_code == 400, response.text
    assert response.json()["errors"]["audit_log_reason"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    _check(response, "PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}")


def test_unauthorized_and_rate_limited_bodies_are_spec_errors(
    fake_discord: FakeDiscord, store: Store
) -> None:
    anonymous = requests.Session()
    try:
        response = anonymous.get(store.url("/users/@me"))
    finally:
        anonymous.close()
    assert response.status_code == 401
    _check(response, "GET", "/users/@me")
    fake_discord.set_route_limit("users_me", 1, 60.0)
    store.api.get(store.url("/users/@me"))
    limited = store.api.get(store.url("/users/@me"))
    assert limited.status_code == 429, limited.text
    _check(limited, "GET", "/users/@me")
