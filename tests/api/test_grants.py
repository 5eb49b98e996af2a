"""``/customers/<customer_id>/grants`` and ``/grants`` over HTTP: subscriptions and fixed terms, each
success body checked against the operation's schema in ``/openapi.json``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flask_discord_roles import grants, order_completed, order_revoked
from flask_discord_roles._runtime.timestamps import format_timestamp
from tests.api import Api, api_for, assert_documented, assert_error
from tests.shop import Shop

EXPIRES = datetime(2031, 1, 20, 14, 30, 15, 999, tzinfo=UTC)


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop: a monthly VIP, one customer subscribed and renewed once, another refunded."""
    shop.map("vip-monthly", "VIP")
    shop.settings(grace_hours=24)
    buyer = shop.member("alice")
    for order_id, expires, customer, subscription in (
        ("order-1", EXPIRES, "customer-1", "sub-1"),
        ("order-2", EXPIRES + timedelta(days=30), "customer-1", "sub-1"),
        ("order-3", EXPIRES, "customer-2", None),
    ):
        order_completed.send(
            shop.app,
            store_id=shop.store_id,
            order_id=order_id,
            customer_id=customer,
            package_ids=["vip-monthly"],
            discord_user_id=buyer,
            expires_at=expires,
            subscription_id=subscription,
        )
    order_revoked.send(shop.app, store_id=shop.store_id, order_id="order-3", customer_id="customer-2")
    shop.db.session.commit()
    return shop


def test_a_customers_grants_say_when_they_expire_and_when_their_roles_go(shop: Shop, api: Api) -> None:
    response = api.get("/customers/customer-1/grants")

    body = assert_documented(api, "get", "/customers/{customer_id}/grants", response)
    (grant,) = body["grants"]
    renewed = EXPIRES + timedelta(days=30)
    assert grant == grants.list_grants(shop.store_id, customer_id="customer-1")[0].to_dict()
    assert {key: grant[key] for key in ("package_id", "subscription_id", "status", "renewals")} == {
        "package_id": "vip-monthly",
        "subscription_id": "sub-1",
        "status": "active",
        "renewals": 1,
    }
    assert (grant["order_id"], grant["last_order_id"]) == ("order-1", "order-2")
    assert grant["expires_at"] == format_timestamp(renewed) == "2031-02-19T14:30:15Z"
    assert grant["ends_at"] == "2031-02-20T14:30:15Z", "expiry plus the store's 24 hours of grace"


def test_grants_can_be_listed_by_status_and_customer(shop: Shop, api: Api) -> None:
    ended = assert_documented(api, "get", "/grants", api.get("/grants?status=ended"))
    assert [(g["customer_id"], g["end_reason"]) for g in ended["grants"]] == [("customer-2", "revoked")]
    everyone = assert_documented(api, "get", "/grants", api.get("/grants"))
    assert sorted(g["order_id"] for g in everyone["grants"]) == ["order-1", "order-3"]
    mine = api.get("/customers/customer-2/grants?status=active").get_json()
    assert mine == {"grants": []}
    assert_error(api.get("/grants?status=lapsed"), 422, fields=("status",))


def test_another_store_sees_none_of_them(shop: Shop, api: Api) -> None:
    other = api_for(shop.app, store_id="store-2", scopes=("read",))
    assert other.get("/customers/customer-1/grants").get_json() == {"grants": []}
