"""What a member sees when they run the slash commands: ``/help``, ``/claim code:…`` and ``/check``, sent
from the sandbox's server page to the running demo's webhook, and answered there as Discord shows it.
Bob bought VIP and Legend as a guest; the demo's Legend role sits above the bot's, so that one fails and
the answers say why.

The answers' screenshots are the pictures in docs/interactions.md (``make screenshots`` copies them).
"""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from example_app.demo import Demo
from tests.example.browser.conftest import Shoot
from tests.example.browser.test_journeys import member_row, sign_in


def run_command(page: Page, command: str, code: str = "") -> Locator:
    """Send ``/command`` from the server page as the current user; the conversation it starts."""
    before = page.locator("article").count()
    page.get_by_label("Command").select_option(command)
    page.locator('input[name="code"]').fill(code)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("article"), f"/{command} should start a new conversation").to_have_count(before + 1)
    return page.locator("article").first  # the sandbox lists the newest conversation first


def test_a_member_asks_for_help_claims_with_the_code_and_checks_the_delivery(
    demo: Demo, page: Page, shoot: Shoot
) -> None:
    sign_in(page, demo, "bob@example.com")
    codes = {}
    for package in ("VIP", "Legend"):
        page.goto(demo.url)
        page.get_by_role("link", name=f"Buy {package}").click()
        page.locator("#pay").click()
        codes[package] = page.locator("#claim-code").inner_text()

    page.goto(demo.sandbox.fake.sandbox_url)
    page.locator('select[name="user_id"]').select_option(demo.sandbox.users["bob"])
    page.get_by_role("button", name="Switch").click()
    page.goto(demo.guild_page)

    help_answer = run_command(page, "help")
    expect(help_answer, "/help explains the commands").to_contain_text("How to get your roles")
    expect(help_answer).to_contain_text("Only you can see this")
    shoot(page, "help answer", element=help_answer)

    claim_answer = run_command(page, "claim", codes["VIP"])
    expect(claim_answer, "/claim's deferred answer is edited with the outcome").to_contain_text("VIP")
    expect(claim_answer).not_to_contain_text("thinking")
    expect(member_row(page, demo, "bob"), "/claim gave Bob the VIP role").to_contain_text("VIP")
    shoot(page, "claim answer", element=claim_answer)

    failed_answer = run_command(page, "claim", codes["Legend"])
    expect(failed_answer, "/claim says which role failed").to_contain_text("Legend")
    expect(failed_answer, "...and what the store must fix").to_contain_text("above")
    expect(failed_answer).not_to_contain_text("thinking")
    shoot(page, "claim answer with a failure", element=failed_answer)

    check_answer = run_command(page, "check")
    expect(check_answer, "/check lists the deliveries").to_contain_text("Your deliveries")
    expect(check_answer).to_contain_text("VIP")
    expect(check_answer).to_contain_text("delivered")
    expect(check_answer).to_contain_text("Legend")
    shoot(page, "check answer", element=check_answer)
