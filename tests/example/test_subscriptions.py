"""The example storefront's subscriptions and tiers, and the dashboard's grants, tier and backfill views.

The demo runs for real (FakeDiscord, the storefront on a port, seeded with the monthly Member package and
the Bronze < Silver < Gold tier group); ``requests`` sessions play the customer and the owner. FakeDiscord
is the judge of what reached Discord. The browser tests click the same journeys in Chromium.
"""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from example_app import db
from example_app.demo import GRACE_HOURS, TIER_GROUP, Demo
from example_app.models import Package, Subscription
from flask_discord_roles import grants, guilds
from tests.example.shopper import Shopper, member_roles

pytestmark = pytest.mark.app_settings(
    WTF_CSRF_ENABLED=False,  # requests plays the browser
    DISCORD_ROLES_EXECUTOR="inline",  # a role change is done when the request that queued it is
)

ROLE_CHANGES = r"/guilds/\d+/members/\d+/roles/\d+"


@pytest.fixture
def demo(demo: Demo) -> Demo:
    """The folder's demo, where consent needs no click (consent is clicked in the browser tests)."""
    demo.sandbox.fake.interactive_consent = False
    return demo


def words(response_text: str) -> str:
    """What a person reads on the page: no tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response_text)).split())


def package_id(demo: Demo, name: str) -> int:
    with demo.app.app_context():
        found: int = db.session.scalars(sa.select(Package.id).where(Package.name == name)).one()
        db.session.remove()
        return found


def only_subscription(demo: Demo, package: str) -> Subscription:
    with demo.app.app_context():
        subscription: Subscription = db.session.scalars(
            sa.select(Subscription).join(Package).where(Package.name == package)
        ).one()
        db.session.expunge(subscription)
        db.session.remove()
        return subscription


def grants_of(demo: Demo, customer: Shopper) -> list[grants.GrantInfo]:
    with demo.app.app_context():
        found = grants.list_grants(demo.app.config["STORE_ID"], customer_id=customer.customer_id)
        db.session.remove()
        return found


def test_subscribe_renew_cancel_and_the_role_lapses_after_the_paid_period_and_grace(demo: Demo) -> None:
    fake = demo.sandbox.fake
    alice = Shopper(demo, "alice@example.com")
    alice.link_discord("alice")
    checkout = words(alice.get(f"/checkout/{package_id(demo, 'Member')}").text)
    assert "Subscribe $3.00 / 30 days" in checkout, "a monthly package is subscribed to, per period"

    alice.buy("Member")
    assert member_roles(demo, "alice") == {"Member"}, "subscribing gives the role at once"
    subscription = only_subscription(demo, "Member")
    (grant,) = grants_of(demo, alice)
    assert grant.subscription_id == subscription.discord_roles_id, "the shop's subscription id is the grant's"
    assert grant.expires_at == subscription.paid_until, "the grant runs to the paid period's end"
    account = words(alice.get("/account").text)
    assert "Active until" in account, f"My orders shows the subscription's role: {account[:400]}"
    assert "Renew now" in account, f"My orders offers to renew: {account[:400]}"

    fake.clear_calls()
    renewed = alice.post(f"/subscriptions/{subscription.id}/renew")
    assert "Renewed Member until" in words(renewed.text)
    assert fake.calls_to("PUT", ROLE_CHANGES) + fake.calls_to("DELETE", ROLE_CHANGES) == [], (
        "a renewal changes no role at Discord"
    )
    (grant,) = grants_of(demo, alice)
    renewed_until = only_subscription(demo, "Member").paid_until
    assert (grant.renewals, grant.expires_at) == (1, renewed_until), "the renewal moved the grant's end"
    assert renewed_until > subscription.paid_until

    someone_else = Shopper(demo, "bob@example.com")
    assert someone_else.post(f"/subscriptions/{subscription.id}/renew").status_code == 404
    assert someone_else.post(f"/subscriptions/{subscription.id}/cancel").status_code == 404

    cancelled = alice.post(f"/subscriptions/{subscription.id}/cancel").text
    assert "will not renew" in words(cancelled), words(cancelled)[:400]
    assert 'class="primary renew"' not in cancelled, "a cancelled subscription offers no renewal"
    assert "A renewal: the subscription's roles continue" in words(cancelled), "the renewal order says so"
    assert alice.post(f"/subscriptions/{subscription.id}/renew").text.count("no longer renews") == 1
    assert member_roles(demo, "alice") == {"Member"}, "cancelling keeps the role until the period ends"
    (grant,) = grants_of(demo, alice)
    assert grant.ends_at is not None
    assert grant.expires_at is not None
    assert (grant.ends_at - grant.expires_at).total_seconds() == GRACE_HOURS * 3600, "the store's grace"

    owner = Shopper(demo, "owner@example.com")
    customer_page = words(owner.get(f"/dashboard/customers/{alice.customer_id}").text)
    assert "Skip to its end" in customer_page, f"the demo clock is offered: {customer_page[:600]}"
    assert subscription.discord_roles_id in customer_page, "the customer's grants list the subscription"
    swept = words(
        owner.post(
            "/dashboard/demo-clock/sweep",
            {"customer_id": alice.customer_id, "at": grant.ends_at.isoformat()},
        ).text
    )
    assert "Demo clock: ran the expiry sweep" in swept, swept[:400]
    assert member_roles(demo, "alice") == set(), "after the paid period and the grace, the role is removed"
    (grant,) = grants_of(demo, alice)
    assert (grant.status, grant.end_reason) == ("ended", "expired")
    assert "Ended" in words(alice.get("/account").text), "My orders shows the subscription ended"

    demo.app.config["DEMO_CLOCK"] = False
    hidden = owner.post("/dashboard/demo-clock/sweep", {"customer_id": "1", "at": grant.ends_at.isoformat()})
    assert hidden.status_code == 404, "without DEMO_CLOCK the demo's clock is not part of the dashboard"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_tier_upgrade_swaps_roles_and_the_dashboard_shows_tiers_and_backfill_progress(demo: Demo) -> None:
    alice = Shopper(demo, "alice@example.com")
    alice.link_discord("alice")
    alice.buy("Bronze")
    assert member_roles(demo, "alice") == {"Bronze"}
    alice.buy("Silver")
    assert member_roles(demo, "alice") == {"Silver"}, "an upgrade adds Silver and removes the Bronze we gave"

    owner = Shopper(demo, "owner@example.com")
    mappings = words(owner.get("/dashboard/mappings").text)
    for rank, tier in enumerate(("Bronze", "Silver", "Gold"), start=1):
        assert f"{TIER_GROUP} #{rank}" in mappings, f"{tier}'s mapping shows its group and rank"

    refused = words(
        owner.post(
            "/dashboard/mappings",
            {
                "package_id": str(package_id(demo, "Member")),
                "guild_id": demo.sandbox.guild.id,
                "role_id": demo.sandbox.roles["VIP"],
                "rank": "2",
            },
        ).text
    )
    assert "A rank needs a tier group." in refused

    # The owner adds a second role to Member after people subscribed, then backfills it.
    member, supporter = str(package_id(demo, "Member")), demo.sandbox.roles["Supporter"]
    bob = Shopper(demo, "bob@example.com")
    bob.link_discord("bob")
    bob.buy("Member")
    added = words(
        owner.post(
            "/dashboard/mappings",
            {
                "package_id": member,
                "guild_id": demo.sandbox.guild.id,
                "role_id": supporter,
                "keep_on_end": "on",
            },
        ).text
    )
    assert "now get the Supporter role" in added, added[:400]
    assert member_roles(demo, "bob") == {"Member"}, "a new mapping alone gives no role to existing buyers"
    with demo.app.app_context():
        store = demo.app.config["STORE_ID"]
        new = next(m for m in guilds.list_mappings(store) if (m.package_id, m.role_id) == (member, supporter))
        assert new.keep_on_end, "the form's keep-on-end box reached the mapping"
        db.session.remove()
    started = words(owner.post(f"/dashboard/mappings/{new.id}/backfill").text)
    assert "started: its progress shows beside the mapping" in started, started[:400]
    assert re.search(r"running \d+ / \d+", started), f"the mapping shows the backfill: {started[:800]}"

    # The demo's thread executor steps backfills in its worker loop; this demo runs deliveries inline,
    # so one worker pass is run as a host's cron would: `flask discord-roles worker --once`.
    for _ in range(2):  # one pass queues and runs the window; the next sees it settled
        ran = demo.app.test_cli_runner().invoke(args=["discord-roles", "worker", "--once"])
        assert ran.exit_code == 0, ran.output
    assert member_roles(demo, "bob") == {"Member", "Supporter"}, "the backfill gave Bob the new role"
    done = words(owner.get("/dashboard/mappings").text)
    assert re.search(r"completed (\d+) / \1", done), f"the backfill shows completed, done/total: {done[:900]}"
