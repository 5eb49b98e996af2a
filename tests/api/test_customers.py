"""``/customers/<customer_id>`` over HTTP: a customer's link and roles, and roles given or taken by hand.

FakeDiscord is the judge of what a manual change did; each success body is checked against the
operation's schema in ``/openapi.json``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from flask_discord_roles import order_completed
from flask_discord_roles._core.customers import role_status
from flask_discord_roles._runtime.state import get_state
from tests.api import Api, assert_delivery, assert_documented, assert_error
from tests.shop import Shop

ACCESS_TOKEN = "oauth-access-token-of-the-customer"
REFRESH_TOKEN = "oauth-refresh-token-of-the-customer"


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop, selling VIP in its linked server."""
    shop.map("vip", "VIP")
    shop.link()
    return shop


def link_account(shop: Shop, customer_id: str, user_id: str, *, store_id: str = "store-1") -> None:
    """The customer linked Discord (as the OAuth flow records it), tokens encrypted."""
    state = get_state(shop.app)
    shop.db.session.add(
        state.models.DiscordAccount(
            store_id=store_id,
            customer_id=customer_id,
            discord_user_id=user_id,
            username="alice",
            global_name="Alice",
            avatar="a1b2c3",
            access_token_ciphertext=state.cipher.encrypt(ACCESS_TOKEN),
            refresh_token_ciphertext=state.cipher.encrypt(REFRESH_TOKEN),
            scopes="identify",
        )
    )
    shop.db.session.commit()


def roles_by_name(body: dict[str, Any]) -> dict[str | None, str]:
    return {role["role_name"]: role["status"] for role in body["roles"]}


# -- GET /customers/<customer_id> -------------------------------------------------------------------


def test_a_customer_we_never_saw_is_unlinked_with_no_roles(shop: Shop, api: Api) -> None:
    response = api.get("/customers/never-seen")
    body = assert_documented(api, "get", "/customers/{customer_id}", response)
    assert body == {
        "customer_id": "never-seen",
        "discord": {
            "linked": False,
            "discord_user_id": None,
            "username": None,
            "avatar_url": None,
            "linked_at": None,
        },
        "roles": [],
        "counts": {"pending": 0, "completed": 0, "failed": 0, "expired": 0},
    }


def test_a_linked_customer_shows_the_account_and_each_role_in_words(shop: Shop, api: Api) -> None:
    for name in ("Gold", "Silver", "Gift"):
        shop.map(name.lower(), name)
    # Bought before linking: waits for the customer.
    shop.buy("order-0", "gold", buyer=None, customer="alice")
    alice = shop.member("alice")
    link_account(shop, "alice", alice)
    shop.buy("order-1", "vip", buyer=None, customer="alice")  # the linked account receives it
    shop.buy("order-2", "silver", buyer=None, customer="alice")
    shop.refund("order-2", customer="alice")
    shop.buy("order-3", "gift", buyer=shop.fake.create_user("friend").id, customer="alice")  # not a member

    response = api.get("/customers/alice")
    body = assert_documented(api, "get", "/customers/{customer_id}", response)
    assert set(body) == {"customer_id", "discord", "roles", "counts"}
    discord = body["discord"]
    assert discord["linked"] is True
    assert discord["discord_user_id"] == alice
    assert discord["username"] == "alice"
    assert discord["avatar_url"] == f"{shop.fake.cdn_url}/avatars/{alice}/a1b2c3.png"
    assert discord["linked_at"].endswith("Z")
    assert roles_by_name(body) == {"Gold": "pending", "VIP": "held", "Silver": "removed", "Gift": "failed"}
    gift = next(role for role in body["roles"] if role["role_name"] == "Gift")
    assert gift["reason_code"] == "member_not_in_guild"
    assert (gift["guild_id"], gift["role_id"]) == (shop.guild_id, shop.roles["Gift"])
    silver = next(role for role in body["roles"] if role["role_name"] == "Silver")
    assert silver["delivery_id"] == shop.deliveries(action="remove")[0].id, "the latest delivery of the role"
    assert body["counts"] == {"pending": 1, "completed": 3, "failed": 1, "expired": 0}
    assert ACCESS_TOKEN.encode() not in response.data
    assert REFRESH_TOKEN.encode() not in response.data
    assert b"ciphertext" not in response.data


def test_a_role_another_purchase_still_grants_stays_held_after_a_refund(shop: Shop, api: Api) -> None:
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice, customer="alice")
    shop.buy("order-2", "vip", buyer=alice, customer="alice")
    shop.refund("order-1", customer="alice")
    assert shop.roles_of(alice) == {"VIP"}

    body = api.get("/customers/alice").get_json()
    assert roles_by_name(body) == {"VIP": "held"}
    assert body["discord"]["linked"] is False, "bought with a Discord id, never linked"


