"""One way to give or take a role by hand: ``deliveries.assign_role`` / ``remove_role``. The former
``customers`` twins still work, warn that they are deprecated, and go through the same rules."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import customers, deliveries
from flask_discord_roles.testing import FakeDiscord
from tests.shop import open_shop


def test_the_deprecated_customers_twins_warn_and_give_and_take_the_role(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    shop = open_shop(app, db, fake_discord)
    shop.map("vip", "VIP")
    member = shop.member("alice")

    with pytest.warns(DeprecationWarning, match=r"deliveries\.assign_role") as warned:
        given = customers.assign_role(
            shop.store_id,
            "customer-1",
            guild_id=shop.guild_id,
            role_id=shop.roles["VIP"],
            discord_user_id=member,
        )
    assert warned[0].filename == __file__, "the warning points at the caller, not at the library"
    assert (given.source, given.action, given.customer_id) == ("manual", "add", "customer-1")
    assert given.role_name == "VIP", "the role's name comes from the store's mapping, as for deliveries"
    shop.db.session.commit()
    assert shop.roles_of(member) == {"VIP"}

    with pytest.warns(DeprecationWarning, match=r"deliveries\.remove_role"):
        customers.remove_role(shop.store_id, "customer-1", guild_id=shop.guild_id, role_id=shop.roles["VIP"])
    shop.db.session.commit()
    assert shop.roles_of(member) == set(), "taken from whoever the customer's latest delivery went to"


def test_a_change_by_hand_needs_a_discord_user_or_a_customer(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    shop = open_shop(app, db, fake_discord)
    with pytest.raises(deliveries.ValidationError) as refused:
        deliveries.assign_role(shop.store_id, guild_id=shop.guild_id, role_id=shop.role("Helper"))
    assert set(refused.value.errors) == {"discord_user_id"}, refused.value.errors
    shop.db.session.commit()
    assert shop.deliveries() == [], "nothing was queued"


def test_a_change_by_hand_in_a_server_the_store_has_not_linked_is_refused(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    shop = open_shop(app, db, fake_discord)
    member = shop.member("alice")
    elsewhere = fake_discord.create_guild("Another Guild").id
    with pytest.raises(deliveries.ValidationError) as refused:
        deliveries.remove_role(
            shop.store_id, guild_id=elsewhere, role_id=shop.role("Helper"), discord_user_id=member
        )
    assert refused.value.errors == {
        "guild_id": ["That server is not linked to this store. Link it with /link first."]
    }
    shop.db.session.commit()
    assert shop.deliveries() == [], "nothing was queued"
