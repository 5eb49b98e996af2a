"""``/guilds`` and ``/mappings``: link codes, linked servers, unlinking, a server's roles, role mappings."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import guild_unlinked
from flask_discord_roles._core.bots import set_bot_enabled
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from tests.api import Api, api_for, assert_error, shared_bot_store
from tests.shop import Shop, open_shop

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
GUILD_KEYS = {"guild_id", "name", "icon_url", "member_count", "linked_at", "bot_in_guild"}
ROLE_KEYS = {"id", "name", "position", "color", "managed", "assignable", "reason_code", "fix"}
SEED_MAPPING_KEYS = {"id", "package_id", "guild_id", "role_id", "role_name", "created_at"}
MAPPING_KEYS = SEED_MAPPING_KEYS | {"group", "rank", "keep_on_end"}  # ours: tier groups, sticky roles


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop, its server linked."""
    shop.link()
    return shop


def rows(app: Flask, model_name: str, **where: Any) -> list[Any]:
    state = get_state(app)
    model = getattr(state.models, model_name)
    state.db.session.expire_all()
    query = sa.select(model).order_by(model.id)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return list(state.db.session.scalars(query))


def guild_calls(fake: FakeDiscord, guild_id: str) -> int:
    return len(fake.calls_to("GET", f"/guilds/{guild_id}"))


def age_cache(app: Flask, guild_id: str) -> None:
    """Make the link's cached details older than DISCORD_ROLES_GUILD_CACHE_SECONDS."""
    (link,) = rows(app, "LinkedGuild", guild_id=guild_id)
    link.details_refreshed_at = utcnow() - timedelta(hours=1)
    get_state(app).db.session.commit()


def other_guild(fake: FakeDiscord, shop: Shop, *, with_bot: bool) -> str:
    guild = fake.create_guild("Other Guild")
    if with_bot:
        fake.add_bot_to_guild(shop.bot, guild.id)
    return guild.id


# -- link codes -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_a_link_code_is_shown_once_with_the_command_to_type(app: Flask, api: Api) -> None:
    response = api.post("/guilds/link-code")
    assert response.status_code == 201
    body = response.json
    assert set(body) == {"code", "expires_at", "command", "message"}
    assert re.fullmatch(r"[A-Z2-9]{5}-[A-Z2-9]{5}", body["code"])
    assert body["command"] == f"/link code:{body['code']}"
    assert ISO_UTC.match(body["expires_at"])
    assert isinstance(body["message"], str)
    assert body["message"]
    (stored,) = rows(app, "LinkCode", store_id="store-1", used_at=None)
    assert body["code"].replace("-", "") not in stored.code_hash, "only the code's hash is kept"
    assert api.post("/guilds/link-code").json["code"] != body["code"], "every code is new"


# -- listing ----------------------------------------------------------------------------------------


def test_linked_servers_are_listed_with_name_and_member_count_from_discord(shop: Shop, api: Api) -> None:
    shop.member("alice")
    response = api.get("/guilds")
    assert response.status_code == 200
    (guild,) = response.json["guilds"]
    assert set(guild) == GUILD_KEYS
    assert guild["guild_id"] == shop.guild_id
    assert guild["name"] == "Shop Guild"
    assert guild["member_count"] == 3, "the owner, the bot and alice"
    assert guild["icon_url"] is None, "the server has no icon"
    assert guild["bot_in_guild"] is True
    assert ISO_UTC.match(guild["linked_at"])


def test_a_store_with_no_linked_server_lists_none(app: Flask, shop: Shop) -> None:
    assert api_for(app, "store-2").get("/guilds").json == {"guilds": []}


def test_discords_answer_is_cached_for_the_configured_time(app: Flask, shop: Shop, api: Api) -> None:
    api.get("/guilds")
    api.get("/guilds")
    assert guild_calls(shop.fake, shop.guild_id) == 1, "the second listing reads the cache"

    age_cache(app, shop.guild_id)
    shop.member("bob")
    (guild,) = api.get("/guilds").json["guilds"]
    assert guild_calls(shop.fake, shop.guild_id) == 2, "a stale cache is refreshed"
    assert guild["member_count"] == 3


