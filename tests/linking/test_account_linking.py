"""A customer links Discord at checkout: the whole OAuth dance against FakeDiscord's OAuth endpoints.

The browser is played by Flask's test client (our side, with its session cookie) and ``requests`` (the
hop to Discord's authorize page, which redirects back with a code).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import render_template_string
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_discord_roles import DiscordRoles, account_linked
from flask_discord_roles._core.bots import save_bot
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles._web.linking import PENDING_KEY
from flask_discord_roles.checkout import checkout_status, require_discord_link
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.state import FakeUser
from tests.linking import LINKING_CONFIG
from tests.shop import Shop


@dataclass
class Storefront:
    """A shop whose customers sign in (``who``) and link Discord through the store's own application."""

    shop: Shop
    discord_roles: DiscordRoles
    client: FlaskClient
    who: dict[str, str | None] = field(default_factory=lambda: {"customer": "customer-1"})

    @property
    def fake(self) -> FakeDiscord:
        return self.shop.fake

    def start(self, next_path: str = "/checkout", client: FlaskClient | None = None) -> TestResponse:
        return (client or self.client).get("/discord/link", query_string={"next": next_path})

    def consent(self, start: TestResponse, user: FakeUser) -> str:
        """Discord's side: the user authorises; returns the callback path with its query."""
        assert start.status_code == 302, start.get_data(as_text=True)
        self.fake.oauth_login_as(user)
        page = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
        assert page.status_code == 302, page.text
        back = urlsplit(page.headers["Location"])
        assert back.path == "/discord/callback"
        return f"{back.path}?{back.query}"

    def link(self, user: FakeUser, *, json: bool = False) -> TestResponse:
        callback = self.consent(self.start(), user)
        headers = {"Accept": "application/json"} if json else {}
        return self.client.get(callback, headers=headers)

    def account(self, customer: str = "customer-1") -> Any:
        model = get_state(self.shop.app).models.DiscordAccount
        self.shop.db.session.expire_all()
        return self.shop.db.session.scalar(
            sa.select(model).where(model.store_id == "store-1", model.customer_id == customer)
        )

    def accounts(self) -> int:
        model = get_state(self.shop.app).models.DiscordAccount
        return self.shop.db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


@pytest.fixture
def store(fresh_app: Any, fake_discord: FakeDiscord) -> Iterator[Storefront]:
    app, db, discord_roles = fresh_app(DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url, **LINKING_CONFIG)
    who: dict[str, str | None] = {"customer": "customer-1"}
    discord_roles.customer_loader(lambda: who["customer"])

    @app.route("/checkout", methods=["GET", "POST"])
    @require_discord_link
    def checkout() -> str:
        return "checked out"

    with app.app_context():
        bot = fake_discord.create_bot("Shop Bot")
        guild = fake_discord.create_guild("Shop Guild")
        fake_discord.add_bot_to_guild(bot, guild.id)
        save_bot(
            get_state(app),
            "store-1",
            application_id=bot.application_id,
            public_key=bot.public_key,
            bot_token=bot.token,
            client_secret=bot.client_secret,
        )
        db.session.commit()
        shop = Shop(app, db, fake_discord, bot, guild.id)
        shop.link()
        shop.map("vip", "VIP")
        storefront = Storefront(shop, discord_roles, app.test_client(), who)
        with storefront.client.session_transaction() as session:
            session["cart"] = ["vip"]  # the host's own session data, which no outcome may touch
        yield storefront


def test_linking_stores_the_account_with_tokens_encrypted_and_delivers_what_was_queued(
    store: Storefront,
) -> None:
    buyer = store.fake.create_user("buyer")
    store.fake.add_member(store.shop.guild_id, buyer.id)
    store.shop.buy("order-1", "vip", buyer=None, customer="customer-1")  # paid before linking
    assert store.shop.roles_of(buyer.id) == set()
    seen: list[dict[str, Any]] = []
    with account_linked.connected_to(lambda sender, **kw: seen.append(kw), store.shop.app):
        answer = store.link(buyer)

    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "is linked" in answer.get_data(as_text=True)
    row = store.account()
    assert (row.discord_user_id, row.username) == (buyer.id, "buyer")
    assert row.access_token_ciphertext, "the access token is kept (encrypted) for joining servers later"
    assert row.refresh_token_ciphertext, "and the refresh token"
    plaintext = get_state(store.shop.app).cipher.decrypt(row.access_token_ciphertext)
    assert plaintext not in row.access_token_ciphertext, "tokens are encrypted at rest"
    assert store.shop.roles_of(buyer.id) == {"VIP"}, "what was queued for the customer is delivered"
    assert seen == [
        {
            "store_id": "store-1",
            "customer_id": "customer-1",
            "discord_user_id": buyer.id,
            "previous_discord_user_id": None,
        }
    ]


