"""``/deliveries`` over HTTP: list with filters and cursor paging, read one, retry one, retry many.

Orders go through the real queue (the host's signal, FakeDiscord); each success body is checked against
the operation's own schema in ``/openapi.json``, so the description and the answers cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.test import TestResponse

from flask_discord_roles import order_completed
from flask_discord_roles._runtime.state import get_state
from tests.api import Api, assert_delivery, assert_documented, assert_error
from tests.shop import Shop


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop, selling VIP."""
    shop.map("vip", "VIP")
    return shop


def strangers(shop: Shop, count: int, prefix: str = "stranger") -> list[str]:
    """Discord users who are not in the shop's server: their deliveries fail (member_not_in_guild)."""
    return [shop.fake.create_user(f"{prefix}{n}").id for n in range(count)]


def foreign_delivery(shop: Shop, *, status: str = "failed") -> int:
    """A delivery of another store, queued through the real signal, then marked ``status``."""
    state = get_state(shop.app)
    shop.db.session.add(
        state.models.RoleMapping(
            store_id="store-2", package_id="vip", guild_id=shop.guild_id, role_id=shop.roles["VIP"]
        )
    )
    shop.db.session.commit()
    order_completed.send(
        shop.app,
        store_id="store-2",
        order_id="foreign-order",
        customer_id="customer-1",
        package_ids=["vip"],
        discord_user_id=shop.fake.create_user("foreigner").id,
    )
    shop.db.session.commit()
    model = state.models.Delivery
    row = shop.db.session.scalar(sa.select(model).where(model.store_id == "store-2"))
    assert row is not None
    row.status = status
    row.reason_code = "member_not_in_guild"
    shop.db.session.commit()
    return row.id


def ids(response: TestResponse) -> list[int]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["deliveries"]]


# -- GET /deliveries --------------------------------------------------------------------------------


def test_listing_returns_documented_deliveries_newest_first(shop: Shop, api: Api) -> None:
    buyer = shop.member("alice")
    shop.buy("order-1", "vip", buyer=buyer, customer="alice")
    shop.buy("order-2", "vip", buyer=strangers(shop, 1)[0], customer="bob")

    response = api.get("/deliveries")
    body = assert_documented(api, "get", "/deliveries", response)
    assert set(body) == {"deliveries", "next_cursor"}
    assert body["next_cursor"] is None
    for item in body["deliveries"]:
        assert_delivery(item)
    assert [(d["order_id"], d["status"]) for d in body["deliveries"]] == [
        ("order-2", "failed"),
        ("order-1", "completed"),
    ]
    assert body["deliveries"][0]["reason_code"] == "member_not_in_guild"


def test_cursor_pages_cover_every_row_once_in_order(shop: Shop, api: Api) -> None:
    for n, user in enumerate(strangers(shop, 7)):
        shop.buy(f"order-{n}", "vip", buyer=user, customer=f"c{n}")
    expected = [row.id for row in reversed(shop.deliveries())]

    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = api.get("/deliveries", query_string=query)
        body = response.get_json()
        assert len(body["deliveries"]) <= 3
        seen += ids(response)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
        assert cursor
    assert seen == expected, "no row twice, none missing, newest first"
    assert pages == 3

    # Filters and cursor combine: the cursor carries the position, the query the filters.
    first = api.get("/deliveries", query_string={"limit": 2, "customer_id": "c6"}).get_json()
    assert first["next_cursor"] is None
    assert [d["order_id"] for d in first["deliveries"]] == ["order-6"]


def test_new_rows_arriving_between_pages_do_not_shift_the_pages(shop: Shop, api: Api) -> None:
    for n, user in enumerate(strangers(shop, 4)):
        shop.buy(f"order-{n}", "vip", buyer=user)
    first = api.get("/deliveries", query_string={"limit": 2}).get_json()
    shop.buy("order-late", "vip", buyer=strangers(shop, 1, "late")[0])
    second = api.get("/deliveries", query_string={"limit": 2, "cursor": first["next_cursor"]}).get_json()
    assert [d["order_id"] for d in first["deliveries"] + second["deliveries"]] == [
        "order-3",
        "order-2",
        "order-1",
        "order-0",
    ]


