"""/claim, /check and the Claim button, driven as Discord drives them: signed by FakeDiscord.

The webhook answers at once; whatever runs deliveries then edits the deferred answer with the outcome.
FakeDiscord is the judge of which roles a member holds and of what the @original message says.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_discord_roles import claim_code
from flask_discord_roles._core.interactions import CLAIM_BUTTON
from flask_discord_roles._engine.worker import Worker
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.signing import InteractionResult, sign_interaction
from tests.shop import FAST_QUEUE, Shop, open_shop

URL = "/webhook/discord/interactions/store-1"
DEFERRED, MESSAGE = 5, 4
EPHEMERAL = 64


# A test sees the deferred answer, then runs the worker itself; claim codes need the app's secret.
pytestmark = pytest.mark.app_settings(FAST_QUEUE, DISCORD_ROLES_EXECUTOR="worker", SECRET_KEY="test secret")


@pytest.fixture
def shop(shop: Shop) -> Shop:
    """The folder's shop in claim mode: roles wait for /claim unless a test says otherwise."""
    shop.settings(delivery_mode="claim")
    return shop


def run_claim(
    shop: Shop, client: Any, user: str, *, code: str | None = None
) -> tuple[str, InteractionResult]:
    """/claim as ``user`` runs it; returns the interaction token and the webhook's answer."""
    payload = shop.fake.command_payload(
        shop.bot, shop.guild_id, user, "claim", {"code": code} if code is not None else None
    )
    return payload["token"], shop.fake.send_interaction(URL, shop.bot, payload, client=client)


def run_worker(app: Flask, *, passes: int = 20) -> None:
    """Passes of a worker until no reply is waiting (a reply waits while its deliveries retry)."""
    worker = Worker(app, threads=4, poll_interval=0.05)
    try:
        for _ in range(passes):
            worker.run_pass()
            if _pending_replies(app) == 0:
                return
            time.sleep(0.1)
    finally:
        worker.drainer.close()
    raise AssertionError("a /claim answer was still waiting after the worker's passes")


def _pending_replies(app: Flask) -> int:
    model = get_state(app).models.ClaimReply
    with get_state(app).db.engine.connect() as connection:
        return int(connection.scalar(sa.select(sa.func.count()).where(model.status == "pending")) or 0)


def accepted_edits(shop: Shop, token: str) -> list[dict[str, Any]]:
    """The @original edits Discord accepted (it refuses one that comes before the deferral)."""
    responses = shop.fake.interaction_responses.get(token, [])
    return [r for r in responses if r["kind"] == "edit_original" and r["status"] == 200]


def edited_answer(shop: Shop, token: str) -> dict[str, Any]:
    """The @original message after the executor's edit (fails if it was never edited)."""
    early = shop.fake.responses_before_acknowledgement()
    assert not early, "Discord refused calls made before it had the deferred answer: " + ", ".join(
        f"{e['method']} {e['kind']} ({e['status']})" for e in early
    )
    edits = accepted_edits(shop, token)
    assert edits, "the deferred /claim answer was never edited with the outcome"
    assert len(edits) == 1, f"the answer was edited {len(edits)} times"
    return edits[0]["data"]  # type: ignore[no-any-return]


def description(message: dict[str, Any]) -> str:
    return str(message["embeds"][0]["description"])


def role_puts(shop: Shop) -> list[str]:
    return [call.path for call in shop.fake.calls if call.method == "PUT" and "/roles/" in call.path]


