"""Tier groups and sticky roles, told as a member's story: upgrades swap, lapses fall back, sticky stays.

Bronze < Silver < Gold are one group ("membership"); a purchase of a higher tier gives its role first
and only then takes back the lower one we gave; when the higher grant ends the next one comes back.
FakeDiscord over HTTP is the judge of what the member holds and of the order of the calls.
"""

from __future__ import annotations

import pytest

from flask_discord_roles import deliveries
from flask_discord_roles._core.queue import order_delivery_key, revoke_order
from flask_discord_roles._engine.worker import run_now
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.codes import ReasonCode
from flask_discord_roles.orders import OrderEvent
from tests.shop import Shop

ROLE_CHANGE = r"/guilds/\d+/members/\d+/roles/\d+$"


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop selling three tiers of one group, a sticky supporter badge and a plain VIP
    package that also grants Bronze."""
    for rank, tier in enumerate(("bronze", "silver", "gold"), start=1):
        shop.map(tier, tier.title(), group="membership", rank=rank)
    shop.map("supporter", "Supporter", keep_on_end=True)
    shop.map("vip", "Bronze")  # the same role outside any group
    return shop


def role_changes(shop: Shop) -> list[tuple[str, str]]:
    """Every successful role PUT and DELETE, in the order Discord received them, by role name."""
    names = {role_id: name for name, role_id in shop.roles.items()}
    calls = shop.fake.calls_to("PUT", ROLE_CHANGE) + shop.fake.calls_to("DELETE", ROLE_CHANGE)
    ordered = sorted((c for c in calls if c.status == 204), key=lambda call: shop.fake.calls.index(call))
    return [(call.method, names[call.path.rsplit("/", 1)[1]]) for call in ordered]


def test_an_upgrade_gives_the_higher_tier_then_takes_back_the_lower(shop: Shop) -> None:
    alice = shop.member("alice")
    shop.buy("order-1", "bronze", buyer=alice)
    shop.buy("order-2", "gold", buyer=alice)

    assert shop.roles_of(alice) == {"Gold"}
    assert role_changes(shop) == [("PUT", "Bronze"), ("PUT", "Gold"), ("DELETE", "Bronze")], (
        "the lower tier goes only after the higher one was given"
    )
    (removal,) = shop.deliveries(action="remove")
    assert (removal.status, removal.reason_code) == ("completed", ReasonCode.TIER_REPLACED)
    audit = [entry.get("reason") or "" for entry in shop.fake.audit_log(shop.guild_id)]
    assert "replaced by a higher tier" in audit[-1], audit


def test_when_the_higher_tier_lapses_the_next_one_comes_back(shop: Shop) -> None:
    alice = shop.member("alice")
    shop.buy("order-1", "bronze", buyer=alice)
    shop.buy("order-2", "silver", buyer=alice)
    shop.buy("order-3", "gold", buyer=alice)
    assert shop.roles_of(alice) == {"Gold"}

    shop.refund("order-3")
    assert shop.roles_of(alice) == {"Silver"}, "the highest tier still paid for comes back"
    (restore,) = [row for row in shop.deliveries(action="add") if ":restore:" in row.idempotency_key]
    assert restore.idempotency_key.startswith(
        order_delivery_key("order-2", "silver", shop.guild_id, restore.role_id)
    )
    assert (restore.status, restore.role_was_present) == ("completed", False)

    shop.refund("order-2")
    assert shop.roles_of(alice) == {"Bronze"}, "revoking the restored tier's order finds its restore"
    shop.refund("order-1")
    assert shop.roles_of(alice) == set()
    shop.refund("order-1")  # refunding again, or settling again, queues nothing new
    assert len(shop.deliveries()) == len({row.idempotency_key for row in shop.deliveries()})


def test_buying_a_lower_tier_while_holding_a_higher_one_changes_nothing_until_the_higher_ends(
    shop: Shop,
) -> None:
    alice = shop.member("alice")
    shop.buy("order-1", "gold", buyer=alice)
    shop.fake.clear_calls()

    shop.buy("order-2", "silver", buyer=alice)
    (silver,) = shop.deliveries(order_id="order-2")
    assert (silver.status, silver.reason_code, silver.role_was_present) == (
        "completed",
        ReasonCode.OUTRANKED,
        None,
    )
    assert shop.fake.calls_to("PUT", ROLE_CHANGE) == [], "an outranked tier is not given at all"
    assert shop.roles_of(alice) == {"Gold"}

    shop.refund("order-1")
    assert shop.roles_of(alice) == {"Silver"}, "the outranked tier is given once the higher one ends"


def test_an_expired_higher_tier_falls_back_like_a_refund(shop: Shop) -> None:
    alice = shop.member("alice")
    shop.buy("order-1", "bronze", buyer=alice)
    shop.buy("order-2", "gold", buyer=alice)
    state = get_state(shop.app)
    # What the grants' expiry sweep does when a grant's time (and grace) ran out.
    event = OrderEvent(store_id=shop.store_id, order_id="order-2", package_ids=("gold",))
    queued = revoke_order(state, event, reason_code=ReasonCode.GRANT_EXPIRED)
    shop.db.session.commit()
    run_now(shop.app, queued.due, [])
    assert shop.roles_of(alice) == {"Bronze"}


def test_a_sticky_role_stays_after_a_refund_and_after_expiry(shop: Shop) -> None:
    alice, bob = shop.member("alice"), shop.member("bob")
    shop.buy("order-1", "supporter", buyer=alice)
    shop.buy("order-2", "supporter", buyer=bob, customer="customer-2")
    shop.refund("order-1")
    event = OrderEvent(store_id=shop.store_id, order_id="order-2", customer_id="customer-2")
    revoke_order(get_state(shop.app), event, reason_code=ReasonCode.GRANT_EXPIRED)
    shop.db.session.commit()

    assert (shop.roles_of(alice), shop.roles_of(bob)) == ({"Supporter"}, {"Supporter"})
    kept = shop.deliveries(action="remove")
    assert [(row.status, row.reason_code) for row in kept] == [("completed", ReasonCode.KEPT_ON_END)] * 2
    assert shop.fake.calls_to("DELETE", ROLE_CHANGE) == []

    deliveries.remove_role(
        shop.store_id, guild_id=shop.guild_id, role_id=shop.roles["Supporter"], discord_user_id=alice
    )
    shop.db.session.commit()
    assert shop.roles_of(alice) == set(), "the store owner's hand still takes a sticky role"


def test_a_lower_tier_also_granted_outside_the_group_stays(shop: Shop) -> None:
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)  # Bronze, through a package in no group
    shop.buy("order-2", "bronze", buyer=alice)
    shop.buy("order-3", "gold", buyer=alice)
    assert shop.roles_of(alice) == {"Bronze", "Gold"}, "the VIP purchase still grants Bronze"
    assert shop.fake.calls_to("DELETE", ROLE_CHANGE) == []


def test_a_tier_the_member_held_before_us_is_never_taken(shop: Shop) -> None:
    alice = shop.member("alice", roles=("Bronze",))
    shop.buy("order-1", "bronze", buyer=alice)
    shop.buy("order-2", "gold", buyer=alice)
    assert shop.roles_of(alice) == {"Bronze", "Gold"}
    assert shop.fake.calls_to("DELETE", ROLE_CHANGE) == []


def test_taking_the_higher_tier_by_hand_gives_the_next_one_back(shop: Shop) -> None:
    alice = shop.member("alice")
    shop.buy("order-1", "bronze", buyer=alice)
    shop.buy("order-2", "gold", buyer=alice)
    deliveries.remove_role(
        shop.store_id, guild_id=shop.guild_id, role_id=shop.roles["Gold"], discord_user_id=alice
    )
    shop.db.session.commit()
    assert shop.roles_of(alice) == {"Bronze"}
