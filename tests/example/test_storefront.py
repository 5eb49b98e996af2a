"""The example storefront: its migrations, its sign-in, and the demo's checkout, claim code and refund.

The demo runs for real (FakeDiscord, the storefront on a port, the database reset and seeded); a
``requests`` session plays the customer's browser. The browser tests in ``tests/example/browser`` click
the same journeys in Chromium.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from example_app import create_app, db, upgrade_database
from example_app.demo import CHECKOUT_PROMPT, Demo
from example_app.models import Customer, Order
from flask_discord_roles import deliveries, store_settings
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.migrations import VERSION_TABLE
from tests.demo import FAST_PASSWORD_HASH
from tests.example.shopper import Shopper, member_roles

ROOT = Path(__file__).resolve().parents[2]

# For the running demo's app (the folder's ``demo``), on top of the demo's own settings.
pytestmark = pytest.mark.app_settings(
    WTF_CSRF_ENABLED=False,  # requests plays the browser; CSRF itself is tested below
    DISCORD_ROLES_EXECUTOR="inline",  # a delivery is done when the request that queued it is
)


@pytest.fixture
def shop(database_url: str) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": sa.pool.NullPool},
            "PASSWORD_HASH_METHOD": FAST_PASSWORD_HASH,
        }
    )
    with app.app_context():
        upgrade_database()
        yield app
        get_state(app).executor.shutdown()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def demo(demo: Demo) -> Demo:
    """The folder's demo, where consent needs no click (consent is clicked in the browser tests)."""
    demo.sandbox.fake.interactive_consent = False
    return demo


def test_migrating_creates_the_shop_and_discord_roles_schemas_exactly(shop: Flask) -> None:
    with db.engine.connect() as connection:
        # Our version table is the one table no model describes (Alembic skips its own alembic_version).
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_name": lambda name, *_: name != VERSION_TABLE},
        )
        differences = compare_metadata(context, db.metadata)
        tables = set(sa.inspect(connection).get_table_names())
    assert differences == [], f"example migrations and models disagree: {differences}"
    assert {"shop_customers", "shop_orders", "discord_roles_deliveries"} <= tables


def test_registering_with_bad_input_creates_nobody_and_says_why(shop: Flask) -> None:
    client = shop.test_client()
    refused = client.post("/register", data={"email": "nope", "name": "", "password": "x"})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    for problem in ("valid email", "name of up to 100", "at least 4"):
        assert problem in text, f"the form should say: {problem}"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0
    created = client.post(
        "/register",
        data={"email": "Ann@Example.com", "name": "Ann", "password": "secret"},
        follow_redirects=True,
    )
    assert "Welcome, Ann" in created.get_data(as_text=True)
    again = client.post("/register", data={"email": "ann@example.com", "name": "Ann", "password": "secret"})
    assert "sign in instead" in again.get_data(as_text=True), "emails are unique, whatever their case"


def test_signing_in_needs_the_right_password_and_never_leaves_the_site(shop: Flask) -> None:
    customer = Customer(email="ann@example.com", name="Ann")
    customer.set_password("secret")
    db.session.add(customer)
    db.session.commit()
    client = shop.test_client()
    wrong = client.post("/login", data={"email": "ann@example.com", "password": "guess"})
    assert wrong.status_code == 401
    assert "do not match" in wrong.get_data(as_text=True)
    signed_in = client.post(
        "/login?next=https://evil.example/steal", data={"email": "ann@example.com", "password": "secret"}
    )
    assert signed_in.headers["Location"] == "/", "an off-site next must not be followed"
    assert "secret" not in repr(customer)
    assert customer.password_hash not in repr(customer)


def test_checkout_needs_a_signed_in_customer_and_a_real_package(shop: Flask) -> None:
    client = shop.test_client()
    anonymous = client.post("/checkout/1")
    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]
    customer = Customer(email="ann@example.com", name="Ann")
    customer.set_password("secret")
    db.session.add(customer)
    db.session.commit()
    client.post("/login", data={"email": "ann@example.com", "password": "secret"})
    assert client.post("/checkout/999").status_code == 404
    assert client.get("/orders/999").status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_forms_without_a_csrf_token_are_refused(database_url: str) -> None:
    # Not TESTING, as in production: so the shop's public address must be set too.
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "DISCORD_ROLES_PUBLIC_BASE_URL": "http://shop.test"}
    )
    with app.app_context():
        upgrade_database()
        refused = app.test_client().post("/login", data={"email": "a@example.com", "password": "x"})
        assert refused.status_code == 400, "the storefront's own forms are CSRF-protected"
        get_state(app).executor.shutdown()
        db.engine.dispose()


