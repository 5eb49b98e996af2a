"""Purchase messages in the store's channel, claim windows that expire, and rows waiting for a link."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from flask_discord_roles import order_completed
from flask_discord_roles._core.queue import attach_discord_user
from flask_discord_roles._engine.executors import WorkerExecutor
from flask_discord_roles._engine.worker import Worker
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.discord.permissions import SEND_MESSAGES
from tests.shop import Shop


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop, selling VIP."""
    shop.map("vip", "VIP")
    return shop


def _notifications(shop: Shop) -> list[Any]:
    model = get_state(shop.app).models.PurchaseNotification
    shop.db.session.expire_all()
    return list(shop.db.session.scalars(sa.select(model).order_by(model.id)))


def _buy_with_names(shop: Shop, order_id: str, buyer: str | None, **names: str) -> None:
    order_completed.send(
        shop.app,
        store_id=shop.store_id,
        order_id=order_id,
        customer_id="customer-1",
        package_ids=list(names),
        package_names=names,
        discord_user_id=buyer,
    )
    shop.db.session.commit()


def test_a_purchase_posts_one_message_that_pings_nobody(shop: Shop) -> None:
    channel = shop.fake.create_channel(shop.guild_id, "purchases")
    shop.settings(notifications_enabled=True, notification_channel_id=channel.id)
    buyer = shop.member("alice")

    _buy_with_names(shop, "order-1", buyer, vip="VIP @everyone Pack")
    _buy_with_names(shop, "order-1", buyer, vip="VIP @everyone Pack")  # signalled again

    (message,) = shop.fake.messages(channel.id)
    embed = message["embeds"][0]
    assert "VIP @everyone Pack" in embed["description"]
    assert f"<@{buyer}>" in embed["description"], "the buyer is named when their Discord id is known"
    assert message["allowed_mentions"] == {"parse": []}, "nothing in a purchase message may ping"
    assert [n.status for n in _notifications(shop)] == ["sent"]
    assert shop.roles_of(buyer) == {"VIP"}


def test_a_notification_that_cannot_be_posted_never_blocks_the_role(shop: Shop) -> None:
    channel = shop.fake.create_channel(
        shop.guild_id, "locked", overwrites=[{"id": shop.guild_id, "type": 0, "deny": SEND_MESSAGES}]
    )
    shop.settings(notifications_enabled=True, notification_channel_id=channel.id)
    buyer = shop.member("alice")

    _buy_with_names(shop, "order-1", buyer, vip="VIP")

    (notification,) = _notifications(shop)
    assert (notification.status, notification.reason_code) == ("failed", "missing_channel_permissions")
    assert "Send Messages" in (notification.reason or "")
    assert shop.roles_of(buyer) == {"VIP"}, "the role is delivered whatever happened to the message"


def test_an_order_with_no_mapped_role_is_still_announced(shop: Shop) -> None:
    channel = shop.fake.create_channel(shop.guild_id, "purchases")
    shop.settings(notifications_enabled=True, notification_channel_id=channel.id)
    buyer = shop.member("alice")

    _buy_with_names(shop, "order-1", buyer, ebook="The Ebook")  # a package with no role mapped

    (message,) = shop.fake.messages(channel.id)
    assert "The Ebook" in message["embeds"][0]["description"]
    assert shop.roles_of(buyer) == set(), "no mapping, no role: the purchase message is all there is"


def test_notifications_are_off_unless_the_store_turns_them_on(shop: Shop) -> None:
    buyer = shop.member("alice")
    _buy_with_names(shop, "order-1", buyer, vip="VIP")
    assert _notifications(shop) == []


def test_unclaimed_deliveries_expire_after_the_claim_window(shop: Shop) -> None:
    shop.settings(delivery_mode="claim", claim_expiry_hours=72)
    buyer = shop.member("alice")
    shop.buy("order-1", "vip", buyer=buyer)
    (row,) = shop.deliveries()
    assert row.expires_at is not None
    assert timedelta(hours=71) < row.expires_at - row.created_at <= timedelta(hours=72)

    row.expires_at = utcnow() - timedelta(seconds=1)  # the window has passed
    shop.db.session.commit()
    Worker(shop.app).run(once=True)

    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("expired", "claim_expired")
    assert shop.fake.calls == [], "an expired row is never sent"


def test_a_grant_already_scheduled_is_delivered_however_late(shop: Shop) -> None:
    # Automatic store, buyer known: the row is scheduled at once. Its window only matters while a
    # grant waits for its customer, so a worker that was down for days still delivers it.
    get_state(shop.app).executor = WorkerExecutor()  # nothing runs until the worker below
    buyer = shop.member("alice")
    shop.buy("order-1", "vip", buyer=buyer)
    (row,) = shop.deliveries()
    assert row.next_attempt_at is not None, "an automatic grant with a known buyer is scheduled"
    row.expires_at = utcnow() - timedelta(seconds=1)
    shop.db.session.commit()

    Worker(shop.app).run(once=True)

    (row,) = shop.deliveries()
    assert row.status == "completed", f"a paid, scheduled grant must not expire ({row.reason_code})"
    assert shop.roles_of(buyer) == {"VIP"}


def test_a_store_may_let_pending_deliveries_wait_forever(shop: Shop) -> None:
    shop.settings(delivery_mode="claim", claims_expire=False)
    shop.buy("order-1", "vip", buyer=shop.member("alice"))
    (row,) = shop.deliveries()
    assert (row.status, row.expires_at) == ("pending", None)


def test_a_guest_order_is_delivered_when_the_customer_links_discord_later(shop: Shop) -> None:
    shop.buy("order-1", "vip", buyer=None, customer="customer-7")
    (row,) = shop.deliveries()
    assert (row.discord_user_id, row.next_attempt_at) == (None, None), "waits for the customer"

    buyer = shop.member("alice")
    attach_discord_user(get_state(shop.app), shop.store_id, "customer-7", buyer)
    shop.db.session.commit()
    Worker(shop.app).run(once=True)

    assert shop.roles_of(buyer) == {"VIP"}