def test_when_discord_is_down_the_listing_answers_from_the_cache(app: Flask, shop: Shop, api: Api) -> None:
    api.get("/guilds")
    age_cache(app, shop.guild_id)
    never_read = shop.link(other_guild(shop.fake, shop, with_bot=True))
    shop.fake.set_faults(error_rate=1.0)

    response = api.get("/guilds")
    assert response.status_code == 200, "listing never fails for Discord's sake"
    cached, unread = response.json["guilds"]
    assert (cached["name"], cached["member_count"], cached["bot_in_guild"]) == ("Shop Guild", 2, None)
    assert unread["guild_id"] == never_read
    assert (unread["name"], unread["member_count"], unread["bot_in_guild"]) == (None, None, None)
    assert guild_calls(shop.fake, never_read) == 0, "after one failure the others are not asked"


def test_a_server_the_bot_is_not_in_is_listed_as_such(shop: Shop, api: Api) -> None:
    shop.link(other_guild(shop.fake, shop, with_bot=False))
    present, absent = api.get("/guilds").json["guilds"]
    assert present["bot_in_guild"] is True
    assert (absent["bot_in_guild"], absent["name"]) == (False, None)


def test_a_store_without_a_bot_still_lists_its_servers(app: Flask, shop: Shop, db: SQLAlchemy) -> None:
    db.session.add(get_state(app).models.LinkedGuild(store_id="store-2", guild_id=shop.guild_id))
    db.session.commit()
    response = api_for(app, "store-2").get("/guilds")
    assert response.status_code == 200
    (guild,) = response.json["guilds"]
    assert (guild["guild_id"], guild["name"], guild["bot_in_guild"]) == (shop.guild_id, None, False)


# -- unlinking --------------------------------------------------------------------------------------


def test_unlinking_deletes_mappings_stops_deliveries_and_leaves_roles_in_place(
    app: Flask, shop: Shop, api: Api
) -> None:
    shop.map("vip", "VIP")
    shop.map("gold", "Gold")
    elsewhere = shop.link(other_guild(shop.fake, shop, with_bot=True))
    shop.map("vip", "Elsewhere", guild_id=elsewhere)
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice, customer="alice")
    assert shop.roles_of(alice) == {"VIP"}
    shop.buy("order-2", "vip", "gold", buyer=None, customer="guest")  # waits for the customer to link
    sent: list[dict[str, Any]] = []

    def receive(sender: Flask, **payload: Any) -> None:
        sent.append(payload)

    with guild_unlinked.connected_to(receive, app):
        response = api.delete(f"/guilds/{shop.guild_id}")

    assert response.status_code == 200
    body = response.json
    assert set(body) == {
        "message",
        "guild_id",
        "mappings_deleted",
        "deliveries_stopped",
        "roles_left_in_place",
    }
    assert body["guild_id"] == shop.guild_id
    assert (body["mappings_deleted"], body["deliveries_stopped"], body["roles_left_in_place"]) == (2, 2, True)
    assert "not removed" in body["message"], "the owner is told roles stay"
    assert "by hand in Discord" in body["message"]
    assert shop.roles_of(alice) == {"VIP"}, "roles already given stay"
    assert rows(app, "LinkedGuild", guild_id=shop.guild_id) == []
    assert [m.guild_id for m in rows(app, "RoleMapping")] == [elsewhere], "the other server's mapping stays"
    stopped = [d for d in shop.deliveries() if d.guild_id == shop.guild_id and d.status == "failed"]
    assert {(d.reason_code, d.role_name) for d in stopped} == {
        ("guild_unlinked", "VIP"),
        ("guild_unlinked", "Gold"),
    }
    assert all(d.reason for d in stopped), "the reason is in words"
    untouched = [(d.order_id, d.status) for d in shop.deliveries() if d.guild_id == elsewhere]
    assert ("order-2", "pending") in untouched, "the other server's deliveries carry on"
    assert not [d for d in shop.deliveries() if d.guild_id == elsewhere and d.reason_code == "guild_unlinked"]
    assert [s for s in shop.deliveries() if s.order_id == "order-1" and s.status == "completed"]
    assert sent == [
        {"store_id": "store-1", "guild_id": shop.guild_id, "mappings_deleted": 2, "deliveries_stopped": 2}
    ]
    assert_error(api.delete(f"/guilds/{shop.guild_id}"), 404)