def test_the_demo_is_seeded_the_way_an_owner_sets_a_store_up(demo: Demo) -> None:
    fake, guild = demo.sandbox.fake, demo.sandbox.fake.guild(demo.sandbox.guild.id)
    with demo.app.app_context():
        from flask_discord_roles import guilds

        store = demo.app.config["STORE_ID"]
        assert [g.guild_id for g in guilds.list_guilds(store)] == [guild.id], "/link linked the server"
        mapped = {m.role_name for m in guilds.list_mappings(store)}
        assert mapped == {"Supporter", "VIP", "Legend", "Member", "Bronze", "Silver", "Gold"}
        assert store_settings.get_settings(store)["checkout_prompt"] == CHECKOUT_PROMPT
        db.session.remove()
    ordered = [role.name for role in sorted(guild.roles.values(), key=lambda r: r.position, reverse=True)]
    bot_index = ordered.index(demo.sandbox.bot.name)
    assert ordered.index("Moderator") < bot_index, f"Moderator must sit above the bot: {ordered}"
    assert ordered.index("Legend") < bot_index, (
        f"Legend must sit above the bot, to show diagnostics: {ordered}"
    )
    assert ordered.index("VIP") > bot_index, f"the bot must be able to give VIP: {ordered}"
    assert ordered.index("Supporter") > bot_index, f"the bot must be able to give Supporter: {ordered}"
    assert fake.sandbox_url in demo.guild_page


def test_a_linked_customer_gets_the_role_at_once_and_a_refund_takes_it_back(demo: Demo) -> None:
    alice = Shopper(demo, "alice@example.com")
    checkout = alice.get("/checkout/1").text
    assert CHECKOUT_PROMPT in checkout, "checkout shows the store's prompt"
    assert "Link Discord" in checkout, "checkout offers to link Discord"
    welcome = alice.link_discord("alice", "/checkout/1")
    assert 'class="brand"' in welcome, "the linking outcome page is the shop's override, in its layout"
    linked = alice.get("/checkout/1").text
    assert "discord-roles-linked" in linked
    avatar = re.search(r'class="discord-roles-avatar" src="([^"]+)"', linked)
    assert avatar is not None, "the linked card shows the Discord avatar"
    picture = requests.get(avatar[1], timeout=10)
    assert picture.headers["Content-Type"] == "image/png", "the avatar loads, offline, from FakeDiscord"
    order_id = alice.buy("Supporter")
    assert member_roles(demo, "alice") == {"Supporter"}, "a linked buyer's role is delivered on payment"
    assert "Delivered" in alice.get(f"/orders/{order_id}").text

    refunded = alice.post(f"/orders/{order_id}/refund")
    assert "is refunded" in refunded.text
    assert member_roles(demo, "alice") == set(), "the refund removed the role"
    assert "Removed" in refunded.text or "Removed" in alice.get(f"/orders/{order_id}").text
    again = alice.post(f"/orders/{order_id}/refund")
    assert "already refunded" in again.text
    with demo.app.app_context():
        changes = deliveries.list_deliveries(demo.app.config["STORE_ID"], order_id=str(order_id)).items
        assert sorted((d.action, d.status) for d in changes) == [
            ("add", "completed"),
            ("remove", "completed"),
        ]
        db.session.remove()


