"""The interactions webhook, driven the way Discord drives it: signed by FakeDiscord, body as sent."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from flask_discord_roles._core.bots import save_bot
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.signing import deliver, sign_interaction
from tests.shop import Shop, open_shop

URL = "/webhook/discord/interactions/store-1"
EPHEMERAL = 64


def _bot_row(shop: Shop) -> Any:
    bot = get_state(shop.app).models.StoreBot
    shop.db.session.expire_all()
    return shop.db.session.scalar(sa.select(bot).where(bot.store_id == shop.store_id))


def test_discord_accepts_the_endpoint_ping_answers_pong_and_a_bad_signature_401(
    shop: Shop, client: FlaskClient
) -> None:
    assert shop.fake.check_interactions_endpoint(URL, shop.bot, client) == []
    pong = shop.fake.ping(URL, shop.bot, client)
    assert pong.headers["Content-Type"] == "application/json"
    assert pong.json() == {"type": 1}
    probe = shop.fake.probe_invalid_signature(URL, shop.bot, client)
    assert probe.status_code == 401
    assert probe.json() == {
        "success": False,
        "error": "Unauthorized",
        "message": "Invalid request signature.",
    }


def test_help_answers_ephemerally_and_counts_the_interaction(shop: Shop, client: FlaskClient) -> None:
    member = shop.member("alice")
    bot = _bot_row(shop)
    before = (bot.total_interactions, bot.updated_at)
    answer = shop.fake.send_interaction(
        URL, shop.bot, shop.fake.command_payload(shop.bot, shop.guild_id, member, "help"), client=client
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["type"] == 4
    assert body["data"]["flags"] == EPHEMERAL, "only the member sees the answer"
    assert body["data"]["allowed_mentions"] == {"parse": []}
    assert {field["name"] for field in body["data"]["embeds"][0]["fields"]} >= {"/claim", "/check"}
    after = _bot_row(shop)
    assert after.total_interactions == before[0] + 1
    assert after.last_interaction_at is not None
    assert after.updated_at == before[1], "a customer's command is not a change to the bot's settings"


def test_the_same_interaction_delivered_twice_is_handled_once(shop: Shop, client: FlaskClient) -> None:
    payload = shop.fake.command_payload(shop.bot, shop.guild_id, shop.member("alice"), "help")
    first = shop.fake.send_interaction(URL, shop.bot, payload, client=client)
    again = shop.fake.send_interaction(URL, shop.bot, payload, client=client)
    assert "embeds" in first.json()["data"]
    assert again.json()["data"]["content"] == "This request was already handled."
    assert _bot_row(shop).total_interactions == 1, "a redelivery is not a second interaction"


def test_unknown_commands_old_buttons_and_autocomplete_get_polite_answers(
    shop: Shop, client: FlaskClient
) -> None:
    member = shop.member("alice")
    fake = shop.fake
    unknown = fake.send_interaction(
        URL,
        shop.bot,
        fake.command_payload(shop.bot, shop.guild_id, member, "help") | {"data": {"name": "dance"}},
        client=client,
    )
    assert unknown.status_code == 200
    assert "/help" in unknown.json()["data"]["content"]
    button = fake.send_interaction(
        URL, shop.bot, fake.component_payload(shop.bot, shop.guild_id, member, "gone:1"), client=client
    )
    assert button.status_code == 200
    assert button.json()["data"]["flags"] == EPHEMERAL
    autocomplete = fake.command_payload(shop.bot, shop.guild_id, member, "help") | {"type": 4}
    assert fake.send_interaction(URL, shop.bot, autocomplete, client=client).json() == {
        "type": 8,
        "data": {"choices": []},
    }


def test_a_switched_off_bot_still_answers_ping_but_not_commands(shop: Shop, client: FlaskClient) -> None:
    _bot_row(shop).is_enabled = False
    shop.db.session.commit()
    assert shop.fake.ping(URL, shop.bot, client).json() == {"type": 1}
    answer = shop.fake.send_interaction(
        URL,
        shop.bot,
        shop.fake.command_payload(shop.bot, shop.guild_id, shop.member("alice"), "help"),
        client=client,
    )
    assert answer.status_code == 200
    assert "not available" in answer.json()["data"]["content"]


def test_an_unknown_store_is_404_and_a_huge_body_413(shop: Shop, client: FlaskClient) -> None:
    missing = shop.fake.ping("/webhook/discord/interactions/no-such-store", shop.bot, client)
    assert missing.status_code == 404
    assert missing.json()["error"] == "Not Found"
    body = b'{"type":1,"padding":"' + b"x" * 70_000 + b'"}'
    huge = shop.post_signed(URL, body, client)
    assert huge.status_code == 413


def test_an_old_signed_request_is_a_replay_and_refused(shop: Shop, client: FlaskClient) -> None:
    stale = str(int(time.time()) - 301)
    answer = shop.fake.send_interaction(
        URL, shop.bot, shop.fake.ping_payload(shop.bot), client=client, timestamp=stale
    )
    assert answer.status_code == 401
    assert "timestamp" in answer.json()["message"]


def test_two_stores_bots_in_one_app_each_verify_only_with_their_own_key(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, client: FlaskClient
) -> None:
    shop = open_shop(app, db, fake_discord)
    other = fake_discord.create_bot("Other Shop Bot")
    save_bot(
        get_state(app),
        "store-2",
        application_id=other.application_id,
        public_key=other.public_key,
        bot_token=other.token,
    )
    db.session.commit()
    other_url = "/webhook/discord/interactions/store-2"
    assert fake_discord.ping(other_url, other, client).json() == {"type": 1}
    assert fake_discord.ping(URL, shop.bot, client).json() == {"type": 1}
    # Each bot's request sent to the other store's address: signed with the wrong key there.
    assert fake_discord.ping(other_url, shop.bot, client).status_code == 401
    assert fake_discord.ping(URL, other, client).status_code == 401


def test_a_store_loader_maps_slugs_to_store_ids(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, client: FlaskClient
) -> None:
    shop = open_shop(app, db, fake_discord)
    app.extensions["discord_roles"].loaders.slug_to_store = {"my-shop": "store-1"}.get
    assert fake_discord.ping("/webhook/discord/interactions/my-shop", shop.bot, client).json() == {"type": 1}
    assert fake_discord.ping(URL, shop.bot, client).status_code == 404, "only the loader's slugs exist now"


MUTABLE_HEADERS = ("X-Signature-Ed25519", "X-Signature-Timestamp")
_members: dict[str, str] = {}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_of_a_signed_request_is_refused_with_401_or_400_never_5xx(
    shop: Shop, client: FlaskClient, data: st.DataObject
) -> None:
    if shop.guild_id not in _members:  # one member for all examples of a run: the fixture outlives them
        _members[shop.guild_id] = shop.member("alice")
    payload = shop.fake.command_payload(shop.bot, shop.guild_id, _members[shop.guild_id], "help")
    body = json.dumps(payload, separators=(",", ":")).encode()
    stamp = str(int(time.time()))
    headers = sign_interaction(shop.bot.signing_key, stamp, body)
    mutation = data.draw(
        st.sampled_from(["drop_header", "replace_header", "flip_body", "truncate", "append", "timestamp"])
    )
    if mutation == "drop_header":
        del headers[data.draw(st.sampled_from(MUTABLE_HEADERS))]
    elif mutation == "replace_header":
        name = data.draw(st.sampled_from(MUTABLE_HEADERS))
        replacement = data.draw(
            st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=140)
        )
        if replacement == headers[name]:
            return
        headers[name] = replacement
    elif mutation == "flip_body":
        index = data.draw(st.integers(0, len(body) - 1))
        bit = 1 << data.draw(st.integers(0, 7))
        body = body[:index] + bytes([body[index] ^ bit]) + body[index + 1 :]
    elif mutation == "truncate":
        body = body[: data.draw(st.integers(0, len(body) - 1))]
    elif mutation == "append":
        body = body + data.draw(st.binary(min_size=1, max_size=64))
    else:
        shifted = int(stamp) + data.draw(st.sampled_from([-1, 1])) * data.draw(st.integers(1, 10**6))
        headers["X-Signature-Timestamp"] = str(shifted)
    answer = deliver(URL, body, headers, client)
    assert answer.status_code in (400, 401), f"{mutation} answered {answer.status_code}: {answer.text[:200]}"
    assert answer.json()["success"] is False


def test_a_signed_body_that_is_not_an_interaction_is_400(shop: Shop, client: FlaskClient) -> None:
    for body in (b"not json", b"[1, 2]", b'{"type": "1"}'):
        answer = shop.post_signed(URL, body, client)
        assert answer.status_code == 400, f"{body!r} answered {answer.status_code}"
        assert answer.json()["error"] == "Bad Request"


@pytest.mark.parametrize("csrf_first", [True, False], ids=["csrf-before-us", "csrf-after-us"])
def test_a_host_with_csrf_protection_still_receives_discords_webhooks(
    csrf_first: bool, database_url: str, fake_discord: FakeDiscord
) -> None:
    from flask_wtf.csrf import CSRFProtect

    from flask_discord_roles import DiscordRoles

    host = Flask("csrf_host")
    host.config.update(
        TESTING=True,
        SECRET_KEY="host secret",
        SQLALCHEMY_DATABASE_URI=database_url,
        DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url,
        DISCORD_ROLES_EXECUTOR="worker",
    )
    db = SQLAlchemy(host)
    csrf = CSRFProtect()
    if csrf_first:
        csrf.init_app(host)
    DiscordRoles(host, db=db)
    if not csrf_first:
        csrf.init_app(host)

    @host.post("/cart")
    def cart() -> str:
        return "added"

    with host.app_context():
        db.create_all()
        try:
            shop = open_shop(host, db, fake_discord)
            client = host.test_client()
            assert client.post("/cart").status_code == 400, "the host's own forms stay protected"
            assert fake_discord.ping(URL, shop.bot, client).json() == {"type": 1}
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def test_a_worker_forgets_interaction_ids_after_a_day(shop: Shop, client: FlaskClient) -> None:
    from datetime import timedelta

    from flask_discord_roles._engine.worker import Worker
    from flask_discord_roles._runtime.models import utcnow

    model = get_state(shop.app).models.ProcessedInteraction
    old = utcnow() - timedelta(days=1, minutes=1)
    shop.db.session.add(model(interaction_id="100000000000000001", store_id=shop.store_id, received_at=old))
    shop.db.session.commit()
    shop.fake.send_interaction(
        URL,
        shop.bot,
        shop.fake.command_payload(shop.bot, shop.guild_id, shop.member("alice"), "help"),
        client=client,
    )

    Worker(shop.app, threads=1).run(once=True)

    shop.db.session.expire_all()
    remembered = shop.db.session.scalars(sa.select(model.interaction_id)).all()
    assert len(remembered) == 1, "yesterday's id is forgotten, the one just handled is kept"
    assert remembered != ["100000000000000001"]


MANAGE_SERVER = str(1 << 5)


def _link(
    shop: Shop, client: FlaskClient, code: str, *, permissions: str = MANAGE_SERVER, guild: str | None = None
) -> str:
    payload = shop.fake.command_payload(
        shop.bot,
        guild or shop.guild_id,
        shop.member("owner"),
        "link",
        {"code": code},
        member_permissions=permissions,
    )
    answer = shop.fake.send_interaction(URL, shop.bot, payload, client=client)
    assert answer.status_code == 200
    assert answer.json()["data"]["flags"] == EPHEMERAL
    return str(answer.json()["data"]["content"])


def _linked_guilds(shop: Shop) -> list[tuple[str, str]]:
    model = get_state(shop.app).models.LinkedGuild
    shop.db.session.expire_all()
    return [(row.store_id, row.guild_id) for row in shop.db.session.scalars(sa.select(model))]


def test_link_connects_the_server_for_a_manager_and_names_the_store(shop: Shop, client: FlaskClient) -> None:
    from flask_discord_roles import guilds

    get_state(shop.app).loaders.store_to_name = {"store-1": "Pixel Shop"}.get
    with shop.app.app_context():
        issued = guilds.create_link_code("store-1")
        shop.db.session.commit()
    assert "***" in repr(issued), "the code is a credential: never in a repr"

    refused = _link(shop, client, issued.code, permissions="0")
    assert "Manage Server" in refused
    assert _linked_guilds(shop) == [], "a member without Manage Server cannot link"

    answer = _link(shop, client, issued.code.lower().replace("-", " "))  # typed loosely
    assert "Pixel Shop" in answer
    assert _linked_guilds(shop) == [("store-1", shop.guild_id)]


def test_a_link_code_works_once_and_not_after_it_expires(shop: Shop, client: FlaskClient) -> None:
    from datetime import timedelta

    from flask_discord_roles._core.guilds import create_link_code
    from flask_discord_roles._runtime.models import utcnow

    state = get_state(shop.app)
    with shop.app.app_context():
        used = create_link_code(state, "store-1")
        stale = create_link_code(state, "store-1", now=utcnow() - timedelta(minutes=31))
        elsewhere = create_link_code(state, "store-2")
        shop.db.session.commit()
    assert "another store" in _link(shop, client, elsewhere.code), (
        "store-2's code cannot link via store-1's bot"
    )
    assert "now linked" in _link(shop, client, used.code)
    assert "already used" in _link(shop, client, used.code, guild=shop.fake.create_guild("Second").id)
    assert "expired" in _link(shop, client, stale.code)
    assert "not valid" in _link(shop, client, "NOPE-NOPE0")
    assert _linked_guilds(shop) == [("store-1", shop.guild_id)]


def test_administrators_may_link_too(shop: Shop, client: FlaskClient) -> None:
    from flask_discord_roles import guilds

    with shop.app.app_context():
        issued = guilds.create_link_code("store-1")
        shop.db.session.commit()
    assert "now linked" in _link(shop, client, issued.code, permissions=str(1 << 3))


def test_guild_linked_is_sent_once_the_link_is_committed_and_never_on_rollback(
    shop: Shop, client: FlaskClient
) -> None:
    from flask_discord_roles import guild_linked, guilds
    from flask_discord_roles._core.guilds import link_guild

    heard: list[dict[str, Any]] = []

    def receiver(sender: Flask, **payload: Any) -> None:
        assert sender is shop.app
        heard.append(payload)

    guild_linked.connect(receiver)
    try:
        with shop.app.app_context():
            rolled_back = guilds.create_link_code("store-1")
            kept = guilds.create_link_code("store-1")
            shop.db.session.commit()
            assert link_guild(get_state(shop.app), "store-1", rolled_back.code, shop.guild_id, "1") is None
            shop.db.session.rollback()
            assert heard == [], "a link that was rolled back never happened"
        assert "now linked" in _link(shop, client, kept.code)
    finally:
        guild_linked.disconnect(receiver)
    (payload,) = heard
    assert payload["store_id"] == "store-1"
    assert payload["guild_id"] == shop.guild_id
    assert payload["linked_by_user_id"].isdigit()


def _bot_lookups(app: Flask) -> list[str]:
    """Collects the SELECTs of a store's bot that reach the database from now on."""
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM discord_roles_bots" in statement:
            seen.append(statement)

    with app.app_context():
        sa.event.listen(get_state(app).db.engine, "before_cursor_execute", on_execute)
    return seen