def test_a_delivery_stopped_by_unlinking_stays_stopped_after_relinking_and_retries(
    app: Flask, shop: Shop, api: Api
) -> None:
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    set_bot_enabled(get_state(app), shop.store_id, False)
    shop.db.session.commit()
    shop.buy("order-1", "vip", buyer=alice, customer="alice")  # parked: the bot is off
    assert api.delete(f"/guilds/{shop.guild_id}").json["deliveries_stopped"] == 1
    set_bot_enabled(get_state(app), shop.store_id, True)
    shop.db.session.commit()
    (stopped,) = shop.deliveries()
    refused = assert_error(api.post(f"/deliveries/{stopped.id}/retry"), 422, fields=("status",))
    assert "relinking does not bring them back" in refused["errors"]["status"][0]
    answer = api.post("/deliveries/retry", json={}).json
    assert (answer["retried"], answer["refused"]) == (0, {"guild_unlinked": 1}), answer
    assert shop.roles_of(alice) == set()

    shop.link()
    shop.map("vip", "VIP")
    assert_error(api.post(f"/deliveries/{stopped.id}/retry"), 422, fields=("status",))
    answer = api.post("/deliveries/retry", json={}).json
    assert (answer["retried"], answer["refused"]) == (0, {"guild_unlinked": 1}), (
        "relinking does not revive a row from before the unlink"
    )
    assert "1 guild_unlinked" in answer["message"]
    assert shop.roles_of(alice) == set()

    shop.buy("order-2", "vip", buyer=alice, customer="alice")
    assert shop.roles_of(alice) == {"VIP"}, "a purchase after the relink is delivered"


def test_unlinking_the_server_of_the_notification_channel_switches_notifications_off(
    app: Flask, shop: Shop, api: Api
) -> None:
    channel = shop.fake.create_channel(shop.guild_id, "purchases")
    shop.settings(notifications_enabled=True, notification_channel_id=channel.id)
    state = get_state(app)
    shop.db.session.add(
        state.models.PurchaseNotification(
            store_id=shop.store_id, order_id="order-1", package_ids=["vip"], channel_id=channel.id
        )
    )
    shop.db.session.commit()

    body = api.delete(f"/guilds/{shop.guild_id}").json
    assert "notifications were switched off" in body["message"]
    (settings,) = rows(app, "StoreSettings", store_id=shop.store_id)
    assert (settings.notifications_enabled, settings.notification_channel_id) == (False, None)
    (notification,) = rows(app, "PurchaseNotification")
    assert (notification.status, notification.reason_code) == ("failed", "guild_unlinked")


def test_notifications_to_another_servers_channel_carry_on(app: Flask, shop: Shop, api: Api) -> None:
    elsewhere = shop.link(other_guild(shop.fake, shop, with_bot=True))
    channel = shop.fake.create_channel(elsewhere, "purchases")
    shop.settings(notifications_enabled=True, notification_channel_id=channel.id)

    body = api.delete(f"/guilds/{shop.guild_id}").json
    assert "otification" not in body["message"]
    (settings,) = rows(app, "StoreSettings", store_id=shop.store_id)
    assert (settings.notifications_enabled, settings.notification_channel_id) == (True, channel.id)