def test_listing_filters_by_each_field(shop: Shop, api: Api) -> None:
    alice = shop.member("alice")
    (stranger,) = strangers(shop, 1)
    shop.buy("order-1", "vip", buyer=alice, customer="alice")
    shop.buy("order-2", "vip", buyer=stranger, customer="stranger")
    other_guild = shop.fake.create_guild("Other Guild")
    shop.fake.add_bot_to_guild(shop.bot, other_guild.id)
    other_role = shop.fake.create_role(other_guild.id, "Other VIP")
    state = get_state(shop.app)
    shop.db.session.add(
        state.models.RoleMapping(
            store_id=shop.store_id, package_id="other", guild_id=other_guild.id, role_id=other_role.id
        )
    )
    shop.db.session.commit()
    shop.buy("order-3", "other", buyer=alice, customer="alice")

    def orders(**query: str) -> list[str | None]:
        response = api.get("/deliveries", query_string=query)
        assert response.status_code == 200, response.get_json()
        return [d["order_id"] for d in response.get_json()["deliveries"]]

    assert orders(status="failed") == ["order-3", "order-2"]  # alice is not in the other guild
    assert orders(status="completed") == ["order-1"]
    assert orders(status="pending") == []
    assert orders(source="auto") == ["order-3", "order-2", "order-1"]
    assert orders(source="manual") == []
    assert orders(customer_id="alice") == ["order-3", "order-1"]
    assert orders(order_id="order-2") == ["order-2"]
    assert orders(discord_user_id=alice) == ["order-3", "order-1"]
    assert orders(guild_id=other_guild.id) == ["order-3"]
    assert orders(guild_id=shop.guild_id, customer_id="alice") == ["order-1"]
    assert orders(status="failed", customer_id="alice", guild_id=other_guild.id) == ["order-3"]
    assert orders(customer_id="nobody") == []


def test_listing_filters_by_a_half_open_date_range(shop: Shop, api: Api) -> None:
    for n, user in enumerate(strangers(shop, 3)):
        shop.buy(f"order-{n}", "vip", buyer=user)
    rows = shop.deliveries()
    base = datetime(2025, 1, 20, 12, 0, tzinfo=UTC)
    for n, row in enumerate(rows):
        shop.set_created_at(row.id, base + timedelta(days=n))  # Jan 20, 21, 22 at noon

    def orders(**query: str) -> list[str | None]:
        response = api.get("/deliveries", query_string=query)
        assert response.status_code == 200, response.get_json()
        return [d["order_id"] for d in response.get_json()["deliveries"]]

    assert orders(created_after="2025-01-21T12:00:00Z") == ["order-2", "order-1"], "after is inclusive"
    assert orders(created_before="2025-01-21T12:00:00Z") == ["order-0"], "before is exclusive"
    assert orders(created_after="2025-01-21T00:00:00Z", created_before="2025-01-22T00:00:00Z") == ["order-1"]
    assert orders(created_after="2025-01-21T13:00:00+01:00", created_before="2025-01-21T12:00:01Z") == [
        "order-1"
    ], "offsets are honoured"
    assert orders(created_after="2025-01-21", created_before="2025-01-22") == ["order-1"], (
        "dates mean UTC midnight"
    )
    assert orders(created_after="2025-01-23T00:00:00Z") == []
    body = api.get(
        "/deliveries", query_string={"created_after": "2025-01-21T12:00:00Z", "created_before": "2025-01-23"}
    ).get_json()
    assert body["deliveries"][0]["created_at"] == "2025-01-22T12:00:00Z"


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"status": "lost"}, ("status",)),
        ({"source": "robot"}, ("source",)),
        ({"limit": "0"}, ("limit",)),
        ({"limit": "101"}, ("limit",)),
        ({"limit": "ten"}, ("limit",)),
        ({"cursor": "not-a-cursor"}, ("cursor",)),
        ({"cursor": "YmVmb3JlOi0x"}, ("cursor",)),  # "before:-1": well encoded, never issued
        ({"cursor": "x" * 200}, ("cursor",)),
        ({"created_after": "yesterday"}, ("created_after",)),
        ({"created_before": "2025-13-01"}, ("created_before",)),
        (
            {"created_after": "2025-01-22T00:00:00Z", "created_before": "2025-01-21T00:00:00Z"},
            ("created_after",),
        ),
        ({"discord_user_id": "alice"}, ("discord_user_id",)),
        ({"guild_id": "12"}, ("guild_id",)),
        ({"customer_id": "c" * 65}, ("customer_id",)),
        ({"order_id": "bad\x00id"}, ("order_id",)),
    ],
)
def test_listing_refuses_bad_query_naming_the_field(
    shop: Shop, api: Api, query: dict[str, str], fields: tuple[str, ...]
) -> None:
    assert_error(api.get("/deliveries", query_string=query), 422, fields=fields)


