"""The example storefront: its migrations folder brings up both branches, and its pages work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import upgrade

from example_app import MIGRATIONS_DIR, create_app, db
from example_app.models import Order, Package
from flask_discord_roles import get_state


@pytest.fixture
def shop(database_url: str) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": sa.pool.NullPool},
        }
    )
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="heads")
        yield app
        # The storefront runs the default thread executor; stop it before its schema goes away.
        get_state(app).executor.shutdown()
        db.session.remove()
        db.engine.dispose()


def test_upgrade_heads_creates_the_shop_and_discord_roles_schemas_exactly(shop: Flask) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
        tables = set(sa.inspect(connection).get_table_names())
    assert differences == [], f"example migrations and models disagree: {differences}"
    assert {"shop_orders", "discord_roles_deliveries"} <= tables


def test_buying_records_an_order(shop: Flask) -> None:
    db.session.add(Package(name="VIP", price_cents=1500))
    db.session.commit()
    client = shop.test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert b"No bot saved" in page.data
    package_id = db.session.scalars(sa.select(Package.id)).one()
    response = client.post(f"/buy/{package_id}", data={"email": "ann@example.com"}, follow_redirects=True)
    assert b"is paid" in response.data
    assert db.session.scalars(sa.select(Order.customer_email)).all() == ["ann@example.com"]


def test_buying_with_bad_input_changes_nothing(shop: Flask) -> None:
    client = shop.test_client()
    response = client.post("/buy/999", data={"email": "ann@example.com"}, follow_redirects=True)
    assert b"does not exist" in response.data
    db.session.add(Package(name="VIP", price_cents=1500))
    db.session.commit()
    package_id = db.session.scalars(sa.select(Package.id)).one()
    response = client.post(f"/buy/{package_id}", data={"email": "nope"}, follow_redirects=True)
    assert b"email address" in response.data
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_demo_sandbox_saves_the_bot_and_shows_the_servers_roles(database_url: str) -> None:
    from example_app.sandbox import seed_store, start_sandbox

    sandbox = start_sandbox()
    try:
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": database_url,
                "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": sa.pool.NullPool},
                "DISCORD_ROLES_API_BASE_URL": sandbox.fake.api_base_url,
                "DEMO_GUILD_ID": sandbox.guild.id,
                "DISCORD_ROLES_EXECUTOR": "inline",
            }
        )
        with app.app_context():
            upgrade(directory=MIGRATIONS_DIR, revision="heads")
        seed_store(app, sandbox)
        seed_store(app, sandbox)  # restarting the demo re-saves the bot; it must not duplicate anything
        page = app.test_client().get("/")
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert "Demo Store Bot" in text, "the saved bot's name, as Discord reported it"
        for role in ("Supporter", "VIP", "Legend", "Moderator"):
            assert role in text, f"role {role} read live from the sandbox's server"
        roles = list(sandbox.fake.guild(sandbox.guild.id).roles.values())
        bot_role = next(role for role in roles if role.bot_id is not None)
        moderator = next(role for role in roles if role.name == "Moderator")
        assert moderator.position > bot_role.position, "the demo shows a role the bot cannot give"
        assert sandbox.bot.token not in text

        client = app.test_client()
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Package)) == 3
            vip = db.session.scalars(sa.select(Package.id).where(Package.name == "VIP")).one()
        buyer = sandbox.fake.create_user("ann").id
        sandbox.fake.add_member(sandbox.guild.id, buyer)
        client.post(f"/buy/{vip}", data={"email": "ann@example.com", "discord_user_id": buyer})
        client.post(f"/buy/{vip}", data={"email": "bo@example.com"})
        refused = client.post(
            f"/buy/{vip}", data={"email": "cy@example.com", "discord_user_id": "@cy"}, follow_redirects=True
        )
        assert "long number" in refused.get_data(as_text=True)
        with app.app_context():
            delivery = get_state().models.Delivery
            rows = db.session.scalars(sa.select(delivery).order_by(delivery.id)).all()
            assert [(r.role_id, r.discord_user_id, r.status) for r in rows] == [
                (sandbox.roles["VIP"], buyer, "completed"),
                (sandbox.roles["VIP"], None, "pending"),
            ], "each paid order queues its package's role; the refused one queues nothing"
            assert rows[1].next_attempt_at is None, "a guest's role waits for them to link or /claim"
            assert sandbox.roles["VIP"] in sandbox.fake.member_roles(sandbox.guild.id, buyer)
            db.session.remove()
            db.engine.dispose()
        page = client.get("/").get_data(as_text=True)
        assert "VIP: completed" in page
        assert "VIP: pending" in page
    finally:
        sandbox.fake.stop()
