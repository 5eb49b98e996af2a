"""The three journeys a storefront developer tries first, by hand in ``make demo``, here in Chromium.

1. A customer links Discord at checkout through the consent screen, pays, and the role appears in
   the sandbox's server, their Linked Roles connection says they bought; a refund takes the role away.
2. A customer who never linked runs ``/claim`` with the code from their receipt, and gets the role.
3. The store owner sees a failed delivery (its role is above the bot), follows the diagnostic's fix in
   the sandbox (moves the bot's role up), presses Retry, and it completes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from example_app.demo import PASSWORD, Demo
from tests.example.browser.conftest import TIMEOUT_MS, Shoot


def sign_in(page: Page, demo: Demo, email: str) -> None:
    page.goto(f"{demo.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".flash.success"), "signing in with a demo account failed").to_contain_text(
        "Welcome back"
    )


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".flash.success")).to_contain_text("Signed out")


def authorize_on_discord(page: Page, shoot: Shoot, demo: Demo, username: str) -> None:
    """From a page with the "Link Discord" prompt: consent as ``username`` and come back linked."""
    page.locator("a.discord-roles-link").click()
    expect(page, "Link Discord should open Discord's consent screen").to_have_url(
        re.compile(r"/oauth2/authorize")
    )
    expect(page.get_by_role("heading", level=1)).to_have_text(demo.sandbox.bot.name)
    page.get_by_label("Signed in as").select_option(demo.sandbox.users[username])
    shoot(page, f"Discord consent screen as {username}")
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_role("heading", level=1), "Authorize leads back to the shop").to_have_text(
        "Discord linked"
    )
    shoot(page, "linked welcome")
    page.get_by_role("link", name="Continue").click()
    expect(page.locator(".discord-roles-linked"), "the shop shows the linked account").to_be_visible()


def eventually(page: Page, locator: Callable[[], Locator], text: str, what: str) -> None:
    """Reload until ``locator()`` shows ``text``: the storefront's pages are not live, deliveries are."""
    for _ in range(TIMEOUT_MS // 500):
        if text in locator().inner_text():
            return
        page.wait_for_timeout(500)
        page.reload()
    expect(locator(), what).to_contain_text(text, timeout=1)


def member_row(page: Page, demo: Demo, username: str) -> Locator:
    return page.locator(f'tr[data-user-id="{demo.sandbox.users[username]}"]')


def test_customer_links_discord_at_checkout_and_the_role_appears_in_the_server(
    demo: Demo, page: Page, shoot: Shoot
) -> None:
    sign_in(page, demo, "alice@example.com")
    page.get_by_role("link", name="Buy Supporter").click()
    expect(page.locator("a.discord-roles-link"), "checkout offers to link Discord").to_be_visible()
    shoot(page, "checkout with the Discord prompt")

    authorize_on_discord(page, shoot, demo, "alice")
    expect(page, "linking returns to the checkout").to_have_url(re.compile(r"/checkout/\d+$"))
    expect(page.locator(".discord-roles-name")).to_have_text("Alice")
    shoot(page, "checkout linked")

    page.locator("#pay").click()
    expect(page.locator("#order-status")).to_have_text("Paid")
    eventually(page, lambda: page.locator("#discord .roles"), "Delivered", "the role was never delivered")
    shoot(page, "order confirmation delivered")

    page.goto(demo.guild_page)
    expect(member_row(page, demo, "alice"), "the sandbox shows Alice holding Supporter").to_contain_text(
        "Supporter"
    )
    shoot(page, "sandbox guild with the role")

    # The demo store has Linked Roles on: Alice's role connection states she bought (pushed by a runner).
    page.goto(demo.sandbox.fake.sandbox_url)
    alice = f'#role-connections tr[data-user-id="{demo.sandbox.users["alice"]}"]'
    eventually(
        page,
        lambda: page.locator("#role-connections"),
        "Verified buyer: 1",
        "the sandbox never showed Alice's Linked Roles connection as a verified buyer",
    )
    expect(page.locator(alice), "her connection names the store").to_contain_text(demo.sandbox.bot.name)
    expect(page.locator(alice)).to_contain_text("Orders: 1")
    shoot(page, "sandbox linked roles connection", element=page.locator("#role-connections"))

    page.go_back()  # the guild page, then the order confirmation
    page.go_back()
    page.locator("#refund").click()
    expect(page.locator("#order-status")).to_have_text("Refunded")
    eventually(page, lambda: page.locator("#discord .roles"), "Removed", "the refund never removed the role")
    page.goto(demo.guild_page)
    expect(member_row(page, demo, "alice"), "a refund takes the role away").not_to_contain_text("Supporter")
    shoot(page, "sandbox guild after the refund")


def test_customer_who_did_not_link_claims_the_role_with_the_code(
    demo: Demo, page: Page, shoot: Shoot
) -> None:
    sign_in(page, demo, "bob@example.com")
    page.get_by_role("link", name="Buy VIP").click()
    page.locator("#pay").click()
    expect(page.locator("#discord .roles"), "an unlinked buyer's role waits for them").to_contain_text(
        "Waiting for you"
    )
    code = page.locator("#claim-code").inner_text()
    shoot(page, "order confirmation with the claim code")

    page.goto(demo.sandbox.fake.sandbox_url)
    page.locator('select[name="user_id"]').select_option(demo.sandbox.users["bob"])
    page.get_by_role("button", name="Switch").click()
    page.goto(demo.guild_page)
    expect(page.locator("#current-user")).to_contain_text("bob")
    page.get_by_label("Command").select_option("claim")
    page.locator('input[name="code"]').fill(code)
    page.get_by_role("button", name="Send").click()
    conversation = page.locator("article").last
    expect(conversation, "the /claim answer is shown in the sandbox").to_contain_text("VIP")
    expect(member_row(page, demo, "bob"), "/claim gave Bob the VIP role").to_contain_text("VIP")
    shoot(page, "sandbox after claim")

    page.goto(f"{demo.url}/account")
    eventually(page, lambda: page.locator("table .roles").first, "Delivered", "the shop never saw the claim")
    shoot(page, "my orders after claim")


def test_owner_fixes_the_role_hierarchy_in_the_server_and_retries_the_failed_delivery(
    demo: Demo, page: Page, shoot: Shoot
) -> None:
    sign_in(page, demo, "alice@example.com")
    page.get_by_role("link", name="Buy Legend").click()
    authorize_on_discord(page, shoot, demo, "alice")
    page.locator("#pay").click()
    eventually(page, lambda: page.locator("#discord .roles"), "Delayed", "the Legend delivery should fail")
    sign_out(page)

    sign_in(page, demo, "owner@example.com")
    page.goto(f"{demo.url}/dashboard/deliveries?status=failed")
    failed = page.locator('tr[data-status="failed"]')
    expect(failed, "the dashboard lists the failed delivery").to_have_count(1)
    expect(failed).to_contain_text("Legend")
    shoot(page, "dashboard deliveries with the failure")

    page.goto(f"{demo.url}/dashboard/diagnostics")
    failing = page.locator(".check.failing")
    expect(failing.first, "diagnostics explain the failure").to_contain_text("Legend")
    fix = failing.first.locator(".fix").inner_text()
    assert "above" in fix, f"the fix should say to move the bot's role above Legend, got {fix!r}"
    shoot(page, "diagnostics with the fix")

    page.goto(demo.guild_page)
    bot_role = page.locator("tr", has=page.locator(".badge.bot"))
    bot_role.get_by_role("button", name="▲ up").click()
    fake_guild = demo.sandbox.fake.guild(demo.sandbox.guild.id)
    bot_role_id = next(role.id for role in fake_guild.roles.values() if role.bot_id is not None)
    legend_id = demo.sandbox.roles["Legend"]
    expect(page.locator("#live tr[data-role-id]").first).to_be_visible()
    shown = [row.get_attribute("data-role-id") for row in page.locator("#live tr[data-role-id]").all()]
    assert shown.index(bot_role_id) < shown.index(legend_id), "the sandbox still shows the bot below Legend"
    shoot(page, "sandbox with the bot role moved up")

    page.goto(f"{demo.url}/dashboard/deliveries?status=failed")
    page.locator('tr[data-status="failed"]').get_by_role("button", name="Retry").click()
    page.goto(f"{demo.url}/dashboard/deliveries")
    eventually(
        page,
        lambda: page.locator("tr[data-status]").filter(has_text="Legend").first,
        "completed",
        "the retried delivery never completed",
    )
    shoot(page, "dashboard deliveries after retry")
    page.goto(f"{demo.url}/dashboard/")
    expect(page.locator(".chart svg"), "the overview charts deliveries per day").to_be_visible()
    shoot(page, "dashboard overview")
    page.goto(demo.guild_page)
    expect(member_row(page, demo, "alice"), "after the retry Alice holds Legend").to_contain_text("Legend")
    shoot(page, "sandbox guild with legend")