def test_when_discord_cannot_place_the_channel_notifications_stop_all_the_same_and_it_says_why(
    app: Flask, shop: Shop, api: Api
) -> None:
    elsewhere = shop.link(other_guild(shop.fake, shop, with_bot=True))
    channel = shop.fake.create_channel(shop.guild_id, "purchases")
    shop.settings(notifications_enabled=True, notification_channel_id=channel.id)
    shop.fake.set_faults(error_rate=1.0)

    response = api.delete(f"/guilds/{shop.guild_id}")
    assert response.status_code == 200, "unlinking does not depend on Discord"
    assert "switched off because Discord did not say" in response.json["message"]
    (settings,) = rows(app, "StoreSettings", store_id=shop.store_id)
    assert (settings.notifications_enabled, settings.notification_channel_id) == (False, None), (
        "an unlinked server must not get another message, even when Discord cannot say where it is"
    )
    assert [link.guild_id for link in rows(app, "LinkedGuild", store_id=shop.store_id)] == [elsewhere]


def test_unlinking_the_only_server_stops_notifications_without_asking_discord(
    app: Flask, shop: Shop, api: Api
) -> None:
    channel = shop.fake.create_channel(shop.guild_id, "purchases")
    shop.settings(notifications_enabled=True, notification_channel_id=channel.id)
    shop.fake.set_faults(error_rate=1.0)

    body = api.delete(f"/guilds/{shop.guild_id}").json
    assert "their channel is in that server" in body["message"]
    (settings,) = rows(app, "StoreSettings", store_id=shop.store_id)
    assert (settings.notifications_enabled, settings.notification_channel_id) == (False, None)


def test_unlinking_a_server_not_linked_to_this_store_is_a_404(app: Flask, shop: Shop, api: Api) -> None:
    shop.map("vip", "VIP")
    assert_error(api.delete("/guilds/123456789012345678"), 404)
    assert_error(api.delete("/guilds/not-a-snowflake"), 404)
    assert_error(api_for(app, "store-2").delete(f"/guilds/{shop.guild_id}"), 404)
    assert len(rows(app, "LinkedGuild")) == 1, "another store's link is untouched"
    assert len(rows(app, "RoleMapping")) == 1


# -- a server's roles -------------------------------------------------------------------------------


def test_a_servers_roles_are_listed_highest_first_with_whether_the_bot_can_assign_each(
    shop: Shop, api: Api
) -> None:
    shop.role("VIP", color=0xFF0000)
    shop.fake.create_role(shop.guild_id, "Booster", managed=True)
    shop.fake.create_role(shop.guild_id, "Owner", position=99)  # above the bot's role

    response = api.get(f"/guilds/{shop.guild_id}/roles")
    assert response.status_code == 200
    body = response.json
    assert body["guild_id"] == shop.guild_id
    assert all(set(role) == ROLE_KEYS for role in body["roles"])
    positions = [role["position"] for role in body["roles"]]
    assert positions == sorted(positions, reverse=True), "highest first"
    by_name = {role["name"]: role for role in body["roles"]}
    assert (by_name["VIP"]["assignable"], by_name["VIP"]["reason_code"], by_name["VIP"]["fix"]) == (
        True,
        None,
        None,
    )
    assert by_name["VIP"]["color"] == 0xFF0000
    assert by_name["Owner"]["reason_code"] == "role_above_bot"
    assert by_name["Booster"]["reason_code"] == "managed_role"
    assert by_name["Shop Bot"]["managed"] is True
    assert by_name["@everyone"]["reason_code"] == "everyone_role"
    assert all(role["fix"] for role in body["roles"] if not role["assignable"]), (
        "every refusal says what to do"
    )
    assert body["roles"][-1]["name"] == "@everyone"


