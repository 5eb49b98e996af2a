"""``/diagnostics``: a healthy store passes every check; each thing an owner can break is named with a fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._core.bots import register_platform_commands
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.discord.permissions import SEND_MESSAGES
from flask_discord_roles.testing import FakeDiscord
from tests.api import Api, api_for, shared_bot_store
from tests.shop import Shop, open_shop

CHECK_KEYS = {"check", "ok", "reason_code", "fix", "guild_id", "role_id"}
INTERACTIONS_URL = "http://localhost/webhook/discord/interactions/store-1"


@pytest.fixture
def shop(shop: Shop, fake_discord: FakeDiscord) -> Shop:
    """The folder's shop made healthy: bot saved with its commands, guild linked, two roles mapped,
    notifications on, and a /claim answered a moment ago."""
    shop.link()
    shop.map("vip", "VIP")
    shop.map("gold", "Gold")
    channel_id = fake_discord.create_channel(shop.guild_id, "purchases").id
    shop.settings(notifications_enabled=True, notification_channel_id=channel_id)
    set_bot(shop, last_interaction_at=datetime.now(UTC) - timedelta(hours=1))
    return shop


def set_bot(shop: Shop, **values: Any) -> None:
    state = get_state(shop.app)
    model = state.models.StoreBot
    bot = shop.db.session.scalar(sa.select(model).where(model.store_id == shop.store_id))
    for key, value in values.items():
        setattr(bot, key, value)
    shop.db.session.commit()


def diagnose(api: Api) -> dict[str, Any]:
    """The diagnosis, after checking its shape: diagnostics always answer 200."""
    response = api.get("/diagnostics")
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == {"ok", "checked_at", "checks"}
    assert isinstance(body["ok"], bool)
    assert isinstance(body["checked_at"], str)
    assert body["checked_at"].endswith("Z")
    assert datetime.fromisoformat(body["checked_at"].replace("Z", "+00:00"))
    for check in body["checks"]:
        assert set(check) == CHECK_KEYS, check
        assert isinstance(check["check"], str)
        assert isinstance(check["ok"], bool)
        if check["ok"]:
            assert (check["reason_code"], check["fix"]) == (None, None), check
        else:
            assert isinstance(check["reason_code"], str), check
            assert check["reason_code"], check
            assert isinstance(check["fix"], str), check
            assert len(check["fix"]) > 20, "a fix in words"
    assert body["ok"] is all(check["ok"] for check in body["checks"])
    return body


def failing(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(c["check"], c["reason_code"]) for c in body["checks"] if not c["ok"]]


def named(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [check for check in body["checks"] if check["check"] == name]


def test_a_healthy_store_passes_every_check(shop: Shop, api: Api) -> None:
    body = diagnose(api)
    assert failing(body) == []
    assert body["ok"] is True
    assert [c["check"] for c in body["checks"]] == [
        "bot_configured",
        "token_valid",
        "commands_registered",
        "interactions_received",
        "guild_linked",
        "bot_in_guild",
        "manage_roles",
        "role_assignable",
        "role_assignable",
        "notification_channel",
    ]
    assert {c["role_id"] for c in named(body, "role_assignable")} == {shop.roles["VIP"], shop.roles["Gold"]}
    assert {c["guild_id"] for c in named(body, "bot_in_guild")} == {shop.guild_id}


def test_a_role_moved_above_the_bot_is_named_with_the_fix(shop: Shop, api: Api) -> None:
    top = max(role.position for role in shop.fake.guild(shop.guild_id).roles.values())
    shop.fake.move_role(shop.guild_id, shop.roles["VIP"], top + 1)
    body = diagnose(api)
    assert failing(body) == [("role_assignable", "role_above_bot")]
    (check,) = [c for c in named(body, "role_assignable") if not c["ok"]]
    assert (check["guild_id"], check["role_id"]) == (shop.guild_id, shop.roles["VIP"])
    assert "«VIP»" in check["fix"]
    assert "above" in check["fix"]


def test_a_managed_role_mapped_is_named(shop: Shop, api: Api) -> None:
    shop.role("Server Booster", managed=True)
    shop.map("boost", "Server Booster")
    body = diagnose(api)
    assert failing(body) == [("role_assignable", "managed_role")]
    assert body["ok"] is False


def test_a_deleted_role_is_named(shop: Shop, api: Api) -> None:
    with shop.fake.world.lock:
        del shop.fake.guild(shop.guild_id).roles[shop.roles["Gold"]]
    body = diagnose(api)
    assert failing(body) == [("role_assignable", "role_deleted")]
    assert "«Gold»" in next(c["fix"] for c in body["checks"] if not c["ok"])


def test_a_bot_without_manage_roles_is_told_to_get_it(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, api: Api
) -> None:
    shop = open_shop(app, db, fake_discord, bot_permissions=0)
    shop.link()
    shop.map("vip", "VIP")
    set_bot(shop, last_interaction_at=datetime.now(UTC))
    body = diagnose(api)
    assert failing(body) == [
        ("manage_roles", "missing_manage_roles"),
        ("role_assignable", "missing_manage_roles"),
    ]
    assert "Manage Roles" in named(body, "manage_roles")[0]["fix"]


def test_a_store_adding_customers_to_its_server_needs_the_bots_create_invite(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, api: Api
) -> None:
    from flask_discord_roles.discord.permissions import CREATE_INSTANT_INVITE, MANAGE_ROLES

    shop = open_shop(app, db, fake_discord, bot_permissions=MANAGE_ROLES)
    shop.link()
    set_bot(shop, last_interaction_at=datetime.now(UTC))
    assert named(diagnose(api), "create_invite") == [], "only checked when customers are added on link"
    shop.settings(join_guilds_on_link=True)
    assert failing(diagnose(api)) == [], "@everyone may create invites, as in a new server"
    with shop.fake.world.lock:
        everyone = shop.fake.guild(shop.guild_id).roles[shop.guild_id]
        everyone.permissions &= ~CREATE_INSTANT_INVITE
    body = diagnose(api)
    assert failing(body) == [("create_invite", "missing_create_invite")]
    assert "Create Invite" in named(body, "create_invite")[0]["fix"]


def test_a_bot_kicked_from_the_server_is_told_to_be_invited_again(shop: Shop, api: Api) -> None:
    shop.fake.remove_member(shop.guild_id, shop.bot.user_id)
    body = diagnose(api)
    assert ("bot_in_guild", "bot_not_in_guild") in failing(body)
    (check,) = named(body, "bot_in_guild")
    assert check["guild_id"] == shop.guild_id
    assert f"guild_id={shop.guild_id}" in check["fix"], "the fix carries the invite link for that server"
    assert named(body, "role_assignable") == [], "role checks are left out: the kick explains them"


def test_a_second_linked_server_the_bot_never_joined_is_named(shop: Shop, api: Api) -> None:
    other = shop.fake.create_guild("Second Server")
    shop.link(other.id)
    body = diagnose(api)
    assert failing(body) == [("bot_in_guild", "bot_not_in_guild")]
    assert [c["guild_id"] for c in named(body, "bot_in_guild") if not c["ok"]] == [other.id]


def test_a_revoked_token_is_named_and_nothing_else_is_asked_of_discord(shop: Shop, api: Api) -> None:
    shop.fake.revoke_bot_token(shop.bot)
    body = diagnose(api)
    assert failing(body) == [("token_valid", "token_revoked")]
    assert "Reset the token" in named(body, "token_valid")[0]["fix"]
    checks = {c["check"] for c in body["checks"]}
    assert checks == {"bot_configured", "token_valid", "interactions_received", "guild_linked"}
    assert len(shop.fake.calls_to("GET", "/users/@me")) == 1
    assert shop.fake.invalid_requests == 1, "one 401, not one per check"


def test_missing_commands_are_named_with_how_to_register_them(shop: Shop, api: Api) -> None:
    with shop.fake.world.lock:
        key = (shop.bot.application_id, None)
        shop.fake.world.commands[key] = [c for c in shop.fake.world.commands[key] if c["name"] != "claim"]
    body = diagnose(api)
    assert failing(body) == [("commands_registered", "commands_missing")]
    fix = named(body, "commands_registered")[0]["fix"]
    assert "/claim" in fix
    assert "register-commands" in fix


def test_a_notification_channel_the_bot_cannot_post_in_is_named(shop: Shop, api: Api) -> None:
    denied = shop.fake.create_channel(
        shop.guild_id,
        "locked",
        overwrites=[{"type": 0, "id": shop.guild_id, "allow": 0, "deny": SEND_MESSAGES}],
    ).id
    shop.settings(notification_channel_id=denied)
    body = diagnose(api)
    assert failing(body) == [("notification_channel", "missing_channel_permissions")]
    check = named(body, "notification_channel")[0]
    assert check["guild_id"] == shop.guild_id
    assert "Send Messages" in check["fix"]
    assert "#locked" in check["fix"]


def test_notifications_on_without_a_channel_are_named(shop: Shop, api: Api) -> None:
    shop.settings(notification_channel_id=None)
    assert failing(diagnose(api)) == [("notification_channel", "no_notification_channel")]


def test_notifications_off_skip_the_channel_check(shop: Shop, api: Api) -> None:
    shop.settings(notifications_enabled=False)
    assert named(diagnose(api), "notification_channel") == []


def test_no_interaction_ever_says_where_to_paste_the_interactions_url(shop: Shop, api: Api) -> None:
    set_bot(shop, last_interaction_at=None)
    body = diagnose(api)
    assert failing(body) == [("interactions_received", "no_interactions")]
    fix = named(body, "interactions_received")[0]["fix"]
    assert INTERACTIONS_URL in fix
    assert "Interactions Endpoint URL" in fix


def test_no_recent_interaction_is_named(shop: Shop, api: Api) -> None:
    set_bot(shop, last_interaction_at=datetime.now(UTC) - timedelta(days=30))
    assert failing(diagnose(api)) == [("interactions_received", "no_recent_interactions")]


def test_a_switched_off_bot_is_named(shop: Shop, api: Api) -> None:
    set_bot(shop, is_enabled=False)
    body = diagnose(api)
    assert failing(body) == [("bot_configured", "bot_disabled")]
    assert "switch it on" in named(body, "bot_configured")[0]["fix"], "the fix says what to do"


def test_a_store_with_nothing_set_up_is_told_where_to_start(api: Api) -> None:
    body = diagnose(api)
    assert failing(body) == [("bot_configured", "no_bot"), ("guild_linked", "no_guild_linked")]


def test_discord_down_is_a_check_that_failed_not_a_5xx(shop: Shop, api: Api) -> None:
    shop.fake.set_faults(error_rate=1.0)
    body = diagnose(api)
    assert body["ok"] is False
    assert ("token_valid", "discord_unavailable") in failing(body)
    asked = {(call.method, call.path) for call in shop.fake.calls}
    assert asked == {("GET", "/api/v10/users/@me")}, "after Discord failed once, no other check asks it"

    shop.fake.set_faults(error_rate=1.0, routes=["default"])  # only the guild's channels
    body = diagnose(api)
    assert failing(body) == [("notification_channel", "discord_unavailable")]


# -- a store on the platform's shared bot --------------------------------------------------------------


def test_a_store_on_the_shared_bot_gets_checks_that_make_sense_for_it(
    make_app: Any, database_url: str, fake_discord: FakeDiscord
) -> None:
    with shared_bot_store(make_app, database_url, fake_discord) as store:
        app, db, platform = store.app, store.db, store.platform
        vip = fake_discord.create_role(store.guild_id, "VIP").id
        with app.app_context():
            assert register_platform_commands(get_state(app)) is None
            db.session.add(
                get_state(app).models.RoleMapping(
                    store_id="store-1", package_id="vip", guild_id=store.guild_id, role_id=vip
                )
            )
            db.session.commit()
        api = api_for(app)

        with app.app_context():
            body = diagnose(api)
        assert [c["check"] for c in body["checks"]] == [
            "bot_configured",
            "platform_bot_reachable",
            "commands_registered",
            "interactions_received",
            "guild_linked",
            "bot_in_guild",
            "manage_roles",
            "role_assignable",
        ], "no token check of the store's own: it has none"
        assert failing(body) == [("interactions_received", "no_interactions")]
        fix = named(body, "interactions_received")[0]["fix"]
        assert "/help" in fix
        assert INTERACTIONS_URL not in fix, "the shared bot's endpoint is not theirs to set"

        fake_discord.revoke_bot_token(platform)
        with app.app_context():
            body = diagnose(api)
        assert ("platform_bot_reachable", "token_revoked") in failing(body)
        assert "support" in named(body, "platform_bot_reachable")[0]["fix"]
