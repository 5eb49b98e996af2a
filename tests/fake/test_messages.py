"""Messages obey channel overwrites and Discord's body limits; DMs and commands behave like Discord."""

from __future__ import annotations

from typing import Any

import pytest

from flask_discord_roles.testing.permissions import SEND_MESSAGES, VIEW_CHANNEL
from tests.fake.helpers import Store


def post(store: Store, channel_id: str, body: dict[str, Any]) -> Any:
    return store.api.post(store.url(f"/channels/{channel_id}/messages"), json=body)


def test_message_is_stored_with_allowed_mentions(store: Store) -> None:
    channel = store.fake.create_channel(store.guild.id, "orders")
    body = {"content": "Thanks <@1>!", "allowed_mentions": {"parse": []}}
    response = post(store, channel.id, body)
    assert response.status_code == 200
    assert response.json()["author"]["id"] == store.bot.user_id
    assert response.json()["channel_id"] == channel.id
    [stored] = store.fake.messages(channel.id)
    assert stored["content"] == "Thanks <@1>!"
    assert stored["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize(
    ("overwrites", "status", "code"),
    [
        ([], 200, None),
        ([{"id": "@everyone", "type": 0, "allow": 0, "deny": VIEW_CHANNEL}], 403, 50001),
        ([{"id": "@everyone", "type": 0, "allow": 0, "deny": SEND_MESSAGES}], 403, 50013),
        (
            [
                {"id": "@everyone", "type": 0, "allow": 0, "deny": VIEW_CHANNEL | SEND_MESSAGES},
                {"id": "@bot_role", "type": 0, "allow": VIEW_CHANNEL | SEND_MESSAGES, "deny": 0},
            ],
            200,
            None,
        ),
        (
            [
                {"id": "@bot_role", "type": 0, "allow": 0, "deny": SEND_MESSAGES},
                {"id": "@bot", "type": 1, "allow": SEND_MESSAGES, "deny": 0},
            ],
            200,
            None,
        ),
        ([{"id": "@bot", "type": 1, "allow": 0, "deny": SEND_MESSAGES}], 403, 50013),
    ],
)
def test_channel_overwrites_apply_in_discord_order(
    store: Store, overwrites: list[dict[str, Any]], status: int, code: int | None
) -> None:
    ids = {"@everyone": store.guild.id, "@bot_role": store.bot_role.id, "@bot": store.bot.user_id}
    resolved = [{**ow, "id": ids[ow["id"]]} for ow in overwrites]
    channel = store.fake.create_channel(store.guild.id, "orders", overwrites=resolved)
    response = post(store, channel.id, {"content": "hi"})
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code
        assert store.fake.messages(channel.id) == []


@pytest.mark.breaks_discord_spec
@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"content": "x" * 2001}, "content"),
        ({"embeds": [{"title": "t"}] * 11}, "embeds"),
        ({"embeds": [{"title": "x" * 257}]}, "embeds"),
        (
            {"content": "x", "components": [{"type": 1, "components": [{"type": 2, "style": 1}]}]},
            "components",
        ),
        ({"content": "x", "allowed_mentions": {"parse": ["nobody"]}}, "allowed_mentions"),
    ],
)
def test_invalid_message_bodies_are_50035(store: Store, body: dict[str, Any], path: str) -> None:
    channel = store.fake.create_channel(store.guild.id)
    response = post(store, channel.id, body)
    assert response.status_code == 400
    assert response.json()["code"] == 50035
    assert path in response.json()["errors"]


def test_empty_message_is_50006(store: Store) -> None:
    channel = store.fake.create_channel(store.guild.id)
    response = post(store, channel.id, {"content": ""})
    assert (response.status_code, response.json()["code"]) == (400, 50006)


def test_dm_needs_a_shared_guild_and_open_dms(store: Store) -> None:
    dm = store.api.post(store.url("/users/@me/channels"), json={"recipient_id": store.buyer.id})
    assert dm.status_code == 200
    assert dm.json()["type"] == 1
    assert post(store, dm.json()["id"], {"content": "Your role is ready"}).status_code == 200
    assert [m["content"] for m in store.fake.dm_messages(store.bot, store.buyer)] == ["Your role is ready"]
    again = store.api.post(store.url("/users/@me/channels"), json={"recipient_id": store.buyer.id})
    assert again.json()["id"] == dm.json()["id"]
    loner = store.fake.create_user("loner")
    lonely = store.api.post(store.url("/users/@me/channels"), json={"recipient_id": loner.id})
    assert post(store, lonely.json()["id"], {"content": "hi"}).json()["code"] == 50007
    store.buyer.dms_open = False
    assert post(store, dm.json()["id"], {"content": "hi"}).json()["code"] == 50007
    bad = store.api.post(store.url("/users/@me/channels"), json={"recipient_id": "1"})
    assert bad.json()["code"] == 50033


COMMAND = {"name": "claim", "description": "Claim your purchase", "type": 1, "contexts": [0]}


def test_command_bulk_overwrite_keeps_ids(store: Store) -> None:
    url = store.url(f"/applications/{store.bot.application_id}/commands")
    first = store.api.put(url, json=[COMMAND])
    assert first.status_code == 200
    [command] = first.json()
    assert command["application_id"] == store.bot.application_id
    second = store.api.put(url, json=[COMMAND, {**COMMAND, "name": "status"}]).json()
    assert second[0]["id"] == command["id"]
    assert [c["name"] for c in store.fake.commands(store.bot.application_id)] == ["claim", "status"]
    assert store.api.get(url).json() == second
    guild_url = store.url(f"/applications/{store.bot.application_id}/guilds/{store.guild.id}/commands")
    assert store.api.put(guild_url, json=[COMMAND]).json()[0]["guild_id"] == store.guild.id
    assert len(store.fake.commands(store.bot.application_id, store.guild.id)) == 1


@pytest.mark.breaks_discord_spec
@pytest.mark.parametrize(
    "command",
    [
        {**COMMAND, "name": "Claim"},
        {**COMMAND, "name": "has space"},
        {**COMMAND, "name": "x" * 33},
        {**COMMAND, "description": ""},
        {**COMMAND, "description": "x" * 101},
        {
            **COMMAND,
            "options": [{"name": f"o{i}", "description": "d", "type": 3} for i in range(26)],
        },
        {**COMMAND, "default_member_permissions": 32},
    ],
)
def test_invalid_commands_are_50035(store: Store, command: dict[str, Any]) -> None:
    url = store.url(f"/applications/{store.bot.application_id}/commands")
    response = store.api.put(url, json=[command])
    assert response.status_code == 400
    assert response.json()["code"] == 50035
    assert store.fake.commands(store.bot.application_id) == []


def test_commands_of_another_application_are_missing_access(store: Store) -> None:
    other = store.fake.create_bot("Other")
    response = store.api.put(store.url(f"/applications/{other.application_id}/commands"), json=[])
    assert (response.status_code, response.json()["code"]) == (403, 50001)
