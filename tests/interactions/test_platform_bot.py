"""The platform's shared bot: one Discord application answering for every store linked to it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import ConfigurationError, DiscordRoles, bots, order_completed
from flask_discord_roles._core.bots import save_bot
from flask_discord_roles._core.guilds import create_link_code
from flask_discord_roles._core.platform_bot import NOT_LINKED, OWN_BOT
from flask_discord_roles._engine.worker import Worker
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.state import FakeBot
from tests.api import api_for, assert_error
from tests.shop import FAST_QUEUE, open_shop

PATH = "/webhook/discord/interactions"
MANAGE_SERVER = str(1 << 5)
STORE = "store-9"

pytestmark = pytest.mark.app_settings(FAST_QUEUE, DISCORD_ROLES_EXECUTOR="worker")


@pytest.fixture
def platform(fake_discord: FakeDiscord) -> FakeBot:
    return fake_discord.create_bot("Platform Bot")


@pytest.fixture
def app_config(app_config: dict[str, Any], platform: FakeBot) -> dict[str, Any]:
    """The folder's settings, with the platform's shared bot configured."""
    return app_config | {
        "DISCORD_ROLES_APPLICATION_ID": platform.application_id,
        "DISCORD_ROLES_PUBLIC_KEY": platform.public_key,
        "DISCORD_ROLES_BOT_TOKEN": platform.token,
    }


@pytest.fixture
def server(fake_discord: FakeDiscord, platform: FakeBot) -> dict[str, str]:
    """A Discord server with the shared bot in it (Manage Roles, top role), a VIP role and a member."""
    guild = fake_discord.create_guild("Shared Bot Server")
    fake_discord.add_bot_to_guild(platform, guild.id)
    vip = fake_discord.create_role(guild.id, "VIP").id
    alice = fake_discord.create_user("alice").id
    fake_discord.add_member(guild.id, alice)
    return {"guild": guild.id, "vip": vip, "alice": alice}


def _command(
    fake: FakeDiscord,
    platform: FakeBot,
    guild_id: str | None,
    user: str,
    name: str,
    client: FlaskClient,
    **options: Any,
) -> dict[str, Any]:
    permissions = options.pop("permissions", "0")
    payload = fake.command_payload(
        platform, guild_id, user, name, options or None, member_permissions=permissions
    )
    answer = fake.send_interaction(PATH, platform, payload, client=client)
    assert answer.status_code == 200, answer.text
    return {"token": payload["token"], **answer.json()}


def _link(
    app: Flask,
    db: SQLAlchemy,
    fake: FakeDiscord,
    platform: FakeBot,
    server: dict[str, str],
    client: FlaskClient,
    store_id: str = STORE,
) -> dict[str, Any]:
    issued = create_link_code(get_state(app), store_id)
    db.session.commit()
    return _command(
        fake,
        platform,
        server["guild"],
        server["alice"],
        "link",
        client,
        code=issued.code,
        permissions=MANAGE_SERVER,
    )


def _bot_row(app: Flask, db: SQLAlchemy, store_id: str = STORE) -> Any:
    model = get_state(app).models.StoreBot
    db.session.expire_all()
    return db.session.scalar(sa.select(model).where(model.store_id == store_id))


def test_the_shared_bot_passes_discords_endpoint_check(
    fake_discord: FakeDiscord, platform: FakeBot, client: FlaskClient
) -> None:
    assert fake_discord.check_interactions_endpoint(PATH, platform, client) == []


def test_linking_with_the_shared_bot_then_claiming_delivers_with_the_platform_token(
    app: Flask,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    platform: FakeBot,
    server: dict[str, str],
    client: FlaskClient,
) -> None:
    linked = _link(app, db, fake_discord, platform, server, client)
    assert f"linked to **{STORE}**" in linked["data"]["content"]
    row = _bot_row(app, db)
    assert row.uses_platform_bot, "the store now has a shared-bot row for its counters"
    assert row.total_interactions == 1
    _map_vip(app, db, server)
    settings = get_state(app).models.StoreSettings
    db.session.add(settings(store_id=STORE, delivery_mode="claim"))
    db.session.commit()
    _buy_vip(app, db, server)

    claimed = _command(fake_discord, platform, server["guild"], server["alice"], "claim", client)
    assert claimed["type"] == 5, "deferred, as with a store's own bot"
    Worker(app, threads=2).run(once=True)

    assert fake_discord.member_roles(server["guild"], server["alice"]) == {server["vip"]}
    puts = [call for call in fake_discord.calls if call.method == "PUT" and "/roles/" in call.path]
    assert [call.token_suffix for call in puts] == [platform.token[-6:]], "delivered as the shared bot"
    edits = [r for r in fake_discord.interaction_responses[claimed["token"]] if r["kind"] == "edit_original"]
    assert "✅ **VIP**" in edits[0]["data"]["embeds"][0]["description"]
    assert _bot_row(app, db).total_interactions == 2
    own_address = fake_discord.ping(f"{PATH}/{STORE}", platform, client)
    assert own_address.status_code == 404, "a store on the shared bot has no address of its own"


def test_an_unlinked_server_is_told_how_to_link(
    fake_discord: FakeDiscord, platform: FakeBot, server: dict[str, str], client: FlaskClient
) -> None:
    answer = _command(fake_discord, platform, server["guild"], server["alice"], "claim", client)
    assert answer["data"]["content"] == NOT_LINKED


def test_a_store_with_its_own_bot_does_not_link_through_the_shared_one(
    app: Flask,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    platform: FakeBot,
    server: dict[str, str],
    client: FlaskClient,
) -> None:
    open_shop(app, db, fake_discord)  # store-1 saves a bot of its own
    answer = _link(app, db, fake_discord, platform, server, client, store_id="store-1")
    assert answer["data"]["content"] == OWN_BOT
    assert _bot_row(app, db, "store-1").uses_platform_bot is False


def test_without_a_shared_bot_its_address_is_404(
    make_app: Any, database_url: str, fake_discord: FakeDiscord
) -> None:
    app, db, _ = make_app(database_url)
    with app.app_context():
        db.create_all()
        bot = fake_discord.create_bot("Nobody's")
        assert fake_discord.ping(PATH, bot, app.test_client()).status_code == 404
        db.engine.dispose()


@pytest.mark.parametrize(
    "settings",
    [
        {"DISCORD_ROLES_APPLICATION_ID": "300000000000000001"},
        {
            "DISCORD_ROLES_APPLICATION_ID": "nope",
            "DISCORD_ROLES_PUBLIC_KEY": "ab" * 32,
            "DISCORD_ROLES_BOT_TOKEN": "t",
        },
        {
            "DISCORD_ROLES_APPLICATION_ID": "300000000000000001",
            "DISCORD_ROLES_PUBLIC_KEY": "xyz",
            "DISCORD_ROLES_BOT_TOKEN": "t",
        },
    ],
)
def test_the_shared_bot_settings_come_all_together_and_well_formed(settings: dict[str, str]) -> None:
    app = Flask(__name__)
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI="sqlite://", **settings)
    with pytest.raises(ConfigurationError, match="DISCORD_ROLES_"):
        DiscordRoles(app, db=SQLAlchemy(app))


def test_the_shared_bot_token_never_shows_in_a_repr(app: Flask, platform: FakeBot) -> None:
    assert platform.token not in repr(get_state(app))
    assert platform.token not in repr(get_state(app).settings)


def test_register_commands_registers_the_shared_bot_once(
    app: Flask, fake_discord: FakeDiscord, platform: FakeBot
) -> None:
    result = app.test_cli_runner().invoke(args=["discord-roles", "register-commands"])
    assert result.exit_code == 0, result.output
    assert "platform's shared bot: commands registered" in result.output
    assert {command["name"] for command in fake_discord.commands(platform.application_id)} == {
        "claim",
        "check",
        "help",
        "link",
    }


def test_a_store_moving_to_its_own_bot_leaves_the_shared_one_working(
    app: Flask,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    platform: FakeBot,
    server: dict[str, str],
    client: FlaskClient,
) -> None:
    _link(app, db, fake_discord, platform, server, client)
    shared_client = get_state(app).clients.for_token(platform.token)
    own = fake_discord.create_bot("Own Bot")
    save_bot(
        get_state(app),
        STORE,
        application_id=own.application_id,
        public_key=own.public_key,
        bot_token=own.token,
    )
    db.session.commit()

    row = _bot_row(app, db)
    assert row.uses_platform_bot is False, "the store now answers at its own address"
    assert get_state(app).clients.for_token(platform.token) is shared_client, (
        "other stores keep the shared client"
    )
    assert fake_discord.ping(f"{PATH}/{STORE}", own, client).json() == {"type": 1}


def _map_vip(app: Flask, db: SQLAlchemy, server: dict[str, str]) -> None:
    """The store's "vip" package grants the server's VIP role."""
    mapping = get_state(app).models.RoleMapping
    db.session.add(
        mapping(
            store_id=STORE, package_id="vip", guild_id=server["guild"], role_id=server["vip"], role_name="VIP"
        )
    )
    db.session.commit()


def _buy_vip(app: Flask, db: SQLAlchemy, server: dict[str, str]) -> None:
    """Alice buys "vip" at checkout, giving her Discord id."""
    order_completed.send(
        app, store_id=STORE, order_id="order-1", package_ids=["vip"], discord_user_id=server["alice"]
    )
    db.session.commit()


def _deliveries(app: Flask, db: SQLAlchemy) -> list[Any]:
    model = get_state(app).models.Delivery
    db.session.expire_all()
    return list(db.session.scalars(sa.select(model).where(model.store_id == STORE)))


def test_a_role_above_the_shared_bot_is_explained_in_words(
    app: Flask,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    platform: FakeBot,
    server: dict[str, str],
    client: FlaskClient,
) -> None:
    _link(app, db, fake_discord, platform, server, client)
    _map_vip(app, db, server)
    fake_discord.move_role(server["guild"], server["vip"], 100)  # dragged above the shared bot's role
    _buy_vip(app, db, server)

    Worker(app, threads=1).run(once=True)

    (row,) = _deliveries(app, db)
    assert (row.status, row.reason_code) == ("failed", "role_above_bot"), row.reason
    assert "Move the bot's role above «VIP»" in (row.reason or "")


def test_a_refused_shared_token_waits_for_the_operator_without_switching_the_store_off(
    app: Flask,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    platform: FakeBot,
    server: dict[str, str],
    client: FlaskClient,
) -> None:
    _link(app, db, fake_discord, platform, server, client)
    _map_vip(app, db, server)
    fake_discord.revoke_bot_token(platform)
    _buy_vip(app, db, server)

    Worker(app, threads=1).run(once=True)

    (row,) = _deliveries(app, db)
    assert (row.status, row.reason_code) == ("pending", "platform_token_revoked"), row.reason
    assert row.next_attempt_at is not None, "tried again later, when the operator may have set a new token"
    assert _bot_row(app, db).is_enabled, "the store is not switched off for the platform's token"


# -- the invite URL: "copy the bot invite URL" is the first step, on the shared bot too ---------------


def _seed_invite(application_id: str) -> str:
    """The custom-bot document's invite URL for ``application_id``."""
    return (
        f"https://discord.com/api/oauth2/authorize?client_id={application_id}"
        "&permissions=268435456&scope=bot%20applications.commands"
    )


