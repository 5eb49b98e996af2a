"""``/settings``: reading and changing a store's Discord settings, and the notification channel check."""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import store_settings
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.discord.permissions import (
    ADMINISTRATOR,
    EMBED_LINKS,
    MANAGE_ROLES,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    channel_permissions,
)
from flask_discord_roles.errors import ValidationError
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing import permissions as reference
from tests.api import Api, assert_error
from tests.shop import Shop, open_shop

DEFAULTS = {
    "linking_enabled": True,
    "require_link": False,
    "join_guilds_on_link": False,
    "notifications_enabled": False,
    "notification_channel_id": None,
    "welcome_message": None,
    "checkout_prompt": None,
    "delivery_mode": "automatic",
    "claims_expire": True,
    "claim_expiry_hours": 72,
    "grace_hours": 0,
    "expiry_reminder_hours": None,
    "expiry_reminder_dm": True,
    "reconcile_mode": "off",
    "linked_roles_enabled": False,
}
ROLE, MEMBER = 0, 1


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop, its server linked."""
    shop.link()
    return shop


def saved_settings(app: Flask) -> Any:
    """The store's saved row (None when it never saved), read fresh from the database."""
    state = get_state(app)
    state.db.session.expire_all()
    model = state.models.StoreSettings
    return state.db.session.scalar(sa.select(model).where(model.store_id == "store-1"))


def bot_role_id(shop: Shop) -> str:
    guild = shop.fake.guild(shop.guild_id)
    return next(role.id for role in guild.roles.values() if role.bot_id == shop.bot.user_id)


def channel(shop: Shop, *overwrites: tuple[int, str, int, int]) -> str:
    """A text channel in the shop's guild with ``(type, id, allow, deny)`` overwrites."""
    return shop.fake.create_channel(
        shop.guild_id,
        "purchases",
        overwrites=[{"type": t, "id": i, "allow": a, "deny": d} for t, i, a, d in overwrites],
    ).id


# -- reading -------------------------------------------------------------------------------------------


def test_a_store_that_never_saved_reads_the_defaults(api: Api, app: Flask) -> None:
    response = api.get("/settings")
    assert response.status_code == 200
    assert response.json == {"settings": DEFAULTS}
    assert saved_settings(app) is None, "reading creates nothing"


# -- changing ------------------------------------------------------------------------------------------


