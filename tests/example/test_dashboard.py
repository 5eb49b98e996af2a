"""The example storefront's owner dashboard, against the running demo: FakeDiscord with the demo server,
the store seeded (bot saved, server linked, Supporter/VIP/Legend, Member and the tiers mapped, Legend's
role above the bot).

Each test starts its own demo and signs in through ``/login`` with Flask's test client; FakeDiscord is the
judge of what reached Discord.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from example_app import db
from example_app.demo import PASSWORD, Demo
from example_app.models import Customer, Order, Package
from flask_discord_roles import bots, guilds, order_completed, store_settings

# On the demo's own database only. These pages are thin views over the public Python API, whose every
# function is tested on SQLite and PostgreSQL in its own tests, and the browser tests run the demo's
# journeys through this dashboard on both; a second database here would cost a minute and find nothing.
pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.app_settings(
        TESTING=True,
        WTF_CSRF_ENABLED=False,  # the test client posts forms without reading their token
        DISCORD_ROLES_EXECUTOR="inline",  # a change has reached Discord once its request is done
    ),
]

PAGES = (
    "/dashboard/",
    "/dashboard/bot",
    "/dashboard/guilds",
    "/dashboard/mappings",
    "/dashboard/settings",
    "/dashboard/deliveries",
    "/dashboard/customers",
    "/dashboard/diagnostics",
    "/dashboard/drift",
)


def signed_in(demo: Demo, email: str) -> FlaskClient:
    client = demo.app.test_client()
    answer = client.post("/login", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 302, f"{email} could not sign in: {answer.status_code}"
    return client


@pytest.fixture
def owner(demo: Demo) -> FlaskClient:
    return signed_in(demo, "owner@example.com")


def text(response: TestResponse) -> str:
    """The page as a person reads it: entities such as &#39; turned back into characters."""
    return html.unescape(response.get_data(as_text=True))


def words(markup: str) -> str:
    """What a person reads: the text without its tags, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def page(client: FlaskClient, path: str) -> str:
    answer = client.get(path, follow_redirects=True)
    assert answer.status_code == 200, f"GET {path} answered {answer.status_code}"
    return text(answer)


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None, status: int = 200) -> str:
    """Post a form and follow its redirect: the page the owner lands on, with its flashed messages."""
    answer = client.post(path, data=data or {}, follow_redirects=True)
    assert answer.status_code == status, f"POST {path} answered {answer.status_code}: {text(answer)[:500]}"
    return text(answer)


def store_id(demo: Demo) -> str:
    return str(demo.app.config["STORE_ID"])


def buy(demo: Demo, email: str, package_name: str, discord_user: str) -> None:
    """A paid order whose buyer's Discord account is known, as a checkout with a linked account sends it."""
    with demo.app.app_context():
        customer = db.session.scalars(sa.select(Customer).where(Customer.email == email)).one()
        package = db.session.scalars(sa.select(Package).where(Package.name == package_name)).one()
        order = Order(customer_id=customer.id, package_id=package.id)
        db.session.add(order)
        db.session.flush()
        order_completed.send(
            demo.app,
            store_id=store_id(demo),
            order_id=order.id,
            customer_id=customer.id,
            package_ids=[package.id],
            discord_user_id=demo.sandbox.users[discord_user],
        )
        db.session.commit()


def rows(listing: str) -> dict[int, str]:
    """The deliveries a listing shows: id → status, from each row's id and data-status."""
    found = re.findall(r'<tr id="delivery-(\d+)" data-status="(\w+)"', listing)
    return {int(delivery_id): status for delivery_id, status in found}


def role_names(demo: Demo, username: str) -> set[str]:
    fake, guild_id = demo.sandbox.fake, demo.sandbox.guild.id
    by_id = {role_id: name for name, role_id in demo.sandbox.roles.items()}
    return {by_id.get(role, role) for role in fake.member_roles(guild_id, demo.sandbox.users[username])}


