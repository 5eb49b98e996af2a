"""The role gate: after a server is unlinked, no path changes roles there, and relinking revives nothing.

Each test is one path that used to get past an unlink (a bulk retry, a single retry, ``/claim`` after
the member joined, ``/claim``'s re-sync of a role the member lost), plus a mapping deleted without an
unlink. FakeDiscord is the judge of the roles members hold.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_discord_roles import deliveries, guilds
from tests.api import API_CONFIG, Api, api_for, assert_error
from tests.shop import Shop

URL = "/webhook/discord/interactions/store-1"


# Retries go through the tenant API, and /claim needs the secret claim codes are made with.
pytestmark = pytest.mark.app_settings(API_CONFIG, SECRET_KEY="test secret")


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop, selling VIP."""
    shop.map("vip", "VIP")
    return shop


@pytest.fixture
def api(app: Flask, shop: Shop) -> Api:
    return api_for(app, shop.store_id)


def unlink(shop: Shop) -> None:
    guilds.unlink_guild(shop.store_id, shop.guild_id)
    shop.db.session.commit()


def claim(shop: Shop, user: str) -> None:
    payload = shop.fake.command_payload(shop.bot, shop.guild_id, user, "claim")
    answer = shop.fake.send_interaction(URL, shop.bot, payload, client=shop.app.test_client())
    assert answer.status_code == 200, answer.text


def role_changes(shop: Shop) -> list[tuple[str, str]]:
    return [(call.method, call.path) for call in shop.fake.calls if "/roles/" in call.path]


def a_failure_from_before_the_unlink(shop: Shop) -> tuple[str, Any]:
    """A buyer who was not in the server: the delivery failed with member_not_in_guild; then the
    owner unlinked the server."""
    stranger = shop.fake.create_user("stranger").id
    shop.buy("order-1", "vip", buyer=stranger, customer="c1")
    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("failed", "member_not_in_guild")
    unlink(shop)
    shop.fake.add_member(shop.guild_id, stranger)
    shop.fake.clear_calls()
    return stranger, row


def test_a_bulk_retry_after_an_unlink_refuses_the_servers_failures_and_says_why(shop: Shop, api: Api) -> None:
    stranger, _ = a_failure_from_before_the_unlink(shop)

    answer = api.post("/deliveries/retry", json={}).json
    assert (answer["retried"], answer["refused"]) == (0, {"guild_unlinked": 1}), answer
    assert role_changes(shop) == [], "nothing went to the unlinked server"
    assert shop.roles_of(stranger) == set()
    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("failed", "guild_unlinked"), "the row now says why"


def test_a_single_retry_after_an_unlink_is_refused(shop: Shop, api: Api) -> None:
    stranger, row = a_failure_from_before_the_unlink(shop)

    refused = assert_error(api.post(f"/deliveries/{row.id}/retry"), 422, fields=("status",))
    assert "unlinked" in refused["errors"]["status"][0]
    assert role_changes(shop) == []
    assert shop.roles_of(stranger) == set()


def test_claim_after_joining_an_unlinked_server_gives_nothing(shop: Shop) -> None:
    stranger, _ = a_failure_from_before_the_unlink(shop)
    shop.link(shop.guild_id)  # relinked, even: the failure belongs to the old link

    claim(shop, stranger)
    assert role_changes(shop) == []
    assert shop.roles_of(stranger) == set()


def test_claims_resync_does_not_give_back_a_role_from_before_the_unlink(shop: Shop) -> None:
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice, customer="c1")
    assert shop.roles_of(alice) == {"VIP"}
    unlink(shop)
    shop.fake.remove_member(shop.guild_id, alice)  # left, and lost the role
    shop.fake.add_member(shop.guild_id, alice)
    shop.fake.clear_calls()

    claim(shop, alice)
    assert role_changes(shop) == [], "a completed grant from before the unlink is not re-synced"
    shop.link(shop.guild_id)
    shop.map("vip", "VIP")
    claim(shop, alice)
    assert role_changes(shop) == [], "nor after relinking and mapping again"
    (row,) = shop.deliveries()
    assert row.status == "completed", "the old grant's history is left as it was"


def test_a_manual_assignment_in_an_unlinked_server_is_refused_without_calling_discord(shop: Shop) -> None:
    alice = shop.member("alice")
    unlink(shop)
    shop.fake.clear_calls()

    with pytest.raises(deliveries.ValidationError) as refused:
        deliveries.assign_role(
            shop.store_id, guild_id=shop.guild_id, role_id=shop.roles["VIP"], discord_user_id=alice
        )
    shop.db.session.commit()
    assert set(refused.value.errors) == {"guild_id"}, refused.value.errors
    assert role_changes(shop) == []
    assert shop.deliveries() == [], "nothing was queued"


def test_a_manual_assignment_queued_before_the_unlink_fails_without_calling_discord(shop: Shop) -> None:
    alice = shop.member("alice")
    shop.fake.clear_calls()

    info = deliveries.assign_role(
        shop.store_id, guild_id=shop.guild_id, role_id=shop.roles["VIP"], discord_user_id=alice
    )
    unlink(shop)  # in the same transaction: the row never ran
    assert role_changes(shop) == []
    (row,) = shop.deliveries(id=info.id)
    assert (row.status, row.reason_code) == ("failed", "guild_unlinked")


def test_a_grant_whose_mapping_was_deleted_is_not_given(shop: Shop, app: Flask) -> None:
    alice = shop.member("alice")
    shop.settings(delivery_mode="claim")
    shop.buy("order-1", "vip", buyer=alice, customer="c1")  # waits for /claim
    (mapping,) = guilds.list_mappings(shop.store_id)
    guilds.delete_mapping(shop.store_id, mapping.id)
    shop.db.session.commit()

    claim(shop, alice)
    assert shop.roles_of(alice) == set()
    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("failed", "mapping_removed")


def test_a_refund_after_a_relink_still_takes_back_what_we_gave(shop: Shop) -> None:
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice, customer="c1")
    unlink(shop)
    shop.link(shop.guild_id)
    shop.refund("order-1", customer="c1")
    assert shop.roles_of(alice) == set(), "the server is linked again, and the role was ours"