def test_a_partial_update_changes_only_the_settings_sent(api: Api, app: Flask) -> None:
    response = api.patch(
        "/settings",
        json={
            "delivery_mode": "claim",
            "claim_expiry_hours": 24,
            "welcome_message": "Welcome aboard!",
            "require_link": True,
        },
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == {"message", "settings"}
    assert isinstance(body["message"], str)
    assert body["message"]
    expected = DEFAULTS | {
        "delivery_mode": "claim",
        "claim_expiry_hours": 24,
        "welcome_message": "Welcome aboard!",
        "require_link": True,
    }
    assert body["settings"] == expected
    assert api.get("/settings").json == {"settings": expected}

    second = api.patch("/settings", json={"claims_expire": False, "welcome_message": None})
    assert second.json["settings"] == expected | {"claims_expire": False, "welcome_message": None}
    assert saved_settings(app).claim_expiry_hours == 24, "what was not sent keeps its value"


def test_an_empty_text_clears_it_like_null(api: Api) -> None:
    api.patch("/settings", json={"checkout_prompt": "Link your Discord to get your roles"})
    response = api.patch("/settings", json={"checkout_prompt": ""})
    assert response.json["settings"]["checkout_prompt"] is None


def test_an_empty_body_changes_nothing_and_saves_nothing(api: Api, app: Flask) -> None:
    response = api.patch("/settings", json={})
    assert response.status_code == 200
    assert response.json["settings"] == DEFAULTS
    assert saved_settings(app) is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"linking_enabled": "yes"}, ("linking_enabled",)),
        ({"require_link": 1}, ("require_link",)),
        ({"notifications_enabled": None}, ("notifications_enabled",)),
        ({"claims_expire": "false"}, ("claims_expire",)),
        ({"delivery_mode": "manual"}, ("delivery_mode",)),
        ({"delivery_mode": None}, ("delivery_mode",)),
        ({"claim_expiry_hours": 0}, ("claim_expiry_hours",)),
        ({"claim_expiry_hours": 8761}, ("claim_expiry_hours",)),
        ({"claim_expiry_hours": 1.5}, ("claim_expiry_hours",)),
        ({"claim_expiry_hours": "72"}, ("claim_expiry_hours",)),
        ({"claim_expiry_hours": True}, ("claim_expiry_hours",)),
        ({"grace_hours": -1}, ("grace_hours",)),
        ({"grace_hours": 8761}, ("grace_hours",)),
        ({"grace_hours": None}, ("grace_hours",)),
        ({"expiry_reminder_hours": 0}, ("expiry_reminder_hours",)),
        ({"expiry_reminder_hours": "24"}, ("expiry_reminder_hours",)),
        ({"expiry_reminder_dm": "yes"}, ("expiry_reminder_dm",)),
        ({"reconcile_mode": "fix"}, ("reconcile_mode",)),
        ({"welcome_message": "x" * 2001}, ("welcome_message",)),
        ({"checkout_prompt": 5}, ("checkout_prompt",)),
        ({"notification_channel_id": "general"}, ("notification_channel_id",)),
        ({"notification_channel_id": 123456789012345678}, ("notification_channel_id",)),
        ({"colour": "red", "delivery_mode": "claim"}, ("colour",)),
        ({"require_link": True, "linking_enabled": False}, ("require_link",)),
        ({"notifications_enabled": True}, ("notifications_enabled",)),
        (
            {"linking_enabled": "no", "delivery_mode": "later", "claim_expiry_hours": 5},
            ("linking_enabled", "delivery_mode"),
        ),
    ],
)
def test_refused_settings_are_named_and_nothing_is_saved(
    api: Api, app: Flask, body: dict[str, Any], fields: tuple[str, ...]
) -> None:
    error = assert_error(api.patch("/settings", json=body), 422, fields=fields)
    assert set(error["errors"]) == set(fields), "only the refused fields are named"
    assert saved_settings(app) is None, "valid settings sent with a refused one are not saved either"


def test_switching_linking_off_while_it_is_required_names_linking(api: Api) -> None:
    api.patch("/settings", json={"require_link": True})
    error = assert_error(
        api.patch("/settings", json={"linking_enabled": False}), 422, fields=("linking_enabled",)
    )
    assert "require_link" in error["errors"]["linking_enabled"][0], "the message says how to fix it"


def test_a_body_that_is_not_an_object_is_refused(api: Api) -> None:
    assert_error(api.patch("/settings", json=["delivery_mode", "claim"]), 422, fields=("body",))


# -- the notification channel ---------------------------------------------------------------------------


def test_a_channel_the_bot_can_post_in_is_saved_with_notifications_on(shop: Shop, api: Api) -> None:
    channel_id = channel(shop)
    response = api.patch(
        "/settings", json={"notifications_enabled": True, "notification_channel_id": channel_id}
    )
    assert response.status_code == 200, response.json
    assert response.json["settings"] == DEFAULTS | {
        "notifications_enabled": True,
        "notification_channel_id": channel_id,
    }
    assert saved_settings(shop.app).notification_channel_id == channel_id


def test_a_channel_where_send_messages_is_denied_is_refused_with_the_fix(shop: Shop, api: Api) -> None:
    channel_id = channel(shop, (ROLE, shop.guild_id, 0, SEND_MESSAGES))
    response = api.patch(
        "/settings", json={"notifications_enabled": True, "notification_channel_id": channel_id}
    )
    error = assert_error(response, 422, fields=("notification_channel_id",))
    message = error["errors"]["notification_channel_id"][0]
    assert "Send Messages" in message
    assert "#purchases" in message
    assert "Embed Links" in message, "the fix names everything the bot needs there"
    assert saved_settings(shop.app) is None


