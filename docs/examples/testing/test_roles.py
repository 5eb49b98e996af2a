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


def test_a_paid_order_gives_the_role(app, store, discord_world):
    alice = discord_world.member("alice")

    buy(app, "1001", alice)

    assert discord_world.roles_of(alice) == {"VIP"}


def test_a_refund_takes_the_role_back(app, store, discord_world):
    alice = discord_world.member("alice")
    buy(app, "1001", alice)

    order_revoked.send(app, store_id="store-1", order_id="1001", customer_id="customer-1")
    db.session.commit()

    assert discord_world.roles_of(alice) == set()


def test_role_delivered_is_sent(app, store, discord_world):
    delivered = []

    with role_delivered.connected_to(lambda sender, delivery: delivered.append(delivery), app):
        buy(app, "1001", discord_world.member("alice"))

    assert [(d.order_id, d.role_id) for d in delivered] == [("1001", discord_world.roles["VIP"].id)]


def test_the_claim_command_answers_the_member(app, client, store, discord_world, fake_discord):
    alice = discord_world.member("alice")
    fake_discord.remove_member(discord_world.guild.id, alice.id)  # she left the server...
    buy(app, "1001", alice)  # ...so the role cannot be given
    fake_discord.add_member(discord_world.guild.id, alice.id)  # she is back

    answer = discord_world.send_command(client, "claim", user="alice")

    assert answer.deferred  # "thinking…", seen only by her
    assert answer.ephemeral
    assert "✅ **VIP** (order 1001): delivered." in answer.text  # the answer, edited once delivered
    assert [response["kind"] for response in answer.responses] == ["initial", "edit_original"]
    assert discord_world.roles_of(alice) == {"VIP"}


def test_the_claim_button_of_check(app, client, store, discord_world, fake_discord):
    fake_discord.set_faults(error_rate=1.0)  # Discord is down when the order is paid
    buy(app, "1001", discord_world.member("bob"))
    fake_discord.set_faults()  # and back

    check = discord_world.send_command(client, "check", user="bob")
    (row,) = check.message["components"]
    (claim_button,) = row["components"]
    discord_world.press_button(client, claim_button["custom_id"], user="bob")

    assert claim_button["label"] == "Claim"
    assert discord_world.roles_of("bob") == {"VIP"}


def test_a_customer_links_discord_at_checkout(app, client, store, discord_world):
    client.post("/login/customer-1")  # signed in to the shop

    discord_world.link_customer(client, "alice", next="/checkout")  # alice clicks Authorize

    buy(app, "1002")  # no Discord id at checkout: the linked account gets the role
    assert discord_world.roles_of("alice") == {"VIP"}


def test_a_customer_who_cancels_on_discord_is_not_linked(app, client, store, discord_world):
    client.post("/login/customer-1")

    page = discord_world.link_customer(client, "alice", consent="deny", check=False)

    assert page.status_code == 400
    assert "cancelled" in page.get_data(as_text=True)


def test_discord_down_leaves_the_delivery_to_retry(app, store, discord_world, fake_discord):
    fake_discord.set_faults(error_rate=1.0)  # every call answers 500

    buy(app, "1001", discord_world.member("alice"))

    (delivery,) = deliveries.list_deliveries("store-1", order_id="1001").items
    assert delivery.status == "pending"
    assert delivery.reason_code == "discord_unavailable"
    fake_discord.set_faults()  # Discord is back


def test_a_role_above_the_bot_fails_with_the_fix(app, store, discord_world, fake_discord):
    guild, vip = discord_world.guild, discord_world.roles["VIP"]
    top = len(fake_discord.guild(guild.id).roles)
    fake_discord.move_role(guild.id, vip.id, top)  # dragged above the bot's role

    buy(app, "1001", discord_world.member("alice"))

    (delivery,) = deliveries.list_deliveries("store-1", order_id="1001").items
    assert (delivery.status, delivery.reason_code) == ("failed", "role_above_bot")
    assert discord_world.roles_of("alice") == set()


def test_what_was_sent_to_discord(app, store, discord_world, fake_discord):
    fake_discord.clear_calls()

    buy(app, "1001", discord_world.member("alice"))

    (call,) = fake_discord.calls_to("PUT", r"/guilds/\d+/members/\d+/roles/\d+$")
    assert call.status == 204
    assert "1001" in call.audit_log_reason  # Discord's audit log names the order
    assert fake_discord.invalid_requests == 0
