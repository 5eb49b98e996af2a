"""/check shows when each subscription or fixed-term purchase expires, after the seed's own words."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from flask_discord_roles import order_completed
from flask_discord_roles._runtime.models import utcnow
from tests.shop import FAST_QUEUE, Shop

URL = "/webhook/discord/interactions/store-1"

pytestmark = pytest.mark.app_settings(FAST_QUEUE)


def check(shop: Shop, client: FlaskClient, user: str) -> str:
    payload = shop.fake.command_payload(shop.bot, shop.guild_id, user, "check")
    answer = shop.fake.send_interaction(URL, shop.bot, payload, client=client).json()
    return str(answer["data"]["embeds"][0]["description"])


def test_check_shows_each_active_grants_expiry_next_to_its_role(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip-monthly", "VIP")
    shop.map("supporter", "Supporter")
    alice = shop.member("alice")
    expires = utcnow() + timedelta(days=30)
    order_completed.send(
        shop.app,
        store_id=shop.store_id,
        order_id="order-1",
        customer_id="customer-1",
        package_ids=["vip-monthly"],
        discord_user_id=alice,
        expires_at=expires,
        subscription_id="sub-1",
    )
    shop.db.session.commit()
    shop.buy("order-2", "supporter", buyer=alice)

    lines = check(shop, client, alice).splitlines()

    moment = int(expires.timestamp())
    assert f"✅ **VIP** · order order-1: delivered. Expires <t:{moment}:D> (<t:{moment}:R>)." in lines
    assert "✅ **Supporter** · order order-2: delivered." in lines, "a purchase for good shows no expiry"