def test_a_role_overwrite_allowing_the_bot_beats_a_denial_for_everyone(shop: Shop, api: Api) -> None:
    channel_id = channel(
        shop,
        (ROLE, shop.guild_id, 0, VIEW_CHANNEL | SEND_MESSAGES),
        (ROLE, bot_role_id(shop), VIEW_CHANNEL | SEND_MESSAGES, 0),
    )
    response = api.patch("/settings", json={"notification_channel_id": channel_id})
    assert response.status_code == 200, response.json
    assert response.json["settings"]["notification_channel_id"] == channel_id


def test_a_member_overwrite_on_the_bot_beats_its_roles(shop: Shop, api: Api) -> None:
    channel_id = channel(
        shop,
        (ROLE, bot_role_id(shop), VIEW_CHANNEL | SEND_MESSAGES, 0),
        (MEMBER, shop.bot.user_id, 0, EMBED_LINKS),
    )
    error = assert_error(api.patch("/settings", json={"notification_channel_id": channel_id}), 422)
    assert "Embed Links" in error["errors"]["notification_channel_id"][0]


def test_a_hidden_channel_is_refused_naming_view_channel(shop: Shop, api: Api) -> None:
    channel_id = channel(shop, (ROLE, shop.guild_id, 0, VIEW_CHANNEL))
    error = assert_error(api.patch("/settings", json={"notification_channel_id": channel_id}), 422)
    assert "View Channel" in error["errors"]["notification_channel_id"][0]


def test_an_administrator_bot_ignores_channel_overwrites(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, api: Api
) -> None:
    shop = open_shop(app, db, fake_discord, bot_permissions=ADMINISTRATOR | MANAGE_ROLES)
    shop.link()
    channel_id = channel(shop, (ROLE, shop.guild_id, 0, VIEW_CHANNEL | SEND_MESSAGES))
    response = api.patch("/settings", json={"notification_channel_id": channel_id})
    assert response.status_code == 200, response.json


def test_a_channel_of_a_server_not_linked_to_the_store_is_refused(shop: Shop, api: Api) -> None:
    other = shop.fake.create_guild("Someone Else's Server")
    shop.fake.add_bot_to_guild(shop.bot, other.id)
    foreign = shop.fake.create_channel(other.id, "general").id
    error = assert_error(api.patch("/settings", json={"notification_channel_id": foreign}), 422)
    assert "linked" in error["errors"]["notification_channel_id"][0]
    unknown = "123456789012345678"
    assert_error(api.patch("/settings", json={"notification_channel_id": unknown}), 422)
    assert saved_settings(shop.app) is None


def test_without_a_bot_the_channel_is_refused_saying_to_save_one(api: Api) -> None:
    error = assert_error(
        api.patch("/settings", json={"notification_channel_id": "123456789012345678"}),
        422,
        fields=("notification_channel_id",),
    )
    assert "Save a bot first" in error["errors"]["notification_channel_id"][0]


def test_a_revoked_token_is_refused_saying_to_save_a_new_one(shop: Shop, api: Api) -> None:
    channel_id = channel(shop)
    shop.fake.revoke_bot_token(shop.bot)
    error = assert_error(api.patch("/settings", json={"notification_channel_id": channel_id}), 422)
    assert "token" in error["errors"]["notification_channel_id"][0]


def test_discord_down_while_checking_a_new_channel_is_a_503_and_saves_nothing(shop: Shop, api: Api) -> None:
    channel_id = channel(shop)
    shop.fake.set_faults(error_rate=1.0)
    response = api.patch(
        "/settings",
        json={"notifications_enabled": True, "notification_channel_id": channel_id, "delivery_mode": "claim"},
    )
    body = assert_error(response, 503)
    assert body["retry_after"] >= 1
    assert response.headers["Retry-After"]
    assert saved_settings(shop.app) is None


