"""Reason codes: a burst of refusals for one cause gets that cause, and waiting words say whose limit it is.

FakeDiscord keeps Discord's per-server rate limits; each test narrows one to the few requests it needs,
so nothing waits out a ten-second window.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_discord_roles import deliveries
from flask_discord_roles.codes import DELIVERY_CODES, ReasonCode
from tests.shop import Shop

RATE_LIMIT_WORDS = "Waiting for Discord's rate limit."
PACED_WORDS = "Queued behind other role changes for this server; it goes out in a few seconds."


def _legend_above_the_bot(shop: Shop) -> list[str]:
    """A mapped role dragged above the bot's, and four members about to buy it."""
    shop.role("Legend")
    shop.fake.move_role(shop.guild_id, shop.roles["Legend"], 100)
    shop.map("legend", "Legend")
    return [shop.member(name) for name in ("alice", "bob", "carol", "dave")]


def _buy_each(shop: Shop, buyers: list[str]) -> None:
    for number, buyer in enumerate(buyers, 1):
        shop.buy(f"order-{number}", "legend", buyer=buyer, customer=f"customer-{number}")


def test_four_purchases_of_a_role_above_the_bot_in_two_seconds_all_say_role_above_bot(shop: Shop) -> None:
    # A busy server: its role list may be read three times per window (the dashboard read it too).
    shop.fake.set_route_limit("guild", 3, 10.0)
    buyers = _legend_above_the_bot(shop)

    _buy_each(shop, buyers)

    codes = [(row.status, row.reason_code) for row in shop.deliveries()]
    assert codes == [("failed", "role_above_bot")] * 4, (
        f"every refusal has the same cause and must say so, whatever the diagnosis reads met: {codes}"
    )
    assert not shop.fake.rate_limit_hits, "nothing here may provoke a 429 from Discord"


def test_a_refusal_that_cannot_be_read_yet_waits_undiagnosed_rather_than_guessing(shop: Shop) -> None:
    shop.fake.set_route_limit("guild", 0, 10.0)  # no read of the server's roles is possible at all
    (buyer, *_) = _legend_above_the_bot(shop)

    _buy_each(shop, [buyer])

    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("pending", "permissions_undiagnosed"), row.reason
    assert row.next_attempt_at is not None, "it is looked at again by itself"
    assert "could not be read yet" in (row.reason or "")


def test_after_the_owner_fixes_the_order_a_bulk_retry_finds_every_row_and_waits_in_honest_words(
    shop: Shop,
) -> None:
    shop.fake.set_route_limit("guild", 3, 10.0)
    buyers = _legend_above_the_bot(shop)
    _buy_each(shop, buyers)
    shop.fake.move_role(shop.guild_id, shop.roles["Legend"], 1)  # the owner drags it below the bot
    # Discord lets two more role changes through this window: the client learns it from the headers
    # and holds the others back itself, without a 429.
    shop.fake.set_route_limit("member_role", 2, 10.0)

    retried = deliveries.retry_deliveries(shop.store_id, reason_code="role_above_bot")
    shop.db.session.commit()

    assert retried == deliveries.Retried(retried=4, refused={}), (
        "every row refused for the hierarchy is found by its true code"
    )
    rows = shop.deliveries()
    assert sorted(row.status for row in rows) == ["completed", "completed", "pending", "pending"]
    waiting = [row for row in rows if row.status == "pending"]
    assert not shop.fake.rate_limit_hits, "Discord never answered 429 here"
    assert {(row.reason_code, row.reason) for row in waiting} == {("paced", PACED_WORDS)}, (
        "our own pacing is not Discord's rate limit and must not be called that"
    )
    assert {shop.roles_of(buyer) == {"Legend"} for buyer in buyers} == {True, False}


def test_only_a_429_from_discord_is_called_discord_s_rate_limit(shop: Shop) -> None:
    shop.map("vip", "VIP")
    alice, bob = shop.member("alice"), shop.member("bob")
    shop.fake.set_faults(rate_limit_rate=1.0, rate_limit_retry_after=30.0, routes=["member_role"])

    shop.buy("order-1", "vip", buyer=alice)
    shop.buy("order-2", "vip", buyer=bob, customer="customer-2")

    assert shop.fake.rate_limit_hits, "the fake answered the first role change with a 429"
    for row in shop.deliveries():
        assert (row.status, row.reason_code, row.reason) == ("pending", "rate_limited", RATE_LIMIT_WORDS)


def test_every_code_a_delivery_can_carry_is_in_the_catalogue_with_words_for_the_owner() -> None:
    for code in ReasonCode:
        assert code.fix.strip(), f"{code} has no fix"
        assert "/api/" not in code.fix, f"{code}'s fix names a tenant-API path instead of plain words"
    assert {"role_above_bot", "paced", "rate_limited", "permissions_undiagnosed"} <= set(DELIVERY_CODES)


# -- the catalogue is the one source: the docs, OpenAPI and the example dashboard read it -------------


def test_the_troubleshooting_table_is_the_catalogue() -> None:
    from pathlib import Path

    from flask_discord_roles.codes import markdown_table

    page = (Path(__file__).parents[2] / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    assert markdown_table() in page, (
        "docs/troubleshooting.md's reason-code table differs from flask_discord_roles/codes.py: paste the "
        "output of `python -m flask_discord_roles.codes` between its markers"
    )


def test_the_openapi_description_lists_exactly_the_catalogue_s_codes(app: Flask) -> None:
    document = app.test_client().get("/api/v1/tenant/discord/openapi.json").json
    schemas = json_walk(document)
    delivery_enums = [enum for key, enum in schemas if key == "reason_code"]
    assert delivery_enums, "no reason_code with an enum in the OpenAPI description"
    everything = {str(code) for code in ReasonCode}
    for enum in delivery_enums:
        assert set(enum) <= everything, f"codes outside the catalogue: {set(enum) - everything}"
    assert [str(code) for code in ReasonCode if code in DELIVERY_CODES] in delivery_enums


def json_walk(node: Any, key: str | None = None) -> list[tuple[str | None, list[str]]]:
    """Every (property name, enum) under a property's schema, anyOf/nullable unwrapped."""
    found: list[tuple[str | None, list[str]]] = []
    if isinstance(node, dict):
        if "enum" in node and key is not None:
            found.append((key, node["enum"]))
        for name, value in node.items():
            child_key = name if name not in ("anyOf", "properties", "items", "schema") else key
            if isinstance(value, list):
                for item in value:
                    found += json_walk(item, child_key)
            else:
                found += json_walk(value, child_key)
    return found


def test_the_example_dashboard_words_a_reasonless_row_from_the_catalogue() -> None:
    from example_app.dashboard.common import why
    from flask_discord_roles.deliveries import DeliveryInfo

    fields = dict.fromkeys(DeliveryInfo.__dataclass_fields__)
    row = DeliveryInfo(**{**fields, "reason_code": "paced", "reason": None})
    assert why(row) == ReasonCode.PACED.fix