def test_another_stores_deliveries_never_appear(shop: Shop, api: Api) -> None:
    shop.buy("order-1", "vip", buyer=strangers(shop, 1)[0], customer="customer-1")
    foreign = foreign_delivery(shop)
    for query in ({}, {"status": "failed"}, {"customer_id": "customer-1"}, {"order_id": "foreign-order"}):
        response = api.get("/deliveries", query_string=query)
        assert foreign not in ids(response), query
        assert all(d["store_id"] == shop.store_id for d in response.get_json()["deliveries"])


# -- GET /deliveries/<id> ---------------------------------------------------------------------------


def test_one_delivery_is_returned_with_its_reason(shop: Shop, api: Api) -> None:
    shop.buy("order-1", "vip", buyer=strangers(shop, 1)[0], customer="c1")
    (row,) = shop.deliveries()

    response = api.get(f"/deliveries/{row.id}")
    body = assert_documented(api, "get", "/deliveries/{delivery_id}", response)
    assert set(body) == {"delivery"}
    assert_delivery(body["delivery"])
    assert (body["delivery"]["id"], body["delivery"]["status"]) == (row.id, "failed")
    assert "join" in body["delivery"]["reason"], "the reason tells the owner what to do"


def test_an_unknown_or_foreign_delivery_is_not_found(shop: Shop, api: Api) -> None:
    foreign = foreign_delivery(shop)
    assert_error(api.get(f"/deliveries/{foreign}"), 404)
    assert_error(api.get("/deliveries/999999"), 404)
    assert_error(api.get(f"/deliveries/{2**64}"), 404)  # beyond BIGINT: never reaches the database


# -- POST /deliveries/<id>/retry --------------------------------------------------------------------


def test_retrying_a_failed_delivery_delivers_it_once_the_member_joined(shop: Shop, api: Api) -> None:
    (late,) = strangers(shop, 1, "late")
    shop.buy("order-1", "vip", buyer=late)
    (row,) = shop.deliveries()
    assert row.status == "failed"
    shop.fake.add_member(shop.guild_id, late)

    response = api.post(f"/deliveries/{row.id}/retry")
    body = assert_documented(api, "post", "/deliveries/{delivery_id}/retry", response)
    assert set(body) == {"message", "delivery"}
    assert isinstance(body["message"], str)
    assert body["message"]
    assert_delivery(body["delivery"])
    assert (body["delivery"]["status"], body["delivery"]["attempts"]) == ("pending", 0)

    assert shop.roles_of(late) == {"VIP"}, "the retry ran after the commit"
    (row,) = shop.deliveries()
    assert row.status == "completed"
    assert api.get(f"/deliveries/{row.id}").get_json()["delivery"]["status"] == "completed"