def test_a_ping_after_the_first_does_not_read_the_database(shop: Shop, client: FlaskClient) -> None:
    shop.fake.ping(URL, shop.bot, client)
    lookups = _bot_lookups(shop.app)
    for _ in range(5):
        assert shop.fake.ping(URL, shop.bot, client).json() == {"type": 1}
    assert lookups == [], "the store's bot is remembered between interactions"


def test_a_key_saved_by_another_process_verifies_at_once_and_junk_cannot_flood_the_database(
    shop: Shop, client: FlaskClient
) -> None:
    shop.fake.ping(URL, shop.bot, client)  # this process now remembers the old key
    new_key = SigningKey.generate()
    bot = _bot_row(shop)
    bot.public_key = new_key.verify_key.encode().hex()  # as another web process's save_bot would
    shop.db.session.commit()
    time.sleep(1.05)  # a remembered bot is read again for a failing signature once it is a second old

    signed_with_new = shop.fake.send_interaction(
        URL, shop.bot, shop.fake.ping_payload(shop.bot), client=client, signing_key=new_key
    )
    assert signed_with_new.json() == {"type": 1}, "the new key works without waiting for the cache"

    lookups = _bot_lookups(shop.app)
    for _ in range(20):
        junk = shop.fake.send_interaction(
            URL, shop.bot, shop.fake.ping_payload(shop.bot), client=client, signing_key=SigningKey.generate()
        )
        assert junk.status_code == 401
    assert len(lookups) <= 2, f"20 bad signatures read the bot {len(lookups)} times; at most once a second"
