"""Selling time in the demo, in Chromium: subscribe, renew, cancel, lapse, and a tier upgrade.

One journey (each browser test costs seconds): Alice subscribes to the monthly Member package and gets the
role; renewing changes nothing at Discord; she cancels at the period's end; the owner uses the demo's
clearly-labelled *Skip to its end* (the expiry sweep run as if it were the grant's end) and the role is
removed. Then she subscribes to Bronze and upgrades to Silver, and Silver replaces Bronze in the server.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from example_app.demo import Demo
from tests.example.browser.conftest import TIMEOUT_MS, Shoot
from tests.example.browser.test_journeys import (
    authorize_on_discord,
    eventually,
    member_row,
    sign_in,
    sign_out,
)
from tests.example.shopper import member_roles

ROLE_CHANGES = r"/guilds/\d+/members/\d+/roles/\d+"


def wait_for_roles(page: Page, demo: Demo, username: str, expected: set[str], what: str) -> None:
    """The demo's executor runs after each request: wait (briefly) until FakeDiscord shows the roles."""
    for _ in range(TIMEOUT_MS // 100):
        if member_roles(demo, username) == expected:
            return
        page.wait_for_timeout(100)
    assert member_roles(demo, username) == expected, what


def test_subscribe_renew_lapse_and_upgrade_a_tier(demo: Demo, page: Page, shoot: Shoot) -> None:
    fake = demo.sandbox.fake
    sign_in(page, demo, "alice@example.com")
    page.get_by_role("link", name="Subscribe to Member").click()
    authorize_on_discord(page, shoot, demo, "alice")
    page.locator("#pay").click()
    eventually(page, lambda: page.locator("#discord .roles"), "Delivered", "Member was never delivered")
    wait_for_roles(page, demo, "alice", {"Member"}, "subscribing gives Alice the Member role")

    page.goto(f"{demo.url}/account")
    subscription = page.locator("#subscriptions tr[data-grant-status]").first
    expect(subscription, "My orders shows the subscription's role").to_contain_text("Active")
    shoot(page, "my orders with the subscription")
    fake.clear_calls()
    subscription.get_by_role("button", name="Renew now").click()
    expect(page.locator(".flash.success")).to_contain_text("Renewed Member until")
    page.wait_for_timeout(300)  # what a renewal might queue would run within this
    assert fake.calls_to("PUT", ROLE_CHANGES) + fake.calls_to("DELETE", ROLE_CHANGES) == [], (
        "a renewal must not change any role at Discord"
    )
    page.locator("#subscriptions").get_by_role("button", name="Cancel at period end").click()
    expect(page.locator(".flash.success")).to_contain_text("will not renew")
    expect(page.get_by_role("button", name="Renew now"), "cancelled: no renewal offered").to_have_count(0)
    assert member_roles(demo, "alice") == {"Member"}, "cancelling keeps the role until the paid period ends"
    shoot(page, "subscription cancelled at period end")
    sign_out(page)

    sign_in(page, demo, "owner@example.com")
    page.goto(f"{demo.url}/dashboard/customers")
    page.get_by_role("link", name="Alice").first.click()
    grant = page.locator('#grants tr[data-status="active"]')
    expect(grant, "the customer page lists the active subscription").to_have_count(1)
    shoot(page, "dashboard customer grants")
    grant.get_by_role("button", name="Skip to its end").click()
    expect(page.locator(".flash.success")).to_contain_text("Demo clock: ran the expiry sweep")
    expect(page.locator('#grants tr[data-status="ended"]'), "the grant ended").to_contain_text("expired")
    wait_for_roles(page, demo, "alice", set(), "after the paid period and the grace, Member is removed")
    shoot(page, "dashboard customer grant ended")
    sign_out(page)

    sign_in(page, demo, "alice@example.com")
    for tier in ("Bronze", "Silver"):
        page.goto(demo.url)
        page.get_by_role("link", name=f"Subscribe to {tier}").click()
        page.locator("#pay").click()
        expect(page.locator("#order-status")).to_have_text("Paid")
        wait_for_roles(page, demo, "alice", {tier}, f"Alice should hold exactly {tier} after subscribing")
    page.goto(demo.guild_page)
    row = member_row(page, demo, "alice")
    expect(row, "the upgrade gave Silver").to_contain_text("Silver")
    expect(row, "and took away the Bronze it replaces").not_to_contain_text("Bronze")
    shoot(page, "sandbox after the tier upgrade")