def as_the_browser_sends(settings: dict[str, Any]) -> dict[str, str]:
    """The settings form as a browser posts it: every field, and only the ticked boxes."""
    form = {}
    for name, value in settings.items():
        if value is True:
            form[name] = "on"
        elif value is not False:
            form[name] = "" if value is None else str(value)
    return form


def fix_the_hierarchy(demo: Demo) -> None:
    """The server admin drags Legend below the bot's role, as the diagnostic's fix says."""
    demo.sandbox.fake.move_role(demo.sandbox.guild.id, demo.sandbox.roles["Legend"], 1)


# -- who may see it --------------------------------------------------------------------------------------


def test_only_the_store_owner_may_open_the_dashboard(demo: Demo) -> None:
    anonymous = demo.app.test_client()
    for path in PAGES:
        answer = anonymous.get(path)
        assert answer.status_code == 302, f"{path} should send a signed-out visitor to sign in"
        assert answer.headers["Location"].startswith("/login"), f"{path} redirects to {answer.headers}"
    alice = signed_in(demo, "alice@example.com")
    for path in PAGES:
        assert alice.get(path).status_code == 403, f"a customer must not see {path}"
    assert alice.post("/dashboard/bot/remove").status_code == 403, "nor change anything"
    with demo.app.app_context():
        assert bots.get_bot(store_id(demo)) is not None, "the customer's post removed the bot"


# -- every page ------------------------------------------------------------------------------------------


def test_every_page_shows_the_stores_real_state(demo: Demo, owner: FlaskClient) -> None:
    buy(demo, "alice@example.com", "VIP", "alice")
    overview = page(owner, "/dashboard/")
    for label in ("roles assigned", "roles removed", "errors", "success rate", "commands received"):
        assert label in overview, f"the overview lacks the {label} counter"
    for element in ("<svg", "<title", "<desc"):
        assert element in overview, f"the chart is an SVG with a title and a description: no {element}"
    assert "1 deliveries in the last 14 days" in overview, "the chart describes what it shows"
    assert "1 of 14 checks failing" in overview, "Legend's role above the bot fails a check"
    assert "0 due now, 0 scheduled for a retry" in overview, "the queue, as metrics.snapshot() reads it"

    bot_page = page(owner, "/dashboard/bot")
    assert demo.sandbox.bot.application_id in bot_page
    assert f"/webhook/discord/interactions/{store_id(demo)}" in bot_page, "the interactions URL"
    assert "discord.com/api/oauth2/authorize?client_id=" in bot_page, "the invite link"

    assert "Demo Server" in page(owner, "/dashboard/guilds")
    mappings = page(owner, "/dashboard/mappings")
    for name in ("Supporter", "VIP", "Legend", "Moderator"):
        assert name in mappings, f"the server's role {name} is listed"
    assert "cannot: role_above_bot" in mappings, "Legend and Moderator cannot be given"
    assert "Move the bot's role above «Legend»" in mappings, "with the fix"

    settings = page(owner, "/dashboard/settings")
    for name in store_settings.SETTING_NAMES:
        assert f'name="{name}"' in settings, f"the settings form lacks {name}"

    assert rows(page(owner, "/dashboard/deliveries")), "the VIP delivery is listed"
    assert "alice@example.com" in page(owner, "/dashboard/customers")
    with demo.app.app_context():
        alice_id = db.session.scalars(
            sa.select(Customer.id).where(Customer.email == "alice@example.com")
        ).one()
    customer = page(owner, f"/dashboard/customers/{alice_id}")
    assert "Alice" in customer
    assert "has the role" in customer, "her VIP role is held"
    assert 'data-check="role_assignable"' in page(owner, "/dashboard/diagnostics")


def test_every_form_that_changes_something_carries_a_csrf_token(demo: Demo, owner: FlaskClient) -> None:
    for path in PAGES:
        shown = page(owner, path)
        forms = shown.count('method="post"')
        tokens = shown.count('name="csrf_token"')
        assert forms == tokens, f"{path} has {forms} POST forms but {tokens} CSRF tokens"


