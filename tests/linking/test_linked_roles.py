"""Discord Linked Roles: a store declares its fields, customers link with ``role_connections.write``, and
each change to their purchases reaches FakeDiscord as their role connection, pushed with their own token.

The browser is Flask's test client plus ``requests`` for the hop to the fake's authorize page (as in
``test_account_linking``); the pusher runs in the test's thread on a clock the test moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask.testing import FlaskClient

from flask_discord_roles import ValidationError, linked_roles, order_completed, store_settings
from flask_discord_roles._core.bots import get_bot, save_bot
from flask_discord_roles._core.grant_sweeps import end_due_grants
from flask_discord_roles._core.role_connection_sender import RoleConnectionSender, push_due
from flask_discord_roles._engine.worker import Worker
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.state import FakeUser
from tests.api import Api, api_for, assert_documented
from tests.linking import LINKING_CONFIG
from tests.shop import Shop

FIELDS = ["verified_buyer", "active_subscription", "total_orders", "customer_since"]
CONNECTION_PUT = r"/users/@me/applications/\d+/role-connection$"


class Store:
    """A shop whose customer-1 signs in and links Discord through the store's own application."""

    def __init__(self, shop: Shop, client: FlaskClient) -> None:
        self.shop, self.client, self.fake = shop, client, shop.fake
        self.ahead = timedelta()  # how far the pusher's clock runs ahead of the real one
        state = get_state(shop.app)
        self.pusher = RoleConnectionSender(
            state, state.db.engine, "test-pusher", clock=lambda: utcnow() + self.ahead
        )

    def turn_on(self) -> None:
        store_settings.update_settings("store-1", linked_roles_enabled=True)
        self.shop.db.session.commit()

    def link(self, user: FakeUser) -> str:
        """The whole OAuth dance; returns the scopes Discord was asked for."""
        start = self.client.get("/discord/link")
        assert start.status_code == 302, start.get_data(as_text=True)
        scope = parse_qs(urlsplit(start.headers["Location"]).query)["scope"][0]
        self.fake.oauth_login_as(user)
        page = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
        back = urlsplit(page.headers["Location"])
        answer = self.client.get(f"{back.path}?{back.query}", headers={"Accept": "application/json"})
        assert answer.status_code == 200, answer.get_json()
        return scope

    def push(self, *, after: timedelta = timedelta()) -> dict[str, int]:
        self.ahead += after
        return push_due(self.pusher)

    def connection(self, user: FakeUser) -> dict[str, Any] | None:
        """What Discord (the fake) holds for the user: the store's application's connection."""
        return self.fake.role_connection(user, self.shop.bot.application_id)

    def queued(self) -> linked_roles.ConnectionInfo:
        self.shop.db.session.expire_all()
        info = linked_roles.connection_of("store-1", "customer-1")
        assert info is not None, "customer-1's connection was never queued"
        return info

    def subscribe(self, order_id: str, expires_at: datetime) -> None:
        order_completed.send(
            self.shop.app,
            store_id="store-1",
            order_id=order_id,
            customer_id="customer-1",
            package_ids=["vip-monthly"],
            expires_at=expires_at,
            subscription_id="sub-1",
        )
        self.shop.db.session.commit()


@pytest.fixture
def store(fresh_app: Any, fake_discord: FakeDiscord) -> Iterator[Store]:
    app, db, discord_roles = fresh_app(DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url, **LINKING_CONFIG)
    discord_roles.customer_loader(lambda: "customer-1")
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
        shop.map("vip", "VIP")
        shop.map("vip-monthly", "VIP")
        yield Store(shop, app.test_client())


def values(connection: dict[str, Any] | None) -> dict[str, str]:
    assert connection is not None, "the store's application wrote no role connection for the user"
    metadata: dict[str, str] = connection["metadata"]
    return {key: value for key, value in metadata.items() if key != "customer_since"}


# -- the store's fields ---------------------------------------------------------------------------------


def test_turning_it_on_registers_the_fields_and_registering_again_changes_nothing(store: Store) -> None:
    assert store.fake.role_connection_metadata(store.shop.bot.application_id) == []
    store.turn_on()
    declared = store.fake.role_connection_metadata(store.shop.bot.application_id)
    assert [record["key"] for record in declared] == FIELDS
    assert {record["key"]: record["type"] for record in declared} == {
        "verified_buyer": 7,  # BOOLEAN_EQUAL
        "active_subscription": 7,
        "total_orders": 2,  # INTEGER_GREATER_THAN_OR_EQUAL
        "customer_since": 5,  # DATETIME_LESS_THAN_OR_EQUAL: "customer for at least N days"
    }
    assert linked_roles.register_metadata("store-1") == declared, "a second registration is the same"
    assert store.fake.role_connection_metadata(store.shop.bot.application_id) == declared


def test_discord_refusing_the_bot_token_is_a_clear_error_and_saves_nothing(store: Store) -> None:
    store.fake.revoke_bot_token(store.shop.bot)
    with pytest.raises(ValidationError) as refused:
        store.turn_on()
    message = refused.value.errors["linked_roles_enabled"][0]
    assert "refused the bot token" in message, message
    store.shop.db.session.rollback()
    assert store_settings.get_settings("store-1")["linked_roles_enabled"] is False