def test_expired_roles_and_other_stores_rows(shop: Shop, api: Api) -> None:
    shop.buy("order-1", "vip", buyer=None, customer="alice")
    model = get_state(shop.app).models.Delivery
    shop.db.session.execute(sa.update(model).values(status="expired", reason_code="claim_expired"))
    shop.db.session.commit()
    # The same customer id in another store is another person.
    state = get_state(shop.app)
    shop.db.session.add(
        state.models.RoleMapping(
            store_id="store-2", package_id="vip", guild_id=shop.guild_id, role_id="1" * 18
        )
    )
    shop.db.session.commit()
    order_completed.send(
        shop.app,
        store_id="store-2",
        order_id="o",
        customer_id="alice",
        package_ids=["vip"],
        discord_user_id=None,
    )
    shop.db.session.commit()
    link_account(shop, "alice", shop.fake.create_user("other").id, store_id="store-2")

    body = api.get("/customers/alice").get_json()
    assert body["discord"]["linked"] is False
    assert [(r["role_id"], r["status"], r["reason_code"]) for r in body["roles"]] == [
        (shop.roles["VIP"], "expired", "claim_expired")
    ]
    assert body["counts"] == {"pending": 0, "completed": 0, "failed": 0, "expired": 1}


@pytest.mark.parametrize(
    ("action", "status", "reason_code", "expected"),
    [
        ("add", "completed", None, "held"),
        ("add", "pending", None, "pending"),
        ("add", "failed", "role_above_bot", "failed"),
        ("add", "expired", "order_revoked", "expired"),
        ("remove", "completed", None, "removed"),
        ("remove", "completed", "still_granted", "held"),
        ("remove", "pending", None, "removal_pending"),
        ("remove", "failed", "missing_manage_roles", "failed"),
    ],
)
def test_the_latest_delivery_of_a_role_says_where_it_stands(
    action: str, status: str, reason_code: str | None, expected: str
) -> None:
    row: Any = SimpleNamespace(action=action, status=status, reason_code=reason_code)
    assert role_status(row) == expected


def test_a_customer_id_longer_than_the_hosts_ids_is_refused(shop: Shop, api: Api) -> None:
    assert_error(api.get("/customers/" + "c" * 65), 422, fields=("customer_id",))


# -- POST /customers/<customer_id>/roles ------------------------------------------------------------


def test_assigning_by_hand_gives_the_linked_account_the_role(shop: Shop, api: Api) -> None:
    alice = shop.member("alice")
    link_account(shop, "alice", alice)

    response = api.post(
        "/customers/alice/roles", json={"guild_id": shop.guild_id, "role_id": shop.roles["VIP"]}
    )
    assert response.status_code == 202, response.get_json()
    body = assert_documented(api, "post", "/customers/{customer_id}/roles", response)
    assert set(body) == {"message", "delivery"}
    assert isinstance(body["message"], str)
    assert body["message"]
    delivery = body["delivery"]
    assert_delivery(delivery)
    assert (delivery["action"], delivery["source"], delivery["customer_id"]) == ("add", "manual", "alice")
    assert (delivery["discord_user_id"], delivery["role_name"]) == (alice, "VIP"), "name from the mapping"

    assert shop.roles_of(alice) == {"VIP"}, "carried out right after the commit"
    status = api.get("/customers/alice").get_json()
    assert status["roles"] == [
        {
            "guild_id": shop.guild_id,
            "role_id": shop.roles["VIP"],
            "role_name": "VIP",
            "status": "held",
            "delivery_id": delivery["id"],
            "reason_code": None,
            "updated_at": status["roles"][0]["updated_at"],
        }
    ]


def test_assigning_to_a_given_discord_user_needs_no_link(shop: Shop, api: Api) -> None:
    shop.role("Unmapped")
    bob = shop.member("bob")
    response = api.post(
        "/customers/bob/roles",
        json={
            "guild_id": shop.guild_id,
            "role_id": shop.roles["Unmapped"],
            "discord_user_id": bob,
            "role_name": "Fan",
        },
    )
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["delivery"]["role_name"] == "Fan"
    assert shop.roles_of(bob) == {"Unmapped"}


def test_an_assignment_discord_refuses_shows_as_failed_with_the_reason(shop: Shop, api: Api) -> None:
    stranger = shop.fake.create_user("stranger").id
    response = api.post(
        "/customers/c1/roles",
        json={"guild_id": shop.guild_id, "role_id": shop.roles["VIP"], "discord_user_id": stranger},
    )
    assert response.status_code == 202
    delivery = api.get(f"/deliveries/{response.get_json()['delivery']['id']}").get_json()["delivery"]
    assert (delivery["status"], delivery["reason_code"]) == ("failed", "member_not_in_guild")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ("guild_id", "role_id")),
        ({"guild_id": "my-server", "role_id": "VIP"}, ("guild_id", "role_id")),
        ({"guild_id": 123456789012345678, "role_id": "123456789012345678"}, ("guild_id",)),
        ({"role_id": "123456789012345678", "discord_user_id": "alice"}, ("guild_id", "discord_user_id")),
        ({"role_id": "123456789012345678", "role_name": "x" * 101}, ("guild_id", "role_name")),
    ],
)
def test_assigning_refuses_malformed_ids(
    shop: Shop, api: Api, body: dict[str, Any], fields: tuple[str, ...]
) -> None:
    assert_error(api.post("/customers/alice/roles", json=body), 422, fields=fields)