@pytest.mark.parametrize("already_a_member", [False, True], ids=["new-member", "already-a-member"])
def test_a_store_that_wants_it_adds_the_customer_to_its_server_with_their_roles(
    store: Storefront, already_a_member: bool
) -> None:
    store.shop.settings(join_guilds_on_link=True)
    buyer = store.fake.create_user("buyer")
    if already_a_member:
        store.fake.add_member(store.shop.guild_id, buyer.id)
    store.shop.buy("order-1", "vip", buyer=None, customer="customer-1")
    start = store.start()
    assert "guilds.join" in parse_qs(urlsplit(start.headers["Location"]).query)["scope"][0]
    answer = store.client.get(store.consent(start, buyer), headers={"Accept": "application/json"})
    assert answer.status_code == 200, answer.json
    assert store.fake.is_member(store.shop.guild_id, buyer.id)
    assert store.shop.roles_of(buyer.id) == {"VIP"}
    assert answer.json["problems"] == []


def test_the_welcome_message_and_where_to_go_next(store: Storefront) -> None:
    store.shop.settings(welcome_message="Welcome to the VIP club!")
    answer = store.link(store.fake.create_user("buyer"), json=True)
    assert answer.json["message"] == "Welcome to the VIP club!"
    assert answer.json["next"] == "/checkout"
    assert answer.json["ok"] is True


def test_the_flow_uses_pkce_s256_and_a_state_bound_to_the_session(store: Storefront) -> None:
    query = parse_qs(urlsplit(store.start().headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["identify"], "guilds.join only when the store adds customers to its server"
    with store.client.session_transaction() as session:
        assert session[PENDING_KEY]["state"] == query["state"][0]


# -- everything that must change nothing -------------------------------------------------------------


def assert_nothing_linked(store: Storefront, answer: TestResponse, status: int, code: str) -> None:
    body = answer.get_json()
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert body["ok"] is False
    assert body["code"] == code, body
    assert store.accounts() == 0
    with store.client.session_transaction() as session:
        assert session.get("cart") == ["vip"], "the customer's cart and session are untouched"


def test_an_attempt_that_took_too_long_is_refused(store: Storefront) -> None:
    start = store.start()
    with store.client.session_transaction() as session:
        pending = dict(session[PENDING_KEY])
        pending["started"] -= 601
        session[PENDING_KEY] = pending
    callback = store.consent(start, store.fake.create_user("buyer"))
    assert_nothing_linked(
        store, store.client.get(callback, headers={"Accept": "application/json"}), 400, "expired"
    )


def test_linking_needs_the_apps_secret_key_for_its_session(fresh_app: Any, fake_discord: FakeDiscord) -> None:
    app, _, discord_roles = fresh_app(
        DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url, **{**LINKING_CONFIG, "SECRET_KEY": None}
    )
    discord_roles.customer_loader(lambda: "customer-1")
    answer = app.test_client().get("/discord/link", headers={"Accept": "application/json"})
    assert answer.status_code == 503
    assert answer.json["code"] == "linking_not_configured"


def test_a_forged_state_is_refused_and_the_real_attempt_still_works(store: Storefront) -> None:
    buyer = store.fake.create_user("buyer")
    callback = store.consent(store.start(), buyer)
    forged = callback.replace("state=", "state=forged")
    assert_nothing_linked(
        store, store.client.get(forged, headers={"Accept": "application/json"}), 400, "invalid_state"
    )
    assert store.client.get(callback).status_code == 200, "the customer's own attempt was left alone"


def test_a_callback_without_a_state_or_from_another_browser_is_refused(store: Storefront) -> None:
    buyer = store.fake.create_user("buyer")
    callback = store.consent(store.start(), buyer)
    code_only = callback.split("&state=")[0]
    json = {"Accept": "application/json"}
    assert_nothing_linked(store, store.client.get(code_only, headers=json), 400, "invalid_state")
    other_browser = store.shop.app.test_client()
    assert_nothing_linked(store, other_browser.get(callback, headers=json), 400, "invalid_state")


def test_a_replayed_callback_is_refused(store: Storefront) -> None:
    buyer = store.fake.create_user("buyer")
    callback = store.consent(store.start(), buyer)
    assert store.client.get(callback).status_code == 200
    replay = store.client.get(callback, headers={"Accept": "application/json"})
    assert replay.status_code == 400
    assert replay.json["code"] == "invalid_state"
    assert store.accounts() == 1


def test_a_pkce_verifier_mismatch_is_refused(store: Storefront) -> None:
    start = store.start()
    with store.client.session_transaction() as session:
        pending = dict(session[PENDING_KEY])
        pending["verifier"] = "x" * 43
        session[PENDING_KEY] = pending
    callback = store.consent(start, store.fake.create_user("buyer"))
    answer = store.client.get(callback, headers={"Accept": "application/json"})
    assert_nothing_linked(store, answer, 400, "invalid_grant")


def test_denied_consent_is_a_clear_answer(store: Storefront) -> None:
    store.fake.oauth_consent = "deny"
    answer = store.link(store.fake.create_user("buyer"))
    assert answer.status_code == 400
    assert "cancelled" in answer.get_data(as_text=True)
    assert store.accounts() == 0


def test_discord_failing_the_token_exchange_is_a_503_to_try_again(store: Storefront) -> None:
    buyer = store.fake.create_user("buyer")
    callback = store.consent(store.start(), buyer)
    store.fake.set_faults(error_rate=1.0, routes=["oauth_token"])
    answer = store.client.get(callback, headers={"Accept": "application/json"})
    assert_nothing_linked(store, answer, 503, "discord_unavailable")


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "/\r\nX: y"],
)
def test_next_is_only_ever_a_local_path(store: Storefront, next_path: str) -> None:
    start = store.start(next_path)
    with store.client.session_transaction() as session:
        assert session[PENDING_KEY]["next"] == "/"
    answer = store.client.get(
        store.consent(start, store.fake.create_user("buyer")), headers={"Accept": "application/json"}
    )
    assert answer.json["next"] == "/", f"{next_path!r} must not be followed"


