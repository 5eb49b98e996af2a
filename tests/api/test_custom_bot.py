"""``/custom-bot``: every operation of the custom-bot document, its shapes and its errors."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.state import FakeBot
from tests.api import API_CONFIG, Api, api_for, assert_error
from tests.shop import Shop

STATS_KEYS = {
    "total_interactions",
    "total_roles_assigned",
    "total_roles_removed",
    "total_errors",
    "success_rate",
}


def credentials(bot: FakeBot) -> dict[str, str]:
    return {"application_id": bot.application_id, "public_key": bot.public_key, "bot_token": bot.token}


def saved_bot(app: Flask) -> Any:
    state = get_state(app)
    state.db.session.expire_all()
    model = state.models.StoreBot
    return state.db.session.scalar(sa.select(model).where(model.store_id == "store-1"))


def test_a_store_without_a_bot_is_told_where_discord_must_send_interactions(api: Api) -> None:
    response = api.get("/custom-bot")
    assert response.status_code == 200
    assert response.json == {
        "configured": False,
        "bot": None,
        "interactions_url": "http://localhost/webhook/discord/interactions/store-1",
    }


def test_the_interactions_url_uses_the_public_base_url_and_the_store_slug(fresh_app: Any) -> None:
    app, _, discord_roles = fresh_app(DISCORD_ROLES_PUBLIC_BASE_URL="https://shop.example.com/", **API_CONFIG)
    discord_roles.store_slug_loader(lambda store_id: f"slug-of-{store_id}")
    response = api_for(app).get("/custom-bot", base_url="http://10.0.0.7:8000")
    assert response.json["interactions_url"] == (
        "https://shop.example.com/webhook/discord/interactions/slug-of-store-1"
    ), "behind a proxy the configured public address wins over the address the request came to"


def test_saving_checks_the_token_with_discord_encrypts_it_and_registers_the_commands(
    app: Flask, api: Api, fake_discord: FakeDiscord
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    response = api.post("/custom-bot", json=credentials(bot))
    assert response.status_code == 200, response.json
    assert response.json == {
        "message": "Custom bot configured and commands registered successfully!",
        "bot": {"application_id": bot.application_id, "is_enabled": True, "slash_commands_registered": True},
        "interactions_url": "http://localhost/webhook/discord/interactions/store-1",
    }
    assert {c["name"] for c in fake_discord.commands(bot.application_id)} >= {"claim", "check", "help"}
    row = saved_bot(app)
    assert bot.token not in row.token_ciphertext, "the token is stored encrypted"

    listed = api.get("/custom-bot").json
    assert listed["configured"] is True
    assert set(listed["bot"]) == {
        "application_id",
        "is_enabled",
        "slash_commands_registered",
        "last_interaction_at",
        "stats",
    }
    assert set(listed["bot"]["stats"]) == STATS_KEYS
    assert bot.token not in str(listed)


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"application_id": "not-a-number"}, ("application_id",)),
        ({"public_key": "abc123"}, ("public_key",)),
        ({"bot_token": ""}, ("bot_token",)),
        (
            {"application_id": 12345, "public_key": None, "bot_token": 7},
            ("application_id", "public_key", "bot_token"),
        ),
    ],
)
def test_saving_malformed_credentials_names_each_wrong_field_and_saves_nothing(
    app: Flask, api: Api, fake_discord: FakeDiscord, change: dict[str, Any], fields: tuple[str, ...]
) -> None:
    body = {**credentials(fake_discord.create_bot()), **change}
    assert_error(api.post("/custom-bot", json=body), 422, fields=fields)
    assert saved_bot(app) is None
    assert fake_discord.calls == [], "malformed input never reaches Discord"


def test_a_token_discord_refuses_is_a_422_on_bot_token_not_a_500(
    app: Flask, api: Api, fake_discord: FakeDiscord
) -> None:
    bot = fake_discord.create_bot()
    body = {**credentials(bot), "bot_token": "MTIz.not.a-real-token"}
    assert_error(api.post("/custom-bot", json=body), 422, fields=("bot_token",))
    assert saved_bot(app) is None


def test_a_token_of_another_application_is_a_422_on_application_id(
    app: Flask, api: Api, fake_discord: FakeDiscord
) -> None:
    bot, other = fake_discord.create_bot("Ours"), fake_discord.create_bot("Theirs")
    body = {**credentials(bot), "application_id": other.application_id}
    error = assert_error(api.post("/custom-bot", json=body), 422, fields=("application_id",))
    assert "another application" in error["errors"]["application_id"][0]
    assert saved_bot(app) is None


def test_discord_down_while_saving_is_a_503_to_retry_and_saves_nothing(
    app: Flask, api: Api, fake_discord: FakeDiscord
) -> None:
    bot = fake_discord.create_bot()
    fake_discord.set_faults(error_rate=1.0)
    response = api.post("/custom-bot", json=credentials(bot))
    body = assert_error(response, 503)
    assert body["retry_after"] >= 1
    assert response.headers["Retry-After"] == str(body["retry_after"])
    assert saved_bot(app) is None


def test_a_body_that_is_not_a_json_object_is_refused(api: Api) -> None:
    assert_error(
        api.post("/custom-bot", data="[1, 2]", content_type="application/json"), 422, fields=("body",)
    )
    assert_error(
        api.post("/custom-bot", data="{oops", content_type="application/json"), 422, fields=("body",)
    )


def test_testing_the_connection_names_the_bot_or_says_why_not(api: Api, shop: Shop) -> None:
    response = api.post("/custom-bot/test")
    assert response.status_code == 200
    assert response.json == {
        "connected": True,
        "bot_name": "Shop Bot",
        "bot_id": shop.bot.user_id,
        "bot_avatar": response.json["bot_avatar"],
    }
    assert response.json["bot_avatar"].startswith(f"{shop.fake.cdn_url}/embed/avatars/"), (
        "the CDN is FakeDiscord"
    )

    shop.fake.revoke_bot_token(shop.bot)
    failed = api.post("/custom-bot/test").json
    assert failed == {
        "connected": False,
        "error": "Invalid bot token",
        "detail": "Discord refused the bot token. Reset it on the Bot page and save it again.",
    }


def test_toggling_switches_deliveries_off_and_back_on(api: Api, shop: Shop) -> None:
    shop.map("vip", "VIP")
    buyer = shop.member("buyer")
    assert api.post("/custom-bot/toggle", json={"enabled": False}).json == {
        "message": "Bot disabled",
        "is_enabled": False,
    }
    shop.buy("order-1", "vip", buyer=buyer)
    assert shop.statuses() == [("add", "pending", "bot_disabled")], "a disabled bot delivers nothing"

    assert api.post("/custom-bot/toggle", json={"enabled": True}).json == {
        "message": "Bot enabled",
        "is_enabled": True,
    }
    assert shop.statuses() == [("add", "completed", None)], "enabling delivers what waited"
    assert shop.roles_of(buyer) == {"VIP"}


@pytest.mark.parametrize("body", [{}, {"enabled": "yes"}, {"enabled": 1}])
def test_toggling_needs_a_boolean(api: Api, shop: Shop, body: dict[str, Any]) -> None:
    assert_error(api.post("/custom-bot/toggle", json=body), 422, fields=("enabled",))


def test_registering_commands_again(api: Api, shop: Shop) -> None:
    response = api.post("/custom-bot/register-commands")
    assert response.status_code == 200
    assert response.json == {
        "message": "Commands registered successfully! They may take up to an hour to appear globally.",
        "slash_commands_registered": True,
    }
    assert {c["name"] for c in shop.fake.commands(shop.bot.application_id)} >= {"claim", "check", "help"}


def test_the_invite_url_asks_for_manage_roles_and_the_command_scope(api: Api, shop: Shop) -> None:
    assert api.get("/custom-bot/invite-url").json == {
        "url": "https://discord.com/api/oauth2/authorize?client_id="
        f"{shop.bot.application_id}&permissions=268435456&scope=bot%20applications.commands"
    }


def test_a_store_that_adds_customers_to_its_server_invites_the_bot_with_create_invite(
    api: Api, shop: Shop
) -> None:
    shop.settings(join_guilds_on_link=True)
    url = api.get("/custom-bot/invite-url").json["url"]
    assert "permissions=268435457&" in url, "Manage Roles and Create Invite (guilds.join needs it)"


def test_stats_have_the_documented_keys(api: Api, shop: Shop) -> None:
    shop.map("vip", "VIP")
    shop.buy("order-1", "vip", buyer=shop.member("buyer"))
    stats = api.get("/custom-bot/stats").json["stats"]
    assert set(stats) == STATS_KEYS | {"last_interaction_at", "is_active"}
    assert stats["total_roles_assigned"] == 1
    assert stats["success_rate"] == 100.0
    assert stats["is_active"] is True


def test_removing_the_bot_deletes_its_credentials_and_parks_deliveries(
    app: Flask, api: Api, shop: Shop
) -> None:
    shop.map("vip", "VIP")
    assert api.delete("/custom-bot").json == {"message": "Custom bot removed"}
    assert saved_bot(app) is None
    shop.buy("order-1", "vip", buyer=shop.member("buyer"))
    assert shop.statuses() == [("add", "pending", "no_bot")], "nothing is delivered through a removed bot"
    assert shop.fake.calls_to("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}") == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/custom-bot"),
        ("POST", "/custom-bot/test"),
        ("POST", "/custom-bot/register-commands"),
        ("GET", "/custom-bot/invite-url"),
    ],
)
def test_operations_on_a_bot_that_was_never_saved_are_404(api: Api, method: str, path: str) -> None:
    assert_error(api.call(method, path), 404)


def test_toggling_a_bot_that_was_never_saved_is_404(api: Api) -> None:
    assert_error(api.post("/custom-bot/toggle", json={"enabled": True}), 404)


def test_a_client_secret_saved_with_the_bot_is_encrypted_and_never_shown(
    app: Flask, api: Api, fake_discord: FakeDiscord
) -> None:
    bot = fake_discord.create_bot()
    saved = api.post("/custom-bot", json={**credentials(bot), "client_secret": bot.client_secret})
    assert saved.status_code == 200, saved.json
    row = saved_bot(app)
    assert row.client_secret_ciphertext is not None
    assert bot.client_secret not in row.client_secret_ciphertext
    assert get_state(app).cipher.decrypt(row.client_secret_ciphertext) == bot.client_secret
    for response in (saved, api.get("/custom-bot")):
        assert bot.client_secret not in response.get_data(as_text=True)
    assert_error(
        api.post("/custom-bot", json={**credentials(bot), "client_secret": "has spaces"}),
        422,
        fields=("client_secret",),
    )