def test_without_manage_roles_no_role_is_assignable(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    shop = open_shop(app, db, fake_discord, bot_permissions=0)
    shop.link()
    shop.role("VIP")
    roles = api_for(app).get(f"/guilds/{shop.guild_id}/roles").json["roles"]
    assert {role["name"]: role["reason_code"] for role in roles}["VIP"] == "missing_manage_roles"


def test_roles_of_a_server_the_bot_is_not_in_is_a_409_with_the_invite(shop: Shop, api: Api) -> None:
    absent = shop.link(other_guild(shop.fake, shop, with_bot=False))
    body = assert_error(api.get(f"/guilds/{absent}/roles"), 409)
    assert body["message"] == "Conflicts with the current state"
    assert "discord.com/api/oauth2/authorize" in body["detail"], "the fix: invite the bot"
    assert absent in body["detail"]


def test_roles_for_a_store_without_a_bot_is_a_409(app: Flask, shop: Shop, db: SQLAlchemy) -> None:
    db.session.add(get_state(app).models.LinkedGuild(store_id="store-2", guild_id=shop.guild_id))
    db.session.commit()
    body = assert_error(api_for(app, "store-2").get(f"/guilds/{shop.guild_id}/roles"), 409)
    assert "Save the store's bot" in body["detail"], "the detail says what to do"


def test_roles_of_a_server_not_linked_to_this_store_is_a_404(app: Flask, shop: Shop, api: Api) -> None:
    assert_error(api.get(f"/guilds/{other_guild(shop.fake, shop, with_bot=True)}/roles"), 404)
    assert_error(api_for(app, "store-2").get(f"/guilds/{shop.guild_id}/roles"), 404)


def test_roles_when_discord_is_down_is_a_503_with_retry_after(shop: Shop, api: Api) -> None:
    shop.fake.set_faults(error_rate=1.0)
    body = assert_error(api.get(f"/guilds/{shop.guild_id}/roles"), 503)
    assert body["retry_after"] >= 1


# -- mappings ---------------------------------------------------------------------------------------


def create(api: Api, package_id: Any, guild_id: Any, role_id: Any) -> Any:
    return api.post("/mappings", json={"package_id": package_id, "guild_id": guild_id, "role_id": role_id})


def test_a_mapping_is_created_with_the_role_name_cached(app: Flask, shop: Shop, api: Api) -> None:
    vip = shop.role("VIP")
    response = create(api, "vip", shop.guild_id, vip)
    assert response.status_code == 201
    body = response.json
    assert set(body) == {"message", "mapping"}
    mapping = body["mapping"]
    assert set(mapping) == MAPPING_KEYS
    assert isinstance(mapping["id"], int)
    assert (mapping["package_id"], mapping["guild_id"], mapping["role_id"], mapping["role_name"]) == (
        "vip",
        shop.guild_id,
        vip,
        "VIP",
    )
    assert ISO_UTC.match(mapping["created_at"])
    assert "VIP" in body["message"]

    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    assert shop.roles_of(alice) == {"VIP"}, "buying the package now grants the role"


def test_many_packages_may_grant_one_role_and_one_package_many_roles(shop: Shop, api: Api) -> None:
    vip, gold = shop.role("VIP"), shop.role("Gold")
    for package, role in (("vip", vip), ("vip-yearly", vip), ("vip", gold)):
        assert create(api, package, shop.guild_id, role).status_code == 201
    listed = api.get("/mappings").json["mappings"]
    assert [(m["package_id"], m["role_name"]) for m in listed] == [
        ("vip", "VIP"),
        ("vip-yearly", "VIP"),
        ("vip", "Gold"),
    ]
    assert all(set(m) == MAPPING_KEYS for m in listed)
    assert [m["role_name"] for m in api.get("/mappings?package_id=vip").json["mappings"]] == ["VIP", "Gold"]


def test_mappings_filter_by_server(shop: Shop, api: Api) -> None:
    shop.map("vip", "VIP")
    elsewhere = shop.link(other_guild(shop.fake, shop, with_bot=True))
    shop.map("vip", "Elsewhere", guild_id=elsewhere)
    listed = api.get(f"/mappings?guild_id={elsewhere}").json["mappings"]
    assert [m["guild_id"] for m in listed] == [elsewhere]
    assert api.get("/mappings?guild_id=123456789012345678").json == {"mappings": []}


def test_the_same_mapping_twice_is_a_409(shop: Shop, api: Api) -> None:
    vip = shop.role("VIP")
    assert create(api, "vip", shop.guild_id, vip).status_code == 201
    assert_error(create(api, "vip", shop.guild_id, vip), 409)
    assert len(api.get("/mappings").json["mappings"]) == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ("package_id", "guild_id", "role_id")),
        (
            {"package_id": "", "guild_id": "1", "role_id": 123456789012345678},
            ("package_id", "guild_id", "role_id"),
        ),
        ({"package_id": "x" * 65}, ("package_id",)),
        ({"package_id": "   "}, ("package_id",)),
    ],
)
def test_malformed_fields_are_a_422_naming_each(
    shop: Shop, api: Api, body: dict[str, Any], fields: tuple[str, ...]
) -> None:
    complete = {"package_id": "vip", "guild_id": shop.guild_id, "role_id": shop.role("VIP"), **body}
    if not body:
        complete = {}
    assert_error(api.post("/mappings", json=complete), 422, fields=fields)