def test_claim_delivers_pending_roles_and_edits_its_deferred_answer(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    shop.map("vip", "Supporter")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    assert shop.roles_of(alice) == set(), "claim mode: nothing is delivered before /claim"

    token, answer = run_claim(shop, client, alice)

    assert answer.status_code == 200
    assert answer.json() == {"type": DEFERRED, "data": {"flags": EPHEMERAL}}, "answered at once, deferred"
    assert role_puts(shop) == [], "no Discord call is made inside the request"
    run_worker(shop.app)
    assert shop.roles_of(alice) == {"VIP", "Supporter"}
    text = description(edited_answer(shop, token))
    assert "✅ **VIP** (order order-1): delivered." in text
    assert "✅ **Supporter** (order order-1): delivered." in text
    assert {row.source for row in shop.deliveries()} == {"interaction"}


def test_the_answer_is_not_edited_until_the_deferral_has_been_sent(shop: Shop, client: FlaskClient) -> None:
    # A host posting to the webhook with Flask's test client: the response is "sent" when it is closed.
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    payload = shop.fake.command_payload(shop.bot, shop.guild_id, alice, "claim")
    body = json.dumps(payload).encode()
    headers = sign_interaction(shop.bot.signing_key, str(int(time.time())), body)

    response = client.post(URL, data=body, headers={"Content-Type": "application/json", **headers})
    assert response.get_json()["type"] == DEFERRED
    run_worker_pass(shop.app)
    assert shop.roles_of(alice) == {"VIP"}, "the role does not wait for the answer to be sent"
    assert not shop.fake.calls_to("PATCH", r"/webhooks/"), "no edit while the deferral is still on its way"
    assert reply_is_due(shop) is False

    response.close()  # what a WSGI server does once it has written the body

    assert reply_is_due(shop) is True, "once the deferral is out, its edit may go"


def run_worker_pass(app: Flask) -> None:
    worker = Worker(app, threads=2)
    try:
        worker.run_pass()
    finally:
        worker.drainer.close()


def reply_is_due(shop: Shop) -> bool:
    reply = get_state(shop.app).models.ClaimReply
    with shop.db.engine.connect() as connection:
        (row,) = connection.execute(sa.select(reply.status, reply.next_attempt_at)).all()
    assert row.status == "pending", f"the reply is {row.status}"
    return bool(row.next_attempt_at.replace(tzinfo=None) <= utcnow().replace(tzinfo=None))


def test_claim_with_nothing_owed_answers_at_once(shop: Shop, client: FlaskClient) -> None:
    bob = shop.member("bob")
    _, answer = run_claim(shop, client, bob)
    body = answer.json()
    assert body["type"] == MESSAGE
    assert body["data"]["flags"] == EPHEMERAL
    assert body["data"]["embeds"][0]["title"] == "No purchases found"
    assert "/claim code:" in body["data"]["embeds"][0]["description"], "tells a guest what to do"


def test_claim_gives_back_an_active_role_that_went_missing(shop: Shop, client: FlaskClient) -> None:
    shop.settings(delivery_mode="automatic")
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    run_worker(shop.app)
    assert shop.roles_of(alice) == {"VIP"}
    shop.fake.remove_member(shop.guild_id, alice)  # left the server, and came back without roles
    shop.fake.add_member(shop.guild_id, alice)

    token, answer = run_claim(shop, client, alice)

    assert answer.json()["type"] == DEFERRED
    run_worker(shop.app)
    assert shop.roles_of(alice) == {"VIP"}, "the still-active purchase's role is applied again"
    assert "✅ **VIP**" in description(edited_answer(shop, token))
    (row,) = shop.deliveries()
    assert (row.status, row.role_was_present) == ("completed", False), "still recorded as our grant"


def test_claim_does_not_reapply_a_refunded_or_held_role(shop: Shop, client: FlaskClient) -> None:
    shop.settings(delivery_mode="automatic")
    shop.map("vip", "VIP")
    shop.map("gold", "Gold")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    shop.buy("order-2", "gold", buyer=alice)
    run_worker(shop.app)
    shop.refund("order-2", "gold")
    run_worker(shop.app)
    assert shop.roles_of(alice) == {"VIP"}
    shop.fake.clear_calls()

    _, answer = run_claim(shop, client, alice)

    body = answer.json()
    assert body["type"] == MESSAGE, "nothing to run: answered at once"
    assert body["data"]["embeds"][0]["title"] == "Nothing to claim"
    assert role_puts(shop) == [], "neither the held VIP nor the refunded Gold is sent again"


def test_claiming_two_tiers_ends_with_the_higher_and_a_second_claim_gives_nothing_back(
    shop: Shop, client: FlaskClient
) -> None:
    shop.map("bronze", "Bronze", group="membership", rank=1)
    shop.map("gold", "Gold", group="membership", rank=2)
    alice = shop.member("alice")
    shop.buy("order-1", "bronze", buyer=alice)
    shop.buy("order-2", "gold", buyer=alice)

    run_claim(shop, client, alice)
    run_worker(shop.app)
    assert shop.roles_of(alice) == {"Gold"}, "the lower tier steps aside for the higher one"
    shop.fake.clear_calls()

    _, answer = run_claim(shop, client, alice)
    assert answer.json()["data"]["embeds"][0]["title"] == "Nothing to claim", "Bronze is outranked, not owed"
    assert role_puts(shop) == []


def test_claim_honours_the_claim_window(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    (row,) = shop.deliveries()
    row.expires_at = utcnow() - timedelta(minutes=5)  # the worker has not swept it yet
    shop.db.session.commit()

    _, answer = run_claim(shop, client, alice)

    body = answer.json()
    assert body["type"] == MESSAGE
    assert "time to claim it ran out" in body["data"]["embeds"][0]["description"]
    assert shop.statuses() == [("add", "expired", "claim_expired")]
    assert shop.roles_of(alice) == set()
    assert role_puts(shop) == []


def test_a_claim_code_ties_a_guest_order_to_whoever_types_it_once(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    shop.buy("order-7", "vip", buyer=None, customer="guest-1")
    with shop.app.app_context():
        code = claim_code("store-1", "order-7")
    assert code.startswith("order-7-")
    assert len(code) == len("order-7-") + 12
    alice, mallory = shop.member("alice"), shop.member("mallory")

    _, wrong = run_claim(shop, client, alice, code="order-7-AAAAAAAAAAAA")
    assert "not right" in wrong.json()["data"]["content"]
    assert shop.deliveries()[0].discord_user_id is None, "a wrong code ties nothing"

    token, answer = run_claim(shop, client, alice, code=code.lower())  # typed in lower case
    assert answer.json()["type"] == DEFERRED
    run_worker(shop.app)
    assert shop.roles_of(alice) == {"VIP"}
    assert "✅ **VIP**" in description(edited_answer(shop, token))

    _, again = run_claim(shop, client, mallory, code=code)
    assert "already claimed by another Discord account" in again.json()["data"]["embeds"][0]["description"]
    assert shop.roles_of(mallory) == set()


def test_in_an_automatic_store_a_claim_code_delivers_the_order_in_every_server(
    shop: Shop, client: FlaskClient
) -> None:
    shop.settings(delivery_mode="automatic")
    other = shop.fake.create_guild("Second Server")
    shop.fake.add_bot_to_guild(shop.bot, other.id)
    elsewhere = shop.fake.create_role(other.id, "Elsewhere").id
    shop.map("vip", "VIP")
    shop.link(other.id)
    mapping = get_state(shop.app).models.RoleMapping
    shop.db.session.add(
        mapping(
            store_id="store-1", package_id="vip", guild_id=other.id, role_id=elsewhere, role_name="Elsewhere"
        )
    )
    shop.db.session.commit()
    alice = shop.member("alice")
    shop.fake.add_member(other.id, alice)
    shop.buy("order-7", "vip", buyer=None, customer="guest-1")
    with shop.app.app_context():
        code = claim_code("store-1", "order-7")

    token, _ = run_claim(shop, client, alice, code=code)
    run_worker(shop.app)

    assert shop.roles_of(alice) == {"VIP"}
    assert shop.fake.member_roles(other.id, alice) == {elsewhere}, "the order's role in the other server too"
    assert description(edited_answer(shop, token)).count("✅") == 2


def test_a_claim_code_from_another_store_is_refused(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    shop.buy("order-7", "vip", buyer=None, customer="guest-1")
    with shop.app.app_context():
        other_store_code = claim_code("store-2", "order-7")
    _, answer = run_claim(shop, client, shop.member("alice"), code=other_store_code)
    assert "not right" in answer.json()["data"]["content"]


def test_claim_reports_a_hierarchy_failure_in_words(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    shop.fake.move_role(shop.guild_id, shop.role("Legend"), 100)  # dragged above the bot's role
    shop.map("vip", "Legend")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)

    token, _ = run_claim(shop, client, alice)
    run_worker(shop.app)

    message = edited_answer(shop, token)
    text = description(message)
    assert message["embeds"][0]["title"] == "1 of 2 roles delivered"
    assert "✅ **VIP**" in text
    assert "❌ **Legend** (order order-1): not delivered. Move the bot's role above «Legend»" in text


def test_a_linked_customer_claims_purchases_made_before_linking(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    shop.buy("order-1", "vip", buyer=None, customer="customer-9")
    alice = shop.member("alice")
    account = get_state(shop.app).models.DiscordAccount
    shop.db.session.add(account(store_id="store-1", customer_id="customer-9", discord_user_id=alice))
    shop.db.session.commit()

    _, answer = run_claim(shop, client, alice)

    assert answer.json()["type"] == DEFERRED
    run_worker(shop.app)
    assert shop.roles_of(alice) == {"VIP"}


def test_check_lists_deliveries_and_its_claim_button_claims(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    check = shop.fake.send_interaction(
        URL, shop.bot, shop.fake.command_payload(shop.bot, shop.guild_id, alice, "check"), client=client
    )
    data = check.json()["data"]
    assert data["flags"] == EPHEMERAL
    assert "⏳ **VIP** · order order-1: waiting, claim before <t:" in data["embeds"][0]["description"]
    (button,) = data["components"][0]["components"]
    assert (button["label"], button["custom_id"]) == ("Claim", CLAIM_BUTTON)

    press = shop.fake.component_payload(shop.bot, shop.guild_id, alice, button["custom_id"])
    pressed = shop.fake.send_interaction(URL, shop.bot, press, client=client)

    assert pressed.json()["type"] == DEFERRED
    run_worker(shop.app)
    assert shop.roles_of(alice) == {"VIP"}
    assert "✅ **VIP**" in description(edited_answer(shop, press["token"]))
    after = shop.fake.send_interaction(
        URL, shop.bot, shop.fake.command_payload(shop.bot, shop.guild_id, alice, "check"), client=client
    ).json()["data"]
    assert "✅ **VIP** · order order-1: delivered." in after["embeds"][0]["description"]
    assert "components" not in after, "nothing pending: no Claim button"


def test_check_lists_a_linked_customers_guest_purchases_here_and_nobody_elses(
    shop: Shop, client: FlaskClient
) -> None:
    elsewhere = shop.fake.create_guild("Elsewhere").id
    shop.fake.add_bot_to_guild(shop.bot, elsewhere)
    shop.map("vip", "VIP")
    shop.map("course", "Course", guild_id=elsewhere)
    alice, bob = shop.member("alice"), shop.member("bob")
    shop.buy("order-1", "vip", "course", buyer=None, customer="customer-9")  # alice, before she linked
    shop.buy("order-2", "vip", buyer=None, customer="customer-8")  # another guest
    shop.buy("order-3", "vip", buyer=bob, customer="customer-7")
    shop.buy("order-4", "vip", buyer=alice, customer="customer-9")
    account = get_state(shop.app).models.DiscordAccount
    shop.db.session.add(account(store_id="store-1", customer_id="customer-9", discord_user_id=alice))
    shop.db.session.commit()

    def orders_listed(user: str) -> list[str]:
        payload = shop.fake.command_payload(shop.bot, shop.guild_id, user, "check")
        answer = shop.fake.send_interaction(URL, shop.bot, payload, client=client).json()["data"]
        return re.findall(r"order (order-\d)", answer["embeds"][0]["description"])

    assert orders_listed(alice) == ["order-4", "order-1"], (
        "alice's /check lists her own purchase and the one she made as a guest before linking, "
        "newest first, and only their roles in this server"
    )
    assert orders_listed(bob) == ["order-3"], "bob sees only his own purchase"


def test_the_answer_waits_while_a_delivery_retries_and_reports_the_outcome(
    shop: Shop, client: FlaskClient
) -> None:
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    token, _ = run_claim(shop, client, alice)
    shop.fake.set_faults(error_rate=1.0, routes=["member_role"])  # Discord answers 500 for a while

    worker = Worker(shop.app, threads=2)
    worker.run_pass()
    worker.drainer.close()

    assert shop.statuses() == [("add", "pending", "discord_unavailable")], "the delivery is retrying"
    assert not [r for r in shop.fake.interaction_responses[token] if r["kind"] == "edit_original"], (
        "the answer is not sent while its delivery is still being retried"
    )
    shop.fake.set_faults()
    time.sleep(0.3)  # FAST_QUEUE's backoff
    run_worker(shop.app)
    assert "✅ **VIP**" in description(edited_answer(shop, token))


def test_an_answer_that_cannot_wait_longer_says_what_is_still_queued(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    token, _ = run_claim(shop, client, alice)
    delivery = get_state(shop.app).models.Delivery
    reply = get_state(shop.app).models.ClaimReply
    later = utcnow() + timedelta(hours=1)
    shop.db.session.execute(sa.update(delivery).values(next_attempt_at=later))  # stuck behind a limit
    shop.db.session.execute(sa.update(reply).values(answer_by=utcnow()))  # the token is about to die
    shop.db.session.commit()

    run_worker(shop.app)

    text = description(edited_answer(shop, token))
    assert "⏳ **VIP** (order order-1): still queued; Discord is busy. Run /check in a few minutes." in text


def test_check_is_answered_and_counted_once_when_delivered_twice(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    alice, bob = shop.member("alice"), shop.member("bob")
    shop.buy("order-1", "vip", buyer=alice)
    payload = shop.fake.command_payload(shop.bot, shop.guild_id, alice, "check")

    first = shop.fake.send_interaction(URL, shop.bot, payload, client=client).json()
    again = shop.fake.send_interaction(URL, shop.bot, payload, client=client).json()
    nothing = shop.fake.send_interaction(
        URL, shop.bot, shop.fake.command_payload(shop.bot, shop.guild_id, bob, "check"), client=client
    ).json()

    assert "**VIP**" in first["data"]["embeds"][0]["description"]
    assert again["data"]["content"] == "This request was already handled."
    assert nothing["data"]["embeds"][0]["title"] == "No purchases found"
    stats = get_state(shop.app).models.StoreBot
    shop.db.session.expire_all()
    bot = shop.db.session.scalar(sa.select(stats))
    assert bot.total_interactions == 2, "a redelivered /check is not counted again"
    assert bot.last_interaction_at is not None


def test_a_worker_forgets_settled_answers_after_a_day(shop: Shop, client: FlaskClient) -> None:
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice)
    run_claim(shop, client, alice)
    run_worker(shop.app)
    reply = get_state(shop.app).models.ClaimReply
    shop.db.session.execute(sa.update(reply).values(created_at=utcnow() - timedelta(days=1, minutes=1)))
    shop.db.session.commit()

    Worker(shop.app, threads=1).run(once=True)

    shop.db.session.expire_all()
    assert shop.db.session.scalars(sa.select(reply)).all() == [], "yesterday's sent answer is forgotten"


def test_claim_and_check_outside_a_server_get_a_polite_answer(shop: Shop, client: FlaskClient) -> None:
    alice = shop.member("alice")
    for command in ("claim", "check"):
        payload = shop.fake.command_payload(shop.bot, None, alice, command)
        answer = shop.fake.send_interaction(URL, shop.bot, payload, client=client).json()
        assert answer["type"] == MESSAGE
        assert "in the server" in answer["data"]["content"]


THREAD_EXECUTOR = FAST_QUEUE | {
    "DISCORD_ROLES_EXECUTOR": "thread",
    "DISCORD_ROLES_THREADS": 4,
    "SECRET_KEY": "test secret",
}


def wait_for_edit(shop: Shop, token: str, *, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if accepted_edits(shop, token) or shop.fake.responses_before_acknowledgement():
            return edited_answer(shop, token)
        time.sleep(0.05)
    raise AssertionError(f"no @original edit within {timeout}s")


@pytest.fixture
def threaded_shop(make_app: Any, database_url: str, fake_discord: FakeDiscord) -> Iterator[Shop]:
    """A shop whose deliveries run on the thread executor, in the background as in production."""
    app, db, _ = make_app(
        database_url, **THREAD_EXECUTOR, DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url
    )
    with app.app_context():
        db.create_all()
        try:
            shop = open_shop(app, db, fake_discord)
            shop.settings(delivery_mode="claim")
            yield shop
        finally:
            fake_discord.set_faults()
            get_state(app).executor.shutdown()
            db.session.remove()
            db.engine.dispose()


def test_a_large_claim_over_a_slow_discord_is_deferred_then_edited(threaded_shop: Shop) -> None:
    shop = threaded_shop
    # Ten roles (one window of Discord's role limit), each a few Discord calls of 100 ms.
    for number in range(10):
        shop.map("bundle", f"Role {number:02}")
    alice = shop.member("alice")
    shop.buy("order-1", "bundle", buyer=alice)
    shop.fake.set_faults(slow_seconds=0.1)  # every Discord call takes 100 ms

    token, answer = run_claim(shop, shop.app.test_client(), alice)

    assert answer.json()["type"] == DEFERRED
    initial = shop.fake.interaction_responses[token][0]
    assert initial["kind"] == "initial"
    message = wait_for_edit(shop, token)
    (edit,) = [r for r in shop.fake.interaction_responses[token] if r["kind"] == "edit_original"]
    assert edit["acknowledged_before"], "the edit came after Discord had the deferred answer"
    assert message["embeds"][0]["title"] == "Your roles are here"
    assert description(message).count("✅") == 10
    assert len(shop.roles_of(alice)) == 10


@pytest.mark.parametrize("executor", ["inline", "thread", "worker"])
def test_whatever_runs_it_the_answer_is_edited_only_once_discord_has_the_deferral(
    make_app: Any, database_url: str, fake_discord: FakeDiscord, executor: str
) -> None:
    # Discord refuses an edit of an interaction it has no answer for yet (404, 10015 Unknown Webhook);
    # with the inline executor the edit used to run after the commit, inside the request still owing it.
    config = FAST_QUEUE | {"DISCORD_ROLES_EXECUTOR": executor, "SECRET_KEY": "test secret"}
    app, db, _ = make_app(database_url, **config, DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url)
    with app.app_context():
        db.create_all()
        try:
            shop = open_shop(app, db, fake_discord)
            shop.settings(delivery_mode="claim")
            shop.map("vip", "VIP")
            alice = shop.member("alice")
            shop.buy("order-1", "vip", buyer=alice)

            token, answer = run_claim(shop, app.test_client(), alice)

            assert answer.json()["type"] == DEFERRED, f"{executor}: /claim defers its answer"
            if executor == "worker":
                run_worker(app)
            message = wait_for_edit(shop, token, timeout=20)
            assert shop.fake.responses_before_acknowledgement() == [], (
                f"{executor}: the app called Discord about an interaction before answering it"
            )
            order = [(r["kind"], r["acknowledged_before"]) for r in shop.fake.interaction_responses[token]]
            assert order == [("initial", False), ("edit_original", True)], (
                f"{executor}: the deferred answer must reach Discord before its edit; Discord saw {order}"
            )
            assert "✅ **VIP** (order order-1): delivered." in description(message)
            assert shop.roles_of(alice) == {"VIP"}
        finally:
            get_state(app).executor.shutdown()
            db.session.remove()
            db.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_twenty_concurrent_claims_by_one_user_deliver_each_role_once(threaded_shop: Shop) -> None:
    shop = threaded_shop
    for number in range(5):
        shop.map("bundle", f"Role {number}")
    alice = shop.member("alice")
    shop.buy("order-1", "bundle", buyer=alice)
    payloads = [shop.fake.command_payload(shop.bot, shop.guild_id, alice, "claim") for _ in range(20)]
    start = threading.Barrier(20)
    answers: list[int] = []

    def claim(payload: dict[str, Any]) -> None:
        client = shop.app.test_client()
        start.wait()
        answers.append(shop.fake.send_interaction(URL, shop.bot, payload, client=client).status_code)

    threads = [threading.Thread(target=claim, args=(payload,)) for payload in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [200] * 20
    for payload in payloads:
        responses = shop.fake.interaction_responses[payload["token"]]
        if responses[0]["data"]["type"] == DEFERRED:
            wait_for_edit(shop, payload["token"])
    puts = role_puts(shop)
    assert sorted(puts) == sorted(set(puts)), f"a role was sent twice: {puts}"
    assert len(puts) == 5, f"each of the 5 roles is sent once, got {puts}"
    assert len(shop.roles_of(alice)) == 5
    assert {row.status for row in shop.deliveries()} == {"completed"}


def test_the_hot_paths_make_no_table_alias_after_their_first_run(
    shop: Shop, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout, /claim, /check and the runner build their statements once: an alias made per call
    copies every column of its table (the tier rule's two cost each /claim and each job milliseconds)."""
    shop.map("bronze", "Bronze", group="membership", rank=1)  # tiers: the rule's aliases are in play
    shop.map("gold", "Gold", group="membership", rank=2)
    alice = shop.member("alice")

    def every_path(order: str) -> tuple[InteractionResult, InteractionResult]:
        shop.buy(order, "gold", buyer=alice)
        _, claimed = run_claim(shop, client, alice)
        run_worker(shop.app)
        checked = shop.fake.send_interaction(
            URL, shop.bot, shop.fake.command_payload(shop.bot, shop.guild_id, alice, "check"), client=client
        )
        return claimed, checked

    shop.buy("order-1", "bronze", buyer=alice)
    every_path("order-2")  # the first run of each path builds what it uses
    shop.fake.remove_member(shop.guild_id, alice)  # back without roles: the next claim runs Gold again
    shop.fake.add_member(shop.guild_id, alice)
    proxies: list[str] = []
    make_proxy = sa.Column._make_proxy

    def counted(column: sa.Column[Any], *args: Any, **kwargs: Any) -> Any:
        proxies.append(f"{column.table.name}.{column.name}")
        return make_proxy(column, *args, **kwargs)

    monkeypatch.setattr(sa.Column, "_make_proxy", counted)

    claimed, checked = every_path("order-3")

    assert claimed.json()["type"] == DEFERRED
    assert "Your deliveries" in json.dumps(checked.json())
    assert shop.roles_of(alice) == {"Gold"}
    assert proxies == [], (
        f"a checkout, /claim, /check and their run copied {len(proxies)} columns into new aliases "
        f"(first: {proxies[:3]}): a statement on their path is built per call; build it once "
        "(see _core/aliases.py)"
    )