def test_a_guest_is_told_to_sign_in_and_keeps_the_claim_code_path(store: Storefront) -> None:
    store.who["customer"] = None
    answer = store.client.get("/discord/link", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.json["code"] == "sign_in_required"
    assert "/claim" in answer.json["message"]


def test_disabled_linking_hides_the_prompt_and_refuses_the_flow(store: Storefront) -> None:
    store.shop.settings(linking_enabled=False, checkout_prompt="Link Discord for your roles")
    answer = store.client.get("/discord/link", headers={"Accept": "application/json"})
    assert answer.status_code == 403
    assert answer.json["code"] == "linking_disabled"
    with store.shop.app.test_request_context("/cart"):
        assert render_prompt() == ""


def render_prompt() -> str:
    return render_template_string(
        '{% from "discord_roles/macros.html" import link_prompt %}{{ link_prompt(discord_roles_status()) }}'
    ).strip()


# -- checkout ----------------------------------------------------------------------------------------


def test_require_link_blocks_checkout_until_linked(store: Storefront) -> None:
    store.shop.settings(require_link=True, checkout_prompt="Link Discord to get your VIP role")
    blocked = store.client.get("/checkout")
    assert blocked.status_code == 303
    assert blocked.headers["Location"].startswith("/discord/link?next=")
    refused = store.client.post("/checkout", headers={"Accept": "application/json"})
    assert refused.status_code == 403
    assert refused.json["error"] == "discord_link_required"
    assert refused.json["prompt"] == "Link Discord to get your VIP role"
    with store.shop.app.test_request_context("/cart"):
        prompt = render_prompt()
        assert "Link Discord to get your VIP role" in prompt
        assert 'href="/discord/link?next=%2Fcart"' in prompt
        assert "<script" not in prompt
        assert "style=" not in prompt, "no inline style: the host's CSP applies"

    store.link(store.fake.create_user("buyer"))
    assert store.client.get("/checkout").get_data(as_text=True) == "checked out"
    with store.shop.app.test_request_context("/cart"):
        status = checkout_status(customer_id="customer-1")
        assert status.allowed
        assert status.linked


def test_the_linked_state_shows_the_account_and_an_unlink_form(store: Storefront) -> None:
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    with store.client:
        store.client.get("/checkout")  # a request of this customer, for the template's session
        from flask import session as flask_session

        prompt = render_prompt()
        csrf = flask_session["_discord_roles_csrf"]
    assert "buyer" in prompt
    assert "Change account" in prompt
    assert 'action="/discord/unlink"' in prompt
    assert f'value="{csrf}"' in prompt


# -- relinking, one account per customer -------------------------------------------------------------


def test_relinking_to_another_account_moves_pending_deliveries(store: Storefront) -> None:
    store.shop.settings(delivery_mode="claim")  # deliveries wait for /claim, so they are still pending
    first, second = store.fake.create_user("first"), store.fake.create_user("second")
    store.link(first)
    store.shop.buy("order-1", "vip", buyer=None, customer="customer-1")
    assert [row.discord_user_id for row in store.shop.deliveries()] == [first.id]

    answer = store.link(second, json=True)
    assert answer.status_code == 200, answer.json
    assert store.account().discord_user_id == second.id
    assert [row.discord_user_id for row in store.shop.deliveries()] == [second.id]


def test_a_discord_account_linked_to_another_customer_is_refused(store: Storefront) -> None:
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    store.who["customer"] = "customer-2"
    answer = store.link(buyer, json=True)
    assert answer.status_code == 409
    assert answer.json["code"] == "account_taken"
    assert store.account("customer-2") is None
    assert store.account("customer-1").discord_user_id == buyer.id


def test_unlink_needs_the_form_token_and_removes_the_link(store: Storefront) -> None:
    buyer = store.fake.create_user("buyer")
    store.fake.add_member(store.shop.guild_id, buyer.id)
    store.shop.buy("order-1", "vip", buyer=None, customer="customer-1")
    store.link(buyer)
    forged = store.client.post("/discord/unlink", headers={"Accept": "application/json"})
    assert forged.status_code == 400
    assert forged.json["code"] == "invalid_csrf"
    assert store.account() is not None

    with store.client.session_transaction() as session:
        session["_discord_roles_csrf"] = "known-to-this-browser"
    answer = store.client.post(
        "/discord/unlink",
        data={"discord_roles_csrf": "known-to-this-browser", "next": "/account"},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["code"] == "unlinked"
    assert answer.json["next"] == "/account"
    assert store.account() is None
    assert store.shop.roles_of(buyer.id) == {"VIP"}, "roles already delivered stay"


def test_without_a_customer_loader_flask_logins_current_user_is_the_customer(
    fresh_app: Any, fake_discord: FakeDiscord
) -> None:
    from flask_login import LoginManager, UserMixin, login_user

    app, _, _ = fresh_app(DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url, **LINKING_CONFIG)
    login = LoginManager(app)

    class Customer(UserMixin):
        def __init__(self, customer_id: str) -> None:
            self.id = customer_id

    login.user_loader(Customer)

    @app.post("/login/<customer_id>")
    def sign_in(customer_id: str) -> str:
        login_user(Customer(customer_id))
        return "ok"

    client = app.test_client()
    json = {"Accept": "application/json"}
    assert client.get("/discord/link", headers=json).json["code"] == "sign_in_required"
    client.post("/login/customer-42")
    with client:
        client.get("/")
        assert checkout_status().customer_id == "customer-42"


def test_no_oauth_token_or_secret_appears_in_answers_or_logs(
    store: Storefront, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store.shop.settings(join_guilds_on_link=True)
    buyer = store.fake.create_user("buyer")
    answers = [store.link(buyer), store.link(buyer, json=True)]
    store.fake.set_faults(error_rate=1.0, routes=["oauth_token"])
    callback = store.consent(store.start(), buyer)
    answers.append(store.client.get(callback, headers={"Accept": "application/json"}))
    store.fake.set_faults()
    row = store.account()
    cipher = get_state(store.shop.app).cipher
    secrets = {
        "access token": cipher.decrypt(row.access_token_ciphertext),
        "refresh token": cipher.decrypt(row.refresh_token_ciphertext),
        "client secret": store.shop.bot.client_secret,
        "bot token": store.shop.bot.token,
    }
    logged = "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records)
    for what, secret in secrets.items():
        for answer in answers:
            assert secret not in answer.get_data(as_text=True), f"the {what} was in an answer"
            assert secret not in str(answer.headers), f"the {what} was in a header"
        assert secret not in logged, f"the {what} was logged"