def test_a_server_not_linked_to_this_store_is_a_422_on_guild_id(app: Flask, shop: Shop) -> None:
    vip = shop.role("VIP")
    # The server is linked, but to store-1: store-2 may not map its roles.
    assert_error(create(api_for(app, "store-2"), "vip", shop.guild_id, vip), 422, fields=("guild_id",))


def test_a_role_not_in_the_server_is_a_422_on_role_id(shop: Shop, api: Api) -> None:
    assert_error(create(api, "vip", shop.guild_id, "123456789012345678"), 422, fields=("role_id",))


@pytest.mark.parametrize("problem", ["everyone_role", "managed_role", "role_above_bot"])
def test_a_role_the_bot_can_never_assign_is_refused_with_the_fix(shop: Shop, api: Api, problem: str) -> None:
    role_id = {
        "everyone_role": lambda: shop.guild_id,
        "managed_role": lambda: shop.fake.create_role(shop.guild_id, "Booster", managed=True).id,
        "role_above_bot": lambda: shop.fake.create_role(shop.guild_id, "Owner", position=99).id,
    }[problem]()
    body = assert_error(create(api, "vip", shop.guild_id, role_id), 422, fields=("role_id",))
    fix = {
        "everyone_role": "map another role",
        "managed_role": "managed by an integration",
        "role_above_bot": "Move the bot's role above",
    }[problem]
    assert fix in body["errors"]["role_id"][0]
    assert api.get("/mappings").json == {"mappings": []}


def test_mapping_in_a_server_the_bot_is_not_in_is_a_409(shop: Shop, api: Api) -> None:
    absent = shop.link(other_guild(shop.fake, shop, with_bot=False))
    body = assert_error(create(api, "vip", absent, "123456789012345678"), 409)
    assert "Invite" in body["detail"]