def test_no_secret_ever_appears_on_a_page(demo: Demo, owner: FlaskClient) -> None:
    secrets = {"bot token": demo.sandbox.bot.token, "client secret": demo.sandbox.bot.client_secret}
    seen = [page(owner, path) for path in PAGES]
    seen.append(post(owner, "/dashboard/bot/test"))
    # A refused save shows the form again: still without what was typed in the secret fields.
    seen.append(
        post(
            owner,
            "/dashboard/bot",
            {
                "application_id": "123",
                "public_key": "nope",
                "bot_token": demo.sandbox.bot.token,
                "client_secret": demo.sandbox.bot.client_secret,
            },
            status=422,
        )
    )
    for shown in seen:
        for name, secret in secrets.items():
            assert secret not in shown, f"the {name} appears on a dashboard page"


# -- the bot ---------------------------------------------------------------------------------------------


def test_a_bot_token_discord_refuses_is_explained_and_nothing_changes(demo: Demo, owner: FlaskClient) -> None:
    bot = demo.sandbox.bot
    answer = post(
        owner,
        "/dashboard/bot",
        {"application_id": bot.application_id, "public_key": bot.public_key, "bot_token": "not-a-real-token"},
        status=422,
    )
    assert "Discord refused this bot token" in answer, "the owner is told why, in words"
    assert bot.application_id in answer, "what was typed in the public fields is kept"
    assert "not-a-real-token" not in answer, "the typed token is not shown back"
    with demo.app.app_context():
        saved = bots.get_bot(store_id(demo))
        assert saved is not None, "the saved bot is still there"
        assert saved.is_enabled, "and still on"
        assert bots.test_connection(store_id(demo)).connected, "and still connects with its own token"


def test_the_owner_switches_the_bot_off_and_on_registers_its_commands_and_tests_it(
    demo: Demo, owner: FlaskClient
) -> None:
    off = post(owner, "/dashboard/bot/enabled", {"enabled": "off"})
    assert "The bot is off" in off
    with demo.app.app_context():
        bot = bots.get_bot(store_id(demo))
        assert bot is not None
        assert not bot.is_enabled, "the page said off, the bot is on"
    assert "The bot is switched off" in page(owner, "/dashboard/"), "the overview warns about it"
    on = post(owner, "/dashboard/bot/enabled", {"enabled": "on"})
    assert "The bot is on" in on
    with demo.app.app_context():
        bot = bots.get_bot(store_id(demo))
        assert bot is not None
        assert bot.is_enabled, "the page said on, the bot is off"
    registered = post(owner, "/dashboard/bot/commands")
    assert "Registered /claim, /check and /help" in registered
    tested = post(owner, "/dashboard/bot/test")
    assert "connected Discord knows this bot as Demo Store Bot" in words(tested), "the test names the bot"


def test_removing_the_bot_leaves_a_page_that_asks_for_one(demo: Demo, owner: FlaskClient) -> None:
    removed = post(owner, "/dashboard/bot/remove")
    assert "Removed the bot" in removed
    assert "No bot saved yet" in removed
    for action in ("/dashboard/bot/test", "/dashboard/bot/enabled", "/dashboard/bot/commands"):
        assert "save its credentials first" in post(owner, action), f"{action} explains there is no bot"
    for path in PAGES:
        page(owner, path)  # every page still shows, without a bot


# -- servers and mappings --------------------------------------------------------------------------------


def test_a_link_code_is_shown_once_with_what_to_run(demo: Demo, owner: FlaskClient) -> None:
    issued = post(owner, "/dashboard/guilds/link-code")
    match = re.search(r"In your server, run /link code:(\S+) before \d\d:\d\d UTC", issued)
    assert match, f"the page should say what to run: {issued[:2000]}"
    assert match.group(1) not in page(owner, "/dashboard/guilds"), "the code is not shown a second time"