def test_an_unlinked_buyer_sees_a_claim_code_that_claims_the_role(demo: Demo) -> None:
    bob = Shopper(demo, "bob@example.com")
    order_id = bob.buy("VIP")
    page = bob.get(f"/orders/{order_id}").text
    assert "Waiting for you" in page
    with demo.app.app_context():
        from flask_discord_roles import claim_code

        code = claim_code(demo.app.config["STORE_ID"], order_id)
    assert code in page, "the receipt shows the order's claim code"
    fake, sandbox = demo.sandbox.fake, demo.sandbox
    payload = fake.command_payload(
        sandbox.bot, sandbox.guild.id, sandbox.users["bob"], "claim", {"code": code}
    )
    answer = fake.send_interaction(demo.webhook_url, sandbox.bot, payload)
    assert answer.status_code == 200
    assert member_roles(demo, "bob") == {"VIP"}, f"/claim should give VIP: {answer.text[:300]}"
    assert "Delivered" in bob.get(f"/orders/{order_id}").text
    # Over HTTP the inline executor edits the deferred answer once the response is written.
    deadline = time.monotonic() + 10
    while len(fake.interaction_responses[payload["token"]]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    order = [(r["kind"], r["status"]) for r in fake.interaction_responses[payload["token"]]]
    assert order == [("initial", 200), ("edit_original", 200)], f"Discord saw {order}"
    assert fake.responses_before_acknowledgement() == []


def test_require_discord_link_sends_the_customer_to_link_before_paying(demo: Demo) -> None:
    with demo.app.app_context():
        store_settings.update_settings(demo.app.config["STORE_ID"], require_link=True)
        db.session.commit()
    bob = Shopper(demo, "bob@example.com")
    checkout = bob.get("/checkout/2").text
    assert 'id="pay" disabled' in checkout, "Pay is disabled until Discord is linked"
    refused = bob.post("/checkout/2", allow_redirects=False)
    assert refused.status_code == 303
    assert "/discord/link" in refused.headers["Location"], "paying unlinked sends the customer to link"
    with demo.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0, "no order was made"
        db.session.remove()
    bob.link_discord("bob", "/checkout/2")
    bob.buy("VIP")
    assert member_roles(demo, "bob") == {"VIP"}


def test_a_customer_cannot_see_or_refund_someone_elses_order(demo: Demo) -> None:
    order_id = Shopper(demo, "alice@example.com").buy("VIP")
    bob = Shopper(demo, "bob@example.com")
    assert bob.get(f"/orders/{order_id}").status_code == 404
    assert bob.post(f"/orders/{order_id}/refund").status_code == 404
    with demo.app.app_context():
        assert db.session.get(Order, order_id).status == "paid", "bob's attempt changed nothing"
        db.session.remove()


def test_no_page_shows_the_bots_secrets(demo: Demo) -> None:
    alice = Shopper(demo, "alice@example.com")
    alice.link_discord("alice")
    order_id = alice.buy("VIP")
    pages = [alice.get(path).text for path in ("/", "/checkout/1", f"/orders/{order_id}", "/account")]
    for secret in (demo.sandbox.bot.token, demo.sandbox.bot.client_secret):
        assert not any(secret in page for page in pages), "a bot secret leaked into a storefront page"


def test_the_demo_refuses_to_empty_a_database_it_was_pointed_at(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'keep.sqlite'}", "PYTHONPATH": str(ROOT)}
    env.pop("DEMO_RESET", None)
    result = subprocess.run(
        [sys.executable, "-m", "example_app"], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode != 0, "the demo started on a database it was not allowed to empty"
    assert "DEMO_RESET=1" in result.stderr, result.stderr


@pytest.mark.serial  # a subprocess that must start within its deadline
def test_the_demo_command_starts_the_storefront_and_the_sandbox_and_prints_where(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite'}",
        "DEMO_RESET": "1",
        "PORT": "0",  # any free port: the printed URLs say which
        "PYTHONPATH": str(ROOT),
        "PYTHONFAULTHANDLER": "1",  # a demo that hangs on Ctrl+C shows where, below
    }
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(
        [sys.executable, "-m", "example_app"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert demo.stdout is not None
        printed: dict[str, str] = {}
        for line in demo.stdout:
            name, _, rest = line.strip().partition(":  ")
            if rest:
                printed[name] = rest.split()[0]
            if name == "FakeDiscord":
                break
        assert {"Storefront", "Dashboard", "Sandbox"} <= printed.keys(), f"the demo printed {printed}"
        shop = requests.get(printed["Storefront"], timeout=10)
        assert shop.status_code == 200, "the storefront answers"
        assert "Legend" in shop.text, "the packages were seeded"
        sandbox = requests.get(printed["Sandbox"], timeout=10)
        assert "Demo Server" in sandbox.text, "the sandbox shows the demo server"
        assert "Demo Store Bot" in sandbox.text, "with the store's bot in it"
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl+C, as a person stops it
        stopped = _wait_or_dump(demo, timeout=60)
        if demo.stdout is not None:
            demo.stdout.close()
        log.seek(0)
        said = log.read()[-4000:]
        log.close()
    assert stopped == 0, f"Ctrl+C stops the demo cleanly; it exited {stopped}, saying:\n{said}"


def _wait_or_dump(process: subprocess.Popen[str], timeout: float) -> int | None:
    """The exit code; a process still running after ``timeout`` dumps its threads' stacks and is killed."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack to the log
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return None