def test_retrying_what_cannot_be_retried_is_refused(shop: Shop, api: Api) -> None:
    shop.buy("order-1", "vip", buyer=shop.member("alice"))
    (completed,) = shop.deliveries()
    assert_error(api.post(f"/deliveries/{completed.id}/retry"), 422, fields=("status",))
    assert_error(api.post("/deliveries/999999/retry"), 404)
    foreign = foreign_delivery(shop)
    assert_error(api.post(f"/deliveries/{foreign}/retry"), 404)
    shop.db.session.expire_all()
    model = get_state(shop.app).models.Delivery
    assert shop.db.session.get(model, foreign).status == "failed", "the other store's row is untouched"


# -- POST /deliveries/retry -------------------------------------------------------------------------


def test_retrying_all_matching_failures_touches_only_those(shop: Shop, api: Api) -> None:
    users = strangers(shop, 3)
    for n, user in enumerate(users):
        shop.buy(f"order-{n}", "vip", buyer=user, customer=f"c{n}")
    shop.buy("order-ok", "vip", buyer=shop.member("alice"), customer="alice")
    for user in users:
        shop.fake.add_member(shop.guild_id, user)
    foreign = foreign_delivery(shop)

    response = api.post("/deliveries/retry", json={"customer_id": "c0", "reason_code": "member_not_in_guild"})
    body = assert_documented(api, "post", "/deliveries/retry", response)
    assert set(body) == {"message", "retried", "refused"}
    assert body["retried"] == 1
    assert [shop.roles_of(user) for user in users] == [{"VIP"}, set(), set()]

    assert api.post("/deliveries/retry", json={"order_id": "order-9"}).get_json()["retried"] == 0
    assert api.post("/deliveries/retry", json={"guild_id": shop.guild_id}).get_json()["retried"] == 2
    assert [shop.roles_of(user) for user in users] == [{"VIP"}] * 3
    assert sorted(row.status for row in shop.deliveries()) == ["completed"] * 4
    model = get_state(shop.app).models.Delivery
    assert shop.db.session.get(model, foreign).status == "failed", "another store's failures stay"


def test_retrying_with_no_body_retries_every_failure_and_expired_on_request(shop: Shop, api: Api) -> None:
    users = strangers(shop, 2)
    for n, user in enumerate(users):
        shop.buy(f"order-{n}", "vip", buyer=user)
    _, second = shop.deliveries()
    model = get_state(shop.app).models.Delivery
    shop.db.session.execute(sa.update(model).where(model.id == second.id).values(status="expired"))
    shop.db.session.commit()

    assert api.post("/deliveries/retry").get_json()["retried"] == 1, "only failed by default"
    assert api.post("/deliveries/retry", json={"status": "expired"}).get_json()["retried"] == 1
    assert [row.status for row in shop.deliveries()] == ["failed", "failed"], (
        "still not members: failed again"
    )


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"status": "pending"}, ("status",)),
        ({"status": "completed"}, ("status",)),
        ({"source": "robot"}, ("source",)),
        ({"customer": "c0"}, ("customer",)),  # misspelt: would otherwise retry everything
        ({"discord_user_id": 42}, ("discord_user_id",)),
        ({"guild_id": "guild"}, ("guild_id",)),
        ({"customer_id": ""}, ("customer_id",)),
        ({"reason_code": ["member_not_in_guild"]}, ("reason_code",)),
    ],
)
def test_retrying_all_refuses_bad_filters(
    shop: Shop, api: Api, body: dict[str, Any], fields: tuple[str, ...]
) -> None:
    assert_error(api.post("/deliveries/retry", json=body), 422, fields=fields)


def test_retrying_all_refuses_a_body_that_is_not_an_object(shop: Shop, api: Api) -> None:
    assert_error(api.post("/deliveries/retry", json=["failed"]), 422, fields=("body",))