def test_assigning_needs_a_discord_user(shop: Shop, api: Api) -> None:
    body = assert_error(
        api.post("/customers/alice/roles", json={"guild_id": shop.guild_id, "role_id": shop.roles["VIP"]}),
        422,
        fields=("discord_user_id",),
    )
    assert "link Discord or give the user id" in body["errors"]["discord_user_id"][0]
    assert shop.deliveries() == [], "nothing was queued"


def test_assigning_in_a_server_not_linked_to_this_store_is_refused(shop: Shop, api: Api) -> None:
    alice = shop.member("alice")
    link_account(shop, "alice", alice)
    elsewhere = shop.fake.create_guild("Another store's guild")
    state = get_state(shop.app)
    shop.db.session.add(state.models.LinkedGuild(store_id="store-2", guild_id=elsewhere.id))
    shop.db.session.commit()
    for guild_id in (elsewhere.id, "123456789012345678"):
        response = api.post(
            "/customers/alice/roles", json={"guild_id": guild_id, "role_id": shop.roles["VIP"]}
        )
        assert_error(response, 422, fields=("guild_id",))
    assert shop.deliveries() == []


def test_assigning_refuses_a_body_that_is_not_an_object(shop: Shop, api: Api) -> None:
    assert_error(api.post("/customers/alice/roles", json=[shop.guild_id]), 422, fields=("body",))


# -- DELETE /customers/<customer_id>/roles/<guild_id>/<role_id> -------------------------------------


def test_removing_by_hand_takes_the_role_from_the_linked_account(shop: Shop, api: Api) -> None:
    alice = shop.member("alice")
    link_account(shop, "alice", alice)
    shop.buy("order-1", "vip", buyer=None, customer="alice")
    assert shop.roles_of(alice) == {"VIP"}

    response = api.delete(f"/customers/alice/roles/{shop.guild_id}/{shop.roles['VIP']}")
    assert response.status_code == 202, response.get_json()
    body = assert_documented(api, "delete", "/customers/{customer_id}/roles/{guild_id}/{role_id}", response)
    assert set(body) == {"message", "delivery"}
    assert_delivery(body["delivery"])
    assert (body["delivery"]["action"], body["delivery"]["source"]) == ("remove", "manual")
    assert body["delivery"]["discord_user_id"] == alice

    assert shop.roles_of(alice) == set()
    assert roles_by_name(api.get("/customers/alice").get_json()) == {"VIP": "removed"}


def test_removing_without_a_link_uses_the_given_user_or_whoever_holds_it(shop: Shop, api: Api) -> None:
    alice, bob = shop.member("alice"), shop.member("bob")
    shop.buy("order-1", "vip", buyer=alice, customer="alice")
    shop.buy("order-2", "vip", buyer=bob, customer="bob")
    path = f"/roles/{shop.guild_id}/{shop.roles['VIP']}"

    assert api.delete(f"/customers/alice{path}").status_code == 202, "alice's delivery went to alice"
    assert (shop.roles_of(alice), shop.roles_of(bob)) == (set(), {"VIP"})

    response = api.delete(f"/customers/carol{path}", query_string={"discord_user_id": bob})
    assert response.status_code == 202
    assert shop.roles_of(bob) == set()


@pytest.mark.parametrize(
    ("path", "query", "fields"),
    [
        ("/customers/alice/roles/my-server/{role}", {}, ("guild_id",)),
        ("/customers/alice/roles/{guild}/VIP", {}, ("role_id",)),
        ("/customers/alice/roles/{guild}/{role}", {"discord_user_id": "alice"}, ("discord_user_id",)),
        ("/customers/alice/roles/123456789012345678/{role}", {}, ("guild_id",)),
        ("/customers/nobody/roles/{guild}/{role}", {}, ("discord_user_id",)),
    ],
)
def test_removing_refuses_what_cannot_be_removed(
    shop: Shop, api: Api, path: str, query: dict[str, str], fields: tuple[str, ...]
) -> None:
    alice = shop.member("alice")
    link_account(shop, "alice", alice)
    url = path.format(guild=shop.guild_id, role=shop.roles["VIP"])
    assert_error(api.delete(url, query_string=query), 422, fields=fields)
    assert shop.deliveries() == []