def test_a_mapping_is_made_a_tier_of_a_group_and_sticky_and_changed_later(
    app: Flask, shop: Shop, api: Api
) -> None:
    gold, silver = shop.role("Gold"), shop.role("Silver")
    made = api.post(
        "/mappings",
        json={"package_id": "gold", "guild_id": shop.guild_id, "role_id": gold, "group": "tiers", "rank": 3},
    )
    assert made.status_code == 201, made.json
    mapping = made.json["mapping"]
    assert (mapping["group"], mapping["rank"], mapping["keep_on_end"]) == ("tiers", 3, False)
    plain = create(api, "silver", shop.guild_id, silver).json["mapping"]
    assert (plain["group"], plain["rank"], plain["keep_on_end"]) == (None, None, False), "no group by default"

    changed = api.patch(f"/mappings/{plain['id']}", json={"group": "tiers", "rank": 2, "keep_on_end": True})
    assert changed.status_code == 200, changed.json
    assert set(changed.json) == {"message", "mapping"}
    assert {k: changed.json["mapping"][k] for k in ("group", "rank", "keep_on_end", "role_id")} == {
        "group": "tiers",
        "rank": 2,
        "keep_on_end": True,
        "role_id": silver,
    }
    only_sticky = api.patch(f"/mappings/{plain['id']}", json={"keep_on_end": False}).json["mapping"]
    assert (only_sticky["group"], only_sticky["rank"], only_sticky["keep_on_end"]) == ("tiers", 2, False)
    out = api.patch(f"/mappings/{plain['id']}", json={"group": None}).json["mapping"]
    assert (out["group"], out["rank"]) == (None, None), "leaving the group drops the rank"

    assert_error(api_for(app, "store-2").patch(f"/mappings/{plain['id']}", json={"rank": 1}), 404)
    assert_error(api.patch("/mappings/999999", json={"rank": 1}), 404)


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"group": "tiers"}, ("rank",)),
        ({"rank": 2}, ("group",)),
        ({"group": "", "rank": 1}, ("group",)),
        ({"group": "g" * 65, "rank": 1}, ("group",)),
        ({"group": "tiers", "rank": 1001}, ("rank",)),
        ({"group": "tiers", "rank": True}, ("rank",)),
        ({"group": "tiers", "rank": "2"}, ("rank",)),
        ({"keep_on_end": "yes"}, ("keep_on_end",)),
        ({"role_id": "123456789012345678"}, ("role_id",)),
    ],
)
def test_bad_tier_fields_are_a_422_naming_each_and_change_nothing(
    shop: Shop, api: Api, change: dict[str, Any], fields: tuple[str, ...]
) -> None:
    mapping = create(api, "vip", shop.guild_id, shop.role("VIP")).json["mapping"]
    assert_error(api.patch(f"/mappings/{mapping['id']}", json=change), 422, fields=fields)
    assert api.get("/mappings").json["mappings"] == [mapping], "nothing changed"
    if "role_id" not in change:
        body = {"package_id": "other", "guild_id": shop.guild_id, "role_id": mapping["role_id"], **change}
        assert_error(api.post("/mappings", json=body), 422, fields=fields)


def test_one_role_has_one_rank_in_a_group(shop: Shop, api: Api) -> None:
    vip = shop.role("VIP")
    tier = {"guild_id": shop.guild_id, "role_id": vip, "group": "tiers"}
    assert api.post("/mappings", json={"package_id": "monthly", **tier, "rank": 2}).status_code == 201
    body = assert_error(
        api.post("/mappings", json={"package_id": "yearly", **tier, "rank": 3}), 422, fields=("rank",)
    )
    assert "rank 2" in body["errors"]["rank"][0]
    agreeing = api.post("/mappings", json={"package_id": "yearly", **tier, "rank": 2})
    assert agreeing.status_code == 201, "the same role and rank through another package is fine"
    assert_error(
        api.patch(f"/mappings/{agreeing.json['mapping']['id']}", json={"rank": 5}), 422, fields=("rank",)
    )


def test_a_mapping_is_deleted_and_only_by_its_store(app: Flask, shop: Shop, api: Api) -> None:
    mapping_id = create(api, "vip", shop.guild_id, shop.role("VIP")).json["mapping"]["id"]
    assert_error(api_for(app, "store-2").delete(f"/mappings/{mapping_id}"), 404)
    assert api_for(app, "store-2").get("/mappings").json == {"mappings": []}

    response = api.delete(f"/mappings/{mapping_id}")
    assert response.status_code == 200
    assert set(response.json) == {"message"}
    assert api.get("/mappings").json == {"mappings": []}
    assert_error(api.delete(f"/mappings/{mapping_id}"), 404)


def test_a_store_on_the_platforms_shared_bot_sees_its_servers_and_roles(
    make_app: Any, database_url: str, fake_discord: FakeDiscord
) -> None:
    with shared_bot_store(make_app, database_url, fake_discord) as store:
        vip = fake_discord.create_role(store.guild_id, "VIP")
        api = api_for(store.app)
        (listed,) = api.get("/guilds").json["guilds"]
        assert (listed["name"], listed["bot_in_guild"]) == ("Shared Guild", True)
        roles = {role["id"]: role for role in api.get(f"/guilds/{store.guild_id}/roles").json["roles"]}
        assert roles[vip.id]["assignable"] is True, "the shared bot's user id is asked of Discord"
        assert create(api, "vip", store.guild_id, vip.id).status_code == 201