def test_unlinking_the_server_says_what_it_changed(demo: Demo, owner: FlaskClient) -> None:
    guild_id = demo.sandbox.guild.id
    confirm = page(owner, f"/dashboard/guilds/{guild_id}/unlink")
    assert "Unlink Demo Server?" in confirm
    assert "deletes its 7 role mappings" in confirm, "the confirmation says what unlinking does"
    done = post(owner, f"/dashboard/guilds/{guild_id}/unlink")
    assert "Unlinked Demo Server. 7 role mappings deleted" in done
    assert "No server is linked yet" in done
    assert "not linked" in post(owner, f"/dashboard/guilds/{guild_id}/unlink"), "a second unlink is refused"


def test_a_mapping_the_bot_cannot_give_is_refused_with_the_fix_and_a_good_one_is_made(
    demo: Demo, owner: FlaskClient
) -> None:
    with demo.app.app_context():
        packages = dict(db.session.execute(sa.select(Package.name, Package.id)).all())
    guild_id, roles = demo.sandbox.guild.id, demo.sandbox.roles
    moderator = next(r.id for r in demo.sandbox.fake.guild(guild_id).roles.values() if r.name == "Moderator")
    mappings = page(owner, "/dashboard/mappings")
    assert re.search(
        rf'<option value="{moderator}" disabled>Moderator \(cannot: role_above_bot\)', mappings
    ), "the add form offers Moderator only as disabled, with why"

    refused = post(
        owner,
        "/dashboard/mappings",
        {"package_id": str(packages["VIP"]), "guild_id": guild_id, "role_id": moderator},
    )
    assert "The bot cannot assign «Moderator». Move the bot's role above «Moderator»" in refused
    made = post(
        owner,
        "/dashboard/mappings",
        {"package_id": str(packages["Legend"]), "guild_id": guild_id, "role_id": roles["VIP"]},
    )
    assert "Buyers of Legend now get the VIP role." in made
    again = post(
        owner,
        "/dashboard/mappings",
        {"package_id": str(packages["Legend"]), "guild_id": guild_id, "role_id": roles["VIP"]},
    )
    assert "Legend already gives that role." in again
    with demo.app.app_context():
        mapped = guilds.list_mappings(store_id(demo), package_id=str(packages["Legend"]))
        assert sorted(m.role_id for m in mapped) == sorted([roles["Legend"], roles["VIP"]])
        new_id = next(m.id for m in mapped if m.role_id == roles["VIP"])
    deleted = post(owner, f"/dashboard/mappings/{new_id}/delete")
    assert "Deleted the mapping" in deleted
    assert "no longer exists" in post(owner, f"/dashboard/mappings/{new_id}/delete")


# -- settings --------------------------------------------------------------------------------------------


def test_refused_settings_keep_what_was_typed_and_change_nothing(demo: Demo, owner: FlaskClient) -> None:
    with demo.app.app_context():
        before = store_settings.get_settings(store_id(demo))
    typed = as_the_browser_sends(before) | {
        "require_link": "on",  # and linking_enabled unticked: refused
        "welcome_message": "Welcome to the VIP lounge!",
        "delivery_mode": "claim",
        "claim_expiry_hours": "48",
    }
    typed.pop("linking_enabled", None)
    answer = owner.post("/dashboard/settings", data=typed)
    shown = text(answer)
    assert answer.status_code == 422
    assert "Requiring a Discord link at checkout needs account linking enabled" in shown
    assert re.search(r'data-setting="require_link">.*?field-error', shown, re.S), "the error is by its field"
    assert "Welcome to the VIP lounge!</textarea>" in shown, "the typed text is kept"
    assert '<option value="claim" selected>' in shown, "the chosen delivery mode is kept"
    assert 'value="48"' in shown, "the typed hours are kept"
    with demo.app.app_context():
        assert store_settings.get_settings(store_id(demo)) == before, "nothing was saved"

    del typed["require_link"]  # unticked
    not_a_number = owner.post("/dashboard/settings", data={**typed, "claim_expiry_hours": "2 days"})
    assert not_a_number.status_code == 422
    assert "Enter a whole number of hours." in text(not_a_number)
    with demo.app.app_context():
        assert store_settings.get_settings(store_id(demo)) == before, "nothing was saved"

    saved = post(owner, "/dashboard/settings", typed)
    assert "Saved:" in saved
    assert "delivery mode" in saved, "the message names what changed"
    with demo.app.app_context():
        after = store_settings.get_settings(store_id(demo))
    assert after["delivery_mode"] == "claim"
    assert after["claim_expiry_hours"] == 48
    assert after["welcome_message"] == "Welcome to the VIP lounge!"
    assert after["checkout_prompt"] == before["checkout_prompt"], "an untouched text stays"
    assert after["linking_enabled"] is False, "an unticked box is off"


