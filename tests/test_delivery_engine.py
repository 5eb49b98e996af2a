"""From a completed order to a role in the fake guild: modes, idempotency, rollbacks, provenance."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles.testing import FakeDiscord

from tests.shop import FAST_QUEUE, Shop, open_shop

ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+$"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return dict(FAST_QUEUE)


@pytest.fixture
def shop(app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord) -> Shop:
    return open_shop(app, db, fake_discord)


def test_a_paid_order_gives_the_buyer_their_roles_once_the_host_commits(shop: Shop) -> None:
    shop.map("vip", "VIP")
    shop.map("vip", "Supporter")
    buyer = shop.member("alice")

    shop.buy("order-1", "vip", buyer=buyer)

    assert shop.roles_of(buyer) == {"VIP", "Supporter"}
    assert shop.statuses() == [("add", "completed", None), ("add", "completed", None)]


def test_the_same_order_signalled_three_times_gives_each_role_once(shop: Shop) -> None:
    shop.map("vip", "VIP")
    buyer = shop.member("alice")
    for _ in range(3):
        shop.buy("order-1", "vip", buyer=buyer)

    assert len(shop.deliveries()) == 1, "one delivery per role, however often the order is signalled"
    assert len(shop.fake.calls_to("PUT", ROLE_PUT)) == 1, "and one role PUT at Discord"
    assert shop.roles_of(buyer) == {"VIP"}


def test_a_rolled_back_checkout_queues_nothing_and_sends_nothing(shop: Shop) -> None:
    from flask_discord_roles import order_completed

    shop.map("vip", "VIP")
    buyer = shop.member("alice")
    order_completed.send(
        shop.app, store_id=shop.store_id, order_id="order-1", package_ids=["vip"], discord_user_id=buyer
    )
    shop.db.session.rollback()
    shop.db.session.commit()  # a later, unrelated commit must not dispatch the rolled-back rows

    assert shop.deliveries() == []
    assert shop.fake.calls == [], "nothing may reach Discord for an order that never committed"
    assert shop.roles_of(buyer) == set()


def test_claim_mode_waits_for_the_customer_even_when_their_discord_id_is_known(shop: Shop) -> None:
    shop.settings(delivery_mode="claim")
    shop.map("vip", "VIP")
    buyer = shop.member("alice")

    shop.buy("order-1", "vip", buyer=buyer)

    (row,) = shop.deliveries()
    assert (row.status, row.next_attempt_at) == ("pending", None), "claim mode waits for /claim"
    assert shop.roles_of(buyer) == set()
    assert shop.fake.calls == []