def test_a_store_on_the_shared_bot_gets_the_shared_bots_invite_url_before_and_after_linking(
    app: Flask,
    db: SQLAlchemy,
    fake_discord: FakeDiscord,
    platform: FakeBot,
    server: dict[str, str],
    client: FlaskClient,
) -> None:
    api = api_for(app, STORE)
    before = api.get("/custom-bot/invite-url")
    assert before.status_code == 200, f"a new store's first step needs the shared bot's URL: {before.json}"
    assert before.json == {"url": _seed_invite(platform.application_id)}
    with app.app_context():
        assert bots.invite_url(STORE) == _seed_invite(platform.application_id), "the Python API agrees"

    _link(app, db, fake_discord, platform, server, client)
    assert _bot_row(app, db).uses_platform_bot
    assert api.get("/custom-bot/invite-url").json == {"url": _seed_invite(platform.application_id)}
    with app.app_context():
        assert bots.invite_url(STORE) == _seed_invite(platform.application_id)


def test_a_store_with_its_own_bot_gets_its_own_bots_invite_url(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    own = fake_discord.create_bot("Own Bot")
    with app.app_context():
        save_bot(
            get_state(app),
            STORE,
            application_id=own.application_id,
            public_key=own.public_key,
            bot_token=own.token,
        )
        db.session.commit()
        assert bots.invite_url(STORE) == _seed_invite(own.application_id)
    assert api_for(app, STORE).get("/custom-bot/invite-url").json == {"url": _seed_invite(own.application_id)}


def test_without_a_shared_bot_a_store_with_no_bot_has_no_invite_url(fresh_app: Any) -> None:
    app, _, _ = fresh_app()
    body = assert_error(api_for(app, STORE).get("/custom-bot/invite-url"), 404)
    assert (body["message"], body["resource"]) == ("Resource not found", "custom_bot")
    assert "save the store's bot" in body["detail"]
    with app.app_context(), pytest.raises(bots.BotNotConfigured):
        bots.invite_url(STORE)