# -- deliveries ------------------------------------------------------------------------------------------


def test_deliveries_are_filtered_by_status(demo: Demo, owner: FlaskClient) -> None:
    buy(demo, "alice@example.com", "VIP", "alice")
    buy(demo, "bob@example.com", "Legend", "bob")  # Legend's role is above the bot: fails
    everything = rows(page(owner, "/dashboard/deliveries"))
    assert sorted(everything.values()) == ["completed", "failed"], everything
    failed = page(owner, "/dashboard/deliveries?status=failed")
    assert set(rows(failed).values()) == {"failed"}
    assert "role_above_bot" in failed, "a failed row shows its reason code"
    assert "Move the bot's role above «Legend»" in failed, "and the fix in words"
    assert set(rows(page(owner, "/dashboard/deliveries?status=completed")).values()) == {"completed"}
    assert rows(page(owner, "/dashboard/deliveries?status=expired")) == {}
    # Filters that make no sense are dropped, never a 500.
    assert rows(page(owner, "/dashboard/deliveries?status=lost&before=99999999999999999999999")) == everything


def test_a_failed_delivery_retried_after_fixing_the_hierarchy_completes(
    demo: Demo, owner: FlaskClient
) -> None:
    buy(demo, "alice@example.com", "Legend", "alice")
    failed = rows(page(owner, "/dashboard/deliveries?status=failed"))
    assert len(failed) == 1, f"Legend should have failed: {failed}"
    (delivery_id,) = failed
    assert "Legend" not in role_names(demo, "alice")

    still_broken = post(owner, f"/dashboard/deliveries/{delivery_id}/retry", {"status": "failed"})
    assert f"Delivery #{delivery_id} failed again" in still_broken, "a retry before the fix says so"
    fix_the_hierarchy(demo)
    retried = post(owner, f"/dashboard/deliveries/{delivery_id}/retry", {"status": "failed"})
    assert f"Delivery #{delivery_id} is done." in retried
    assert rows(retried) == {}, "back on the failed filter, which is now empty"
    assert rows(page(owner, "/dashboard/deliveries"))[delivery_id] == "completed"
    assert "Legend" in role_names(demo, "alice"), "FakeDiscord has given the role"
    assert "There is no delivery #999999" in post(owner, "/dashboard/deliveries/999999/retry")
    assert "Only failed or expired" in post(owner, f"/dashboard/deliveries/{delivery_id}/retry")


def test_retry_all_failed_retries_every_failed_delivery(demo: Demo, owner: FlaskClient) -> None:
    buy(demo, "alice@example.com", "Legend", "alice")
    buy(demo, "bob@example.com", "Legend", "bob")
    fix_the_hierarchy(demo)
    answer = post(owner, "/dashboard/deliveries/retry", {"which": "failed"})
    assert "Retrying 2 failed deliveries" in answer
    assert set(rows(answer).values()) == {"completed"}
    for buyer in ("alice", "bob"):
        assert "Legend" in role_names(demo, buyer), f"{buyer} did not get Legend"


# -- customers -------------------------------------------------------------------------------------------