def test_resending_the_saved_channel_needs_no_discord(shop: Shop, api: Api) -> None:
    """A dashboard that sends the whole form each time keeps working while Discord is down."""
    channel_id = channel(shop)
    form = {"notifications_enabled": True, "notification_channel_id": channel_id}
    assert api.patch("/settings", json=form).status_code == 200
    shop.fake.set_faults(error_rate=1.0)
    response = api.patch("/settings", json=form | {"welcome_message": "Hi!"})
    assert response.status_code == 200, response.json
    assert response.json["settings"]["welcome_message"] == "Hi!"


def test_switching_notifications_on_checks_the_saved_channel_again(shop: Shop, api: Api) -> None:
    channel_id = channel(shop)
    assert api.patch("/settings", json={"notification_channel_id": channel_id}).status_code == 200
    with shop.fake.world.lock:
        shop.fake.world.channels[channel_id].overwrites.append(
            {"type": ROLE, "id": shop.guild_id, "allow": 0, "deny": SEND_MESSAGES}
        )
    error = assert_error(api.patch("/settings", json={"notifications_enabled": True}), 422)
    assert "Send Messages" in error["errors"]["notification_channel_id"][0]
    assert saved_settings(shop.app).notifications_enabled is False


def test_clearing_the_channel_while_notifications_are_on_is_refused(shop: Shop, api: Api) -> None:
    channel_id = channel(shop)
    api.patch("/settings", json={"notifications_enabled": True, "notification_channel_id": channel_id})
    assert_error(
        api.patch("/settings", json={"notification_channel_id": None}),
        422,
        fields=("notification_channel_id",),
    )
    response = api.patch("/settings", json={"notifications_enabled": False, "notification_channel_id": None})
    assert response.status_code == 200


# -- the Python API -------------------------------------------------------------------------------------


def test_hosts_change_settings_through_the_python_api(shop: Shop) -> None:
    assert store_settings.get_settings("store-1") == DEFAULTS
    changed = store_settings.update_settings("store-1", delivery_mode="claim", claim_expiry_hours=12)
    shop.db.session.commit()
    assert changed == DEFAULTS | {"delivery_mode": "claim", "claim_expiry_hours": 12}
    assert store_settings.get_settings("store-1") == changed
    with pytest.raises(ValidationError) as refused:
        store_settings.update_settings("store-1", claim_expiry_hours=-1)
    assert list(refused.value.errors) == ["claim_expiry_hours"]


# -- the permission arithmetic ----------------------------------------------------------------------------


def test_channel_permissions_agree_with_an_independent_reading_of_discords_algorithm() -> None:
    """Random roles, memberships and overwrites; the fake's own implementation is the referee."""
    rng = random.Random(5)
    bits = [VIEW_CHANNEL, SEND_MESSAGES, EMBED_LINKS, MANAGE_ROLES, ADMINISTRATOR]
    guild_id, member_id = "100", "900"

    def some_bits(chance: float) -> int:
        return sum(bit for bit in bits if rng.random() < chance)

    for _ in range(500):
        roles = [{"id": guild_id, "position": 0, "permissions": str(some_bits(0.5) & ~ADMINISTRATOR)}]
        roles += [
            {"id": str(200 + n), "position": n + 1, "permissions": str(some_bits(0.2))} for n in range(4)
        ]
        held = [role["id"] for role in roles[1:] if rng.random() < 0.5]
        targets = [(ROLE, role["id"]) for role in roles] + [(MEMBER, member_id), (MEMBER, "901")]
        overwrites = [
            {"type": kind, "id": target, "allow": str(some_bits(0.2)), "deny": str(some_bits(0.3))}
            for kind, target in targets
            if rng.random() < 0.5
        ]
        ours = channel_permissions(guild_id, member_id, held, roles, overwrites)
        base = reference.base_permissions(
            int(roles[0]["permissions"]),
            [int(role["permissions"]) for role in roles if role["id"] in held],
            is_owner=False,
        )
        theirs = reference.channel_permissions(
            base, guild_id=guild_id, role_ids=held, user_id=member_id, overwrites=overwrites
        )
        mask = sum(bits)
        assert ours & mask == theirs & mask, (roles, held, overwrites)
