"""Every object the fake builds, and every answer it gives, matches Discord's published OpenAPI spec.

The spec is the vendored copy, read as :mod:`flask_discord_roles.testing.spec` reads it for every exchange
of the suite (its README's conventions, and the errata where Discord's docs and the spec disagree); these
tests pin each object and each route by name, so a gap shows here with the object it belongs to.
Behaviour the spec cannot express (hierarchy, permissions, rate limits) is checked by the other tests in
this package; these only pin shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.payloads import command_data, interaction
from flask_discord_roles.testing.routes_channels import build_message, public_message
from flask_discord_roles.testing.spec import json_path, load_spec
from tests.fake.helpers import Store


def component(name: str) -> str:
    """Where the spec's schema ``name`` is."""
    return f"#/components/schemas/{name}"


def spec_errors(pointer: str, instance: Any) -> list[str]:
    """Where ``instance`` breaks the schema at ``pointer``, one line each."""
    return [f"{json_path(where)}: {reason}" for where, reason, _code in load_spec().errors(pointer, instance)]


def assert_conforms(pointer: str, instance: Any, what: str) -> None:
    errors = spec_errors(pointer, instance)
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
    path = urlsplit(response.request.url).path
    operation = load_spec().operation(method, path)
    assert operation is not None, f"{method} {path}: the spec has no such operation"
    assert operation.template == spec_path, f"{method} {path} is {operation.template}, not {spec_path}"
    content_type = response.headers.get("Content-Type")
    breaks = load_spec().check_response(method, path, response.status_code, content_type, response.content)
    assert not breaks, f"{method} {spec_path} ({response.status_code}) breaks Discord's spec:\n" + "\n".join(
        map(str, breaks)
    )


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
