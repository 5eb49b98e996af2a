import requests
from shop import db

from flask_discord_roles import deliveries, order_completed, order_revoked, role_delivered


def buy(app, order_id, buyer=None):
    order_completed.send(
        app,
        store_id="store-1",
        order_id=order_id,
        customer_id="customer-1",
        package_ids=["vip-pack"],
        discord_user_id=buyer.id if buyer else None,  # None: the customer's linked account, if any
    )
    db.session.commit()  # the delivery runs after the commit


def test_a_paid_order_gives_the_role(app, store, fake_discord):
    buyer = fake_discord.create_user("buyer")
    fake_discord.add_member(store.guild.id, buyer.id)

    buy(app, "1001", buyer)

    assert store.vip.id in fake_discord.member_roles(store.guild.id, buyer.id)


def test_a_refund_takes_the_role_back(app, store, fake_discord):
    buyer = fake_discord.create_user("buyer")
    fake_discord.add_member(store.guild.id, buyer.id)
    buy(app, "1001", buyer)

    order_revoked.send(app, store_id="store-1", order_id="1001", customer_id="customer-1")
    db.session.commit()

    assert store.vip.id not in fake_discord.member_roles(store.guild.id, buyer.id)


def test_role_delivered_is_sent(app, store, fake_discord):
    buyer = fake_discord.create_user("buyer")
    fake_discord.add_member(store.guild.id, buyer.id)
    delivered = []

    with role_delivered.connected_to(lambda sender, delivery: delivered.append(delivery), app):
        buy(app, "1001", buyer)

    assert [(d.order_id, d.role_id) for d in delivered] == [("1001", store.vip.id)]


def test_the_claim_command_answers_the_member(app, client, store, fake_discord):
    buyer = fake_discord.create_user("buyer")
    buy(app, "1001", buyer)  # not in the server yet: the role waits
    fake_discord.add_member(store.guild.id, buyer.id)

    claim = fake_discord.command_payload(store.bot, store.guild.id, buyer, "claim")
    answer = fake_discord.send_interaction(
        "/webhook/discord/interactions/store-1", store.bot, claim, client=client
    )

    assert answer.json()["type"] == 5  # "thinking…", seen only by the member
    initial, edit = fake_discord.interaction_responses[claim["token"]]
    assert initial["kind"] == "initial"  # that "thinking…"
    assert edit["kind"] == "edit_original"  # then the answer, once the role is given
    assert edit["data"]["embeds"][0]["description"] == "✅ **VIP** (order 1001): delivered."
    assert store.vip.id in fake_discord.member_roles(store.guild.id, buyer.id)


def test_a_customer_links_discord_at_checkout(app, client, store, fake_discord):
    buyer = fake_discord.create_user("buyer")
    fake_discord.add_member(store.guild.id, buyer.id)
    client.post("/login/customer-1")

    to_discord = client.get("/discord/link", query_string={"next": "/checkout"})
    fake_discord.oauth_login_as(buyer)  # who clicks Authorize on Discord's page
    back_to_shop = requests.get(to_discord.location, allow_redirects=False, timeout=5)
    linked = client.get(back_to_shop.headers["Location"])

    assert linked.status_code == 200
    buy(app, "1002")  # no Discord id at checkout: the linked account gets the role
    assert store.vip.id in fake_discord.member_roles(store.guild.id, buyer.id)


def test_discord_down_leaves_the_delivery_to_retry(app, store, fake_discord):
    buyer = fake_discord.create_user("buyer")
    fake_discord.add_member(store.guild.id, buyer.id)
    fake_discord.set_faults(error_rate=1.0)  # every call answers 500

    buy(app, "1001", buyer)

    (delivery,) = deliveries.list_deliveries("store-1", order_id="1001").items
    assert delivery.status == "pending"
    assert delivery.reason_code == "discord_unavailable"
    fake_discord.set_faults()  # Discord is back


def test_a_role_above_the_bot_fails_with_the_fix(app, store, fake_discord):
    buyer = fake_discord.create_user("buyer")
    fake_discord.add_member(store.guild.id, buyer.id)
    top = len(fake_discord.guild(store.guild.id).roles)
    fake_discord.move_role(store.guild.id, store.vip.id, top)  # dragged above the bot's role

    buy(app, "1001", buyer)

    (delivery,) = deliveries.list_deliveries("store-1", order_id="1001").items
    assert (delivery.status, delivery.reason_code) == ("failed", "role_above_bot")
    assert store.vip.id not in fake_discord.member_roles(store.guild.id, buyer.id)


def test_what_was_sent_to_discord(app, store, fake_discord):
    buyer = fake_discord.create_user("buyer")
    fake_discord.add_member(store.guild.id, buyer.id)
    fake_discord.clear_calls()

    buy(app, "1001", buyer)

    (call,) = fake_discord.calls_to("PUT", r"/guilds/\d+/members/\d+/roles/\d+$")
    assert call.status == 204
    assert "1001" in call.audit_log_reason  # Discord's audit log names the order
    assert fake_discord.invalid_requests == 0