def test_a_role_given_and_removed_on_the_customer_page_reaches_discord(
    demo: Demo, owner: FlaskClient
) -> None:
    with demo.app.app_context():
        bob = db.session.scalars(sa.select(Customer.id).where(Customer.email == "bob@example.com")).one()
    found = owner.get("/dashboard/customers?q=bob@example.com")
    assert found.headers["Location"].endswith(f"/dashboard/customers/{bob}"), "the search finds bob by email"
    customer = page(owner, f"/dashboard/customers/{bob}")
    assert "Not linked" in customer
    guild_id, vip = demo.sandbox.guild.id, demo.sandbox.roles["VIP"]
    assert f'value="{guild_id}:{vip}"' in customer, "the assign form offers VIP"

    no_user = post(owner, f"/dashboard/customers/{bob}/roles", {"role": f"{guild_id}:{vip}"})
    assert "has not linked Discord" in no_user, (
        "without an account or a user id, the owner is told what to give"
    )
    given = post(
        owner,
        f"/dashboard/customers/{bob}/roles",
        {"role": f"{guild_id}:{vip}", "discord_user_id": demo.sandbox.users["bob"]},
    )
    assert "VIP given." in given
    assert "VIP" in role_names(demo, "bob"), "FakeDiscord has given bob the role"
    assert "has the role" in given

    removed = post(owner, f"/dashboard/customers/{bob}/roles/{guild_id}/{vip}/remove")
    assert "VIP removed." in removed
    assert "VIP" not in role_names(demo, "bob"), "FakeDiscord has taken the role away"


def test_odd_customer_ids_are_refused_in_words(demo: Demo, owner: FlaskClient) -> None:
    too_long = page(owner, f"/dashboard/customers/{'x' * 65}")
    assert "customer_id must be text of 1 to 64 characters" in too_long
    stranger = page(owner, "/dashboard/customers/99999999999999999999")
    assert "not one of the shop's accounts" in stranger, "an id the shop does not know still opens"


# -- diagnostics -----------------------------------------------------------------------------------------


def test_diagnostics_show_the_failing_role_check_with_its_fix(demo: Demo, owner: FlaskClient) -> None:
    diagnosis = page(owner, "/dashboard/diagnostics")
    legend = demo.sandbox.roles["Legend"]
    item = re.search(
        rf'<li class="card check failing" data-check="role_assignable" data-role="{legend}">(.*?)</li>',
        diagnosis,
        re.S,
    )
    assert item, "Legend's role check is listed as failing"
    assert "role_above_bot" in item.group(1)
    assert "Fix: Move the bot's role above «Legend»" in re.sub(r"<[^>]+>", "", item.group(1))
    fix_the_hierarchy(demo)
    assert "all 14 checks pass" in page(owner, "/dashboard/diagnostics"), "run again after the fix: all pass"


# -- drift -----------------------------------------------------------------------------------------------


def test_the_owner_checks_for_drift_and_repair_gives_a_lost_role_back(demo: Demo, owner: FlaskClient) -> None:
    buy(demo, "alice@example.com", "VIP", "alice")
    fake, guild_id, vip = demo.sandbox.fake, demo.sandbox.guild.id, demo.sandbox.roles["VIP"]
    with fake.world.lock:
        fake.world.member(guild_id, demo.sandbox.users["alice"]).roles.remove(vip)  # a moderator's hand
    assert "Not checked yet." in page(owner, "/dashboard/drift")

    assert "Drift mode saved." in post(owner, "/dashboard/drift/mode", {"reconcile_mode": "repair"})
    refused = post(owner, "/dashboard/drift/mode", {"reconcile_mode": "sometimes"})
    assert 'Must be "off"' in refused, words(refused)[:400]
    started = post(owner, "/dashboard/drift/start")
    assert "Checking 1 server(s)" in started, words(started)[:400]
    # This demo runs deliveries inline: one worker pass steps the run and runs its repair, as cron would.
    ran = demo.app.test_cli_runner().invoke(args=["discord-roles", "worker", "--once"])
    assert ran.exit_code == 0, ran.output

    shown = page(owner, "/dashboard/drift")
    assert 'data-status="completed"' in shown, words(shown)[:800]
    assert re.search(r'data-kind="role_missing">\s*<td>[^<]*</td>\s*<td data-count="1"', shown), words(shown)[
        :800
    ]
    assert "1 repairs queued" in words(shown)
    assert "VIP" in role_names(demo, "alice"), "repair gave Alice her VIP back"