def test_a_store_whose_customers_cannot_link_through_its_bot_is_told_what_to_save(store: Store) -> None:
    state = get_state(store.shop.app)
    bot = get_bot(state, "store-1")
    assert bot is not None
    bot.client_secret_ciphertext = None  # customers would link through the platform's application
    store.shop.db.session.commit()
    with pytest.raises(ValidationError) as refused:
        store.turn_on()
    assert "client secret" in refused.value.errors["linked_roles_enabled"][0]
    assert store.fake.role_connection_metadata(store.shop.bot.application_id) == []


def test_the_tenant_api_turns_it_on_and_shows_a_customers_connection(store: Store) -> None:
    api: Api = api_for(store.shop.app)
    saved = api.patch("/settings", json={"linked_roles_enabled": True})
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["settings"]["linked_roles_enabled"] is True
    assert store.fake.role_connection_metadata(store.shop.bot.application_id), "registered in the request"

    nothing = api.get("/customers/customer-1/role-connection")
    assert nothing.get_json() == {"customer_id": "customer-1", "connection": None}
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    store.shop.buy("order-1", "vip", buyer=None)
    store.push()
    answer = api.get("/customers/customer-1/role-connection")
    assert answer.status_code == 200, answer.get_json()
    connection = answer.get_json()["connection"]
    assert (connection["status"], connection["discord_user_id"]) == ("sent", buyer.id), connection
    assert connection["metadata"]["verified_buyer"] is True
    assert_documented(api, "get", "/customers/{customer_id}/role-connection", answer)

    again = api.post("/customers/customer-1/role-connection")
    assert again.status_code == 202, again.get_json()
    assert again.get_json()["connection"]["status"] == "pending", "queued anew with fresh values"
    assert_documented(api, "post", "/customers/{customer_id}/role-connection", again)


# -- linking --------------------------------------------------------------------------------------------


def test_the_scope_is_asked_for_only_when_the_store_has_linked_roles_on(store: Store) -> None:
    assert "role_connections.write" not in store.link(store.fake.create_user("early"))
    refused = store.client.get("/discord/linked-roles", headers={"Accept": "application/json"})
    assert (refused.status_code, refused.get_json()["code"]) == (403, "linked_roles_disabled")
    store.turn_on()
    assert "role_connections.write" in store.link(store.fake.create_user("later")).split()
    verification = store.client.get("/discord/linked-roles")
    assert "role_connections.write" in parse_qs(urlsplit(verification.headers["Location"]).query)["scope"][0]


def test_nothing_is_queued_while_the_store_has_it_off(store: Store) -> None:
    store.link(store.fake.create_user("buyer"))
    store.shop.buy("order-1", "vip", buyer=None)
    store.subscribe("order-2", utcnow() + timedelta(days=30))
    model = get_state(store.shop.app).models.RoleConnectionUpdate
    assert store.shop.db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
    assert store.push() == {}


def test_an_account_linked_without_the_scope_is_skipped_with_its_reason(store: Store) -> None:
    buyer = store.fake.create_user("buyer")
    store.link(buyer)  # before the store turned it on: no role_connections.write
    store.turn_on()
    store.shop.buy("order-1", "vip", buyer=None)
    assert store.push() == {"failed": 1}
    queued = store.queued()
    assert queued.reason_code == "scope_missing", queued
    assert store.connection(buyer) is None
    store.link(buyer)  # linking again grants the scope and queues the connection anew
    assert store.push() == {"sent": 1}
    assert values(store.connection(buyer))["verified_buyer"] == "1"


# -- keeping the connection current ---------------------------------------------------------------------


def test_the_connection_follows_orders_and_grants_through_their_life(store: Store) -> None:
    store.turn_on()
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    assert store.push() == {"sent": 1}
    linked = store.connection(buyer)
    assert linked is not None
    assert linked["platform_name"] == "Shop Bot", "the store's bot's name shows on the profile"
    assert values(linked) == {"verified_buyer": "0", "active_subscription": "0", "total_orders": "0"}

    store.shop.buy("order-1", "vip", buyer=None)
    store.push()
    bought = store.connection(buyer)
    assert values(bought) == {"verified_buyer": "1", "active_subscription": "0", "total_orders": "1"}
    assert bought is not None
    assert bought["metadata"]["customer_since"].startswith(str(utcnow().year)), bought

    start = utcnow()
    store.subscribe("order-2", start + timedelta(days=30))
    store.push()
    assert values(store.connection(buyer)) == {
        "verified_buyer": "1",
        "active_subscription": "1",
        "total_orders": "2",
    }, "a subscription starting"

    store.subscribe("order-3", start + timedelta(days=60))
    store.push()
    assert values(store.connection(buyer))["total_orders"] == "3", "a renewal counts as an order"

    end_due_grants(get_state(store.shop.app), now=start + timedelta(days=61))
    store.push(after=timedelta(days=61))  # the sweep's clock and the pusher's agree
    assert values(store.connection(buyer)) == {
        "verified_buyer": "1",
        "active_subscription": "0",
        "total_orders": "3",
    }, "the subscription ending"

    store.shop.refund("order-1", "vip")
    store.push()
    assert values(store.connection(buyer))["total_orders"] == "2", "a refunded order no longer counts"
    queued = store.queued()
    assert queued.status == "sent"
    assert queued.pushed_at is not None


