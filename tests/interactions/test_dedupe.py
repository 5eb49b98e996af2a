"""A redelivered interaction is handled once per store: the record is keyed by store and interaction id."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from flask_discord_roles._core.bots import save_bot
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing.state import FakeBot
from tests.shop import Shop

URL = "/webhook/discord/interactions/store-1"
OTHER_URL = "/webhook/discord/interactions/store-2"
ALREADY = "This request was already handled."


@pytest.fixture
def other_bot(shop: Shop) -> FakeBot:
    """A second store's own bot, in the same server as the first store's."""
    other = shop.fake.create_bot("Other Shop Bot")
    shop.fake.add_bot_to_guild(other, shop.guild_id)
    save_bot(
        get_state(shop.app),
        "store-2",
        application_id=other.application_id,
        public_key=other.public_key,
        bot_token=other.token,
    )
    shop.db.session.commit()
    return other


def _interactions_counted(shop: Shop, store_id: str) -> int:
    bot = get_state(shop.app).models.StoreBot
    shop.db.session.expire_all()
    return int(shop.db.session.scalar(sa.select(bot.total_interactions).where(bot.store_id == store_id)))


def _content(answer: Any) -> str | None:
    assert answer.status_code == 200, f"answered {answer.status_code}: {answer.text[:200]}"
    return answer.json().get("data", {}).get("content")


@pytest.mark.parametrize("command", ["help", "claim"])
def test_the_same_interaction_id_sent_to_two_stores_is_handled_by_both(
    shop: Shop, other_bot: FakeBot, client: FlaskClient, command: str
) -> None:
    member = shop.member("alice")
    first = shop.fake.command_payload(shop.bot, shop.guild_id, member, command)
    second = shop.fake.command_payload(other_bot, shop.guild_id, member, command)
    second["id"] = first["id"]
    assert _content(shop.fake.send_interaction(URL, shop.bot, first, client=client)) != ALREADY
    answer = shop.fake.send_interaction(OTHER_URL, other_bot, second, client=client)
    assert _content(answer) != ALREADY, "another store's record of the id must not answer for store-2"
    assert _interactions_counted(shop, "store-1") == 1
    assert _interactions_counted(shop, "store-2") == 1


@pytest.mark.parametrize("command", ["help", "claim"])
def test_the_same_interaction_id_twice_to_one_store_is_handled_once(
    shop: Shop, client: FlaskClient, command: str
) -> None:
    payload = shop.fake.command_payload(shop.bot, shop.guild_id, shop.member("alice"), command)
    assert _content(shop.fake.send_interaction(URL, shop.bot, payload, client=client)) != ALREADY
    assert _content(shop.fake.send_interaction(URL, shop.bot, payload, client=client)) == ALREADY
    assert _interactions_counted(shop, "store-1") == 1


def test_a_signed_interaction_without_an_id_is_a_400_and_records_nothing(
    shop: Shop, client: FlaskClient
) -> None:
    member = shop.member("alice")
    ping = shop.fake.ping_payload(shop.bot)
    help_ = shop.fake.command_payload(shop.bot, shop.guild_id, member, "help")
    claim = shop.fake.command_payload(shop.bot, shop.guild_id, member, "claim")
    for payload, id_ in [(ping, None), (help_, None), (claim, None), (help_, 123), (claim, ""), (help_, "x")]:
        sent = {key: value for key, value in payload.items() if key != "id"}
        if id_ is not None:
            sent["id"] = id_
        answer = shop.post_signed(URL, json.dumps(sent).encode(), client)
        assert answer.status_code == 400, f"type {sent['type']} with id {id_!r} answered {answer.status_code}"
        assert answer.json()["success"] is False
        assert answer.json()["error"] == "Bad Request"
    assert _interactions_counted(shop, "store-1") == 0, "an interaction without an id is not handled"
