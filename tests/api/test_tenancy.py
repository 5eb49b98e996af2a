"""No operation of the tenant API reads or changes another store's data.

Store A has everything (a bot, a linked server, a mapping, deliveries, a linked customer, settings, a
backfill); store B has a token. Every operation in the OpenAPI description is called as B with A's ids
in the path and the body: none answers with A's data, none fails with a 5xx, and afterwards A's rows are
exactly as they were. B's token sent with A's store id is refused (403) by every operation.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from tests.api import PREFIX, api_for
from tests.shop import Shop, open_shop

VOLATILE = {"last_used_at"}
"""Columns a read may touch: a token's last use (B's own token, but the column is on every row)."""


@pytest.fixture
def store_a(app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord) -> Shop:
    shop = open_shop(app, db, fake_discord)
    shop.link()
    shop.map("vip", "VIP")
    channel = fake_discord.create_channel(shop.guild_id, "purchases")
    shop.settings(notifications_enabled=True, notification_channel_id=channel.id)
    buyer = shop.member("buyer")
    state = get_state(app)
    db.session.add(
        state.models.DiscordAccount(
            store_id=shop.store_id, customer_id="customer-a", discord_user_id=buyer, username="buyer-of-a"
        )
    )
    db.session.commit()
    shop.buy("order-of-a-1", "vip", buyer=buyer, customer="customer-a")
    shop.buy("order-of-a-2", "vip", buyer=fake_discord.create_user("left").id, customer="customer-a")
    api_for(app, shop.store_id)
    with app.app_context():
        from flask_discord_roles import backfills, guilds, reconcile

        guilds.create_link_code(shop.store_id)
        (mapping,) = guilds.list_mappings(shop.store_id)
        backfills.start_backfill(shop.store_id, mapping.id)
        reconcile.start_reconcile(shop.store_id)
        db.session.commit()
    return shop


def snapshot(app: Flask, store_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ours that belongs to ``store_id``, column by column."""
    state = get_state(app)
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with state.db.engine.connect() as connection:
        for table in state.models.tables:
            if "store_id" not in table.c:
                continue
            columns = [column for column in table.c if column.name not in VOLATILE]
            rows[table.name] = [
                tuple(row)
                for row in connection.execute(
                    sa.select(*columns)
                    .where(table.c.store_id == store_id)
                    .order_by(*table.primary_key.columns)
                )
            ]
    return rows


def operations(app: Flask) -> list[tuple[str, str, dict[str, Any]]]:
    document = app.test_client().get(f"{PREFIX}/openapi.json").json
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if operation.get("security") == []:
                continue  # public: the description itself
            found.append((method.upper(), path, operation))
    return found


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: ids[match.group(1)], path)


def test_every_operation_called_by_another_store_sees_and_changes_nothing_of_ours(
    app: Flask, store_a: Shop, fake_discord: FakeDiscord
) -> None:
    state = get_state(app)
    with app.app_context():
        delivery = state.models.Delivery
        mapping = state.models.RoleMapping
        ids = {
            "delivery_id": str(state.db.session.scalar(sa.select(sa.func.min(delivery.id)))),
            "mapping_id": str(state.db.session.scalar(sa.select(sa.func.min(mapping.id)))),
            "guild_id": store_a.guild_id,
            "role_id": store_a.roles["VIP"],
            "customer_id": "customer-a",
            "backfill_id": str(state.db.session.scalar(sa.select(sa.func.min(state.models.Backfill.id)))),
            "run_id": str(state.db.session.scalar(sa.select(sa.func.min(state.models.ReconcileRun.id)))),
        }
        settings = state.models.StoreSettings
        channel_of_a = state.db.session.scalar(sa.select(settings.notification_channel_id))
    body = {
        "package_id": "vip",
        "guild_id": store_a.guild_id,
        "role_id": store_a.roles["VIP"],
        "customer_id": "customer-a",
        "discord_user_id": store_a.deliveries()[0].discord_user_id,
        "enabled": False,
        "status": "failed",
        "notifications_enabled": False,
        "delivery_mode": "claim",
    }
    # Things only store A's data holds; none was sent by B, so none may come back to B.
    secrets_of_a = [
        "order-of-a-1",
        "order-of-a-2",
        "buyer-of-a",
        "Shop Guild",
        store_a.bot.application_id,
        store_a.bot.user_id,
        channel_of_a,
    ]
    before = snapshot(app, store_a.store_id)
    other = api_for(app, "store-b")
    checked = operations(app)
    assert len(checked) >= 25, "the description lists every operation"
    for method, path, _ in checked:
        url = fill(path, ids)
        response = other.call(method, url, json=body if method in ("POST", "PATCH", "PUT") else None)
        text = response.get_data(as_text=True)
        assert response.status_code < 500, f"{method} {url} as another store: {response.status_code} {text}"
        for secret in secrets_of_a:
            assert secret not in text, f"{method} {url} showed store A's {secret!r} to store B: {text}"

        refused = other.call(method, url, headers={"X-Tenant-Id": store_a.store_id})
        assert refused.status_code == 403, f"{method} {url} with B's token and A's id: {refused.status_code}"

    assert snapshot(app, store_a.store_id) == before, "store B's calls changed store A's rows"