def test_the_worker_pass_pushes_what_is_due(store: Store) -> None:
    """``flask discord-roles worker`` and Celery's process_due run this pass."""
    store.turn_on()
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    store.shop.buy("order-1", "vip", buyer=None)
    Worker(store.shop.app, threads=1).run(once=True)
    assert values(store.connection(buyer))["verified_buyer"] == "1"
    assert store.queued().status == "sent"


def test_an_expired_access_token_is_refreshed_before_the_push(store: Store) -> None:
    store.turn_on()
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    store.fake.clear_calls()
    assert store.push(after=timedelta(days=8)) == {"sent": 1}, "Discord's tokens last a week"
    assert store.fake.calls_to("POST", r"/oauth2/token$"), "the token was refreshed first"
    assert values(store.connection(buyer))["verified_buyer"] == "0"


def test_a_token_discord_ended_early_is_refreshed_after_its_401(store: Store) -> None:
    store.turn_on()
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    store.fake.expire_user_tokens(buyer)
    assert store.push() == {"sent": 1}
    assert store.connection(buyer) is not None


def test_a_429_is_retried_after_discords_pause(store: Store) -> None:
    store.turn_on()
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    store.fake.set_faults(rate_limit_rate=1.0, rate_limit_retry_after=30.0, routes=["role_connection"])
    assert store.push() == {"retried": 1}
    queued = store.queued()
    assert queued.reason_code == "rate_limited", queued
    assert store.push(after=timedelta(seconds=5)) == {}, "not before Discord's retry_after"
    store.fake.set_faults()
    assert store.push(after=timedelta(seconds=30)) == {"sent": 1}
    assert store.connection(buyer) is not None


def test_a_customer_who_revoked_the_app_fails_once_and_is_not_retried(store: Store) -> None:
    store.turn_on()
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    account = get_state(store.shop.app).models.DiscordAccount
    row = store.shop.db.session.scalar(sa.select(account))
    refresh_token = get_state(store.shop.app).cipher.decrypt(row.refresh_token_ciphertext)
    revoked = requests.post(
        f"{store.fake.api_base_url}/oauth2/token/revoke",
        data={"token": refresh_token},
        auth=(store.shop.bot.client_id, store.shop.bot.client_secret),
        timeout=5,
    )
    assert revoked.status_code == 200, revoked.text
    assert store.push() == {"failed": 1}
    queued = store.queued()
    assert (queued.status, queued.reason_code) == ("failed", "authorization_revoked")
    assert store.push(after=timedelta(days=1)) == {}, "a failed connection is not retried by itself"


def test_a_change_while_a_push_is_in_flight_goes_out_after_it_never_beside_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.turn_on()
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    put = store.pusher._put
    second_claims: list[list[int]] = []

    def put_while_the_customer_buys(*args: Any) -> None:
        store.shop.buy("order-1", "vip", buyer=None)  # queued again while this push is in flight
        second_claims.append(store.pusher.claim(10))
        put(*args)

    monkeypatch.setattr(store.pusher, "_put", put_while_the_customer_buys)
    assert store.push() == {"lost": 1}, "it pushed the older values and leaves the newer ones due"
    assert second_claims == [[]], "no second runner pushes the same user at the same time"
    assert values(store.connection(buyer))["verified_buyer"] == "0"
    assert store.queued().status == "pending"
    monkeypatch.undo()
    assert store.push() == {"sent": 1}
    assert values(store.connection(buyer))["verified_buyer"] == "1"


def test_unlinking_takes_the_connection_back_so_no_linked_role_outlives_the_link(store: Store) -> None:
    store.turn_on()
    buyer = store.fake.create_user("buyer")
    store.link(buyer)
    store.shop.buy("order-1", "vip", buyer=None)
    store.push()
    assert values(store.connection(buyer))["verified_buyer"] == "1"

    with store.client.session_transaction() as session:
        session["_discord_roles_csrf"] = "known-to-this-browser"
    unlinked = store.client.post(
        "/discord/unlink",
        data={"discord_roles_csrf": "known-to-this-browser"},
        headers={"Accept": "application/json"},
    )
    assert unlinked.status_code == 200, unlinked.get_data(as_text=True)
    assert unlinked.json is not None
    assert unlinked.json["code"] == "unlinked"

    assert store.connection(buyer) is None, "Discord still shows the unlinked customer as a verified buyer"
    assert linked_roles.connection_of("store-1", "customer-1") is None, "a push is still queued for them"
    assert store.push() == {}, "nothing is pushed for a customer who unlinked"
