"""The hosts' kit: ``discord_world`` and its helpers, used the way a storefront's own tests use them.

The host here is built with the public API only (``DiscordRoles``, ``bots``, ``guilds``, the signals),
as a storefront's test suite would; the fake stays the judge of what happened in Discord.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, Response, redirect, session
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import bots, customers, guilds, order_completed
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.fixtures import DiscordWorld, build_discord_world
from flask_discord_roles.testing.permissions import MANAGE_ROLES

STORE_WEBHOOK = "/webhook/discord/interactions/store-1"


@dataclass
class Host:
    """A storefront whose store "store-1" has saved the world's bot, linked its server and mapped VIP."""

    app: Flask
    db: SQLAlchemy
    client: FlaskClient

    def buy(self, order_id: str, discord_user_id: str | None = None) -> None:
        order_completed.send(
            self.app,
            store_id="store-1",
            order_id=order_id,
            customer_id="customer-1",
            package_ids=["vip-pack"],
            discord_user_id=discord_user_id,
        )
        self.db.session.commit()


@pytest.fixture
def host(fresh_app: Any, fake_discord: FakeDiscord, discord_world: DiscordWorld) -> Iterator[Host]:
    app, db, discord_roles = fresh_app(
        DISCORD_ROLES_API_BASE_URL=fake_discord.api_base_url,
        DISCORD_ROLES_STORE_ID="store-1",
        SECRET_KEY="a secret for the session cookie",
    )
    discord_roles.customer_loader(lambda: session.get("customer_id"))

    @app.post("/login/<customer_id>")
    def login(customer_id: str) -> tuple[str, int]:
        session["customer_id"] = customer_id
        return "", 204

    @app.get("/account/discord")
    def connect_discord() -> Response:
        return redirect("/discord/link?next=/account", 303)  # a host's own page that leads to linking

    client = app.test_client()
    world = discord_world
    world.interactions_url = STORE_WEBHOOK
    with app.app_context():
        bots.save_bot(
            "store-1",
            application_id=world.bot.application_id,
            public_key=world.bot.public_key,
            bot_token=world.bot.token,
            client_secret=world.bot.client_secret,
        )
        issued = guilds.create_link_code("store-1")
        db.session.commit()
        world.send_command(client, "link", {"code": issued.code}, user=world.owner)
        guilds.create_mapping("store-1", "vip-pack", world.guild.id, world.roles["VIP"].id)
        db.session.commit()
        yield Host(app, db, client)


def test_the_world_is_a_bot_above_the_roles_it_gives_and_members_without_roles(
    discord_world: DiscordWorld, fake_discord: FakeDiscord
) -> None:
    world = discord_world
    assert fake_discord.is_member(world.guild.id, world.bot.user_id), "the bot must be in its server"
    assert world.bot_role.permissions & MANAGE_ROLES, "the bot's role must carry Manage Roles"
    for name in ("VIP", "Supporter"):
        assert world.roles[name].position < world.bot_role.position, f"{name} must sit below the bot's role"
    assert world.roles["Supporter"].position < world.roles["VIP"].position, "VIP is the higher role"
    assert sorted(world.members) == ["alice", "bob"]
    assert world.member("alice").global_name == "Alice"
    assert world.roles_of("alice") == set(), "members start with no role"
    assert world.roles_of("bob") == set(), "members start with no role"
    assert world.channel is not None
    assert world.channel.name == "general"


def test_a_name_the_world_does_not_have_is_refused_with_the_names_it_has(
    discord_world: DiscordWorld,
) -> None:
    with pytest.raises(LookupError, match=r"no member named 'carol'.*\['alice', 'bob'\]"):
        discord_world.member("carol")
    with pytest.raises(LookupError, match=r"no role named 'Legend'.*\['Supporter', 'VIP'\]"):
        discord_world.add_member("carol", roles=["Legend"])
    assert "carol" not in discord_world.members, "a refused member must not be half added"
    with pytest.raises(ValueError, match="already has a member named 'alice'"):
        discord_world.add_member("alice")
    with pytest.raises(ValueError, match="already has a role named 'VIP'"):
        discord_world.add_role("VIP")


def test_roles_and_members_added_later_fit_the_same_rules(discord_world: DiscordWorld) -> None:
    world = discord_world
    legend = world.add_role("Legend")
    carol = world.add_member("carol", roles=["VIP", "Legend"])

    assert legend.position < world.bot_role.position, "a new role must stay giveable by the bot"
    assert world.member("carol") is carol
    assert world.roles_of(carol) == {"VIP", "Legend"}
    assert world.roles_of("carol") == {"VIP", "Legend"}


def test_a_worlds_repr_names_things_and_shows_no_token(discord_world: DiscordWorld) -> None:
    shown = repr(discord_world)

    assert discord_world.bot.token not in shown, "a failing test prints its fixtures: no token in them"
    assert discord_world.bot.client_secret not in shown
    assert shown == (
        "DiscordWorld(bot='Shop Bot', guild='Shop Server', roles=['VIP', 'Supporter'], "
        "members=['alice', 'bob'], interactions_url='/webhook/discord/interactions')"
    )


def test_a_world_of_your_own_shape(fake_discord: FakeDiscord) -> None:
    world = build_discord_world(
        fake_discord, roles=["Gold", "Silver", "Bronze"], members=["dana"], guild_name="Guild"
    )

    by_rank = sorted(world.roles.values(), key=lambda role: role.position, reverse=True)
    assert [role.name for role in by_rank] == ["Gold", "Silver", "Bronze"], (
        "roles are given highest first, as Discord lists them"
    )
    assert list(world.roles) == ["Gold", "Silver", "Bronze"]
    assert world.guild.name == "Guild"
    assert list(world.members) == ["dana"]


def test_the_owner_links_the_server_with_the_permissions_discord_computes(
    host: Host, discord_world: DiscordWorld
) -> None:
    (linked,) = guilds.list_guilds("store-1")
    assert linked.guild_id == discord_world.guild.id, (
        "the owner's /link (in the fixture) must link the server"
    )

    with host.app.app_context():
        code = guilds.create_link_code("store-1").code
    refused = discord_world.send_command(host.client, "link", {"code": code}, user="alice")

    assert "Manage Server" in refused.text, (
        f"alice has no Manage Server, as Discord tells the app: {refused.text!r}"
    )


def test_help_is_answered_to_the_member_only(host: Host, discord_world: DiscordWorld) -> None:
    answer = discord_world.send_command(host.client, "help", user="alice")

    assert answer.status_code == 200
    assert answer.ephemeral, "/help must be seen by the member only"
    assert not answer.deferred
    assert "/claim" in answer.text, f"/help must explain /claim; it said: {answer.text!r}"


def test_claim_gives_the_role_and_the_edited_answer_says_so(host: Host, discord_world: DiscordWorld) -> None:
    alice = discord_world.member("alice")
    discord_world.fake.remove_member(discord_world.guild.id, alice.id)
    host.buy("1001", alice.id)  # she is not in the server: the role waits for her
    discord_world.fake.add_member(discord_world.guild.id, alice.id)

    answer = discord_world.send_command(host.client, "claim", user=alice)

    assert answer.deferred, "/claim with something to deliver answers 'thinking…' first"
    message = answer.wait_for_message(timeout=5)
    assert message["embeds"], f"the edited answer must list the roles: {message}"
    assert "delivered" in answer.text, f"the answer must say VIP was delivered: {answer.text!r}"
    assert discord_world.roles_of("alice") == {"VIP"}
    assert [r["kind"] for r in answer.responses] == ["initial", "edit_original"]


def test_the_claim_button_of_check_is_pressed_like_a_member_would(
    host: Host, discord_world: DiscordWorld
) -> None:
    bob = discord_world.member("bob")
    discord_world.fake.set_faults(error_rate=1.0, routes=["member_role"])
    host.buy("2001", bob.id)  # Discord is down: the role waits
    discord_world.fake.set_faults()

    check = discord_world.send_command(host.client, "check", user="bob")
    buttons = [
        button["custom_id"]
        for row in (check.wait_for_message().get("components") or [])
        for button in row["components"]
    ]
    assert len(buttons) == 1, f"/check must offer one Claim button while a role waits: {check.message}"
    pressed = discord_world.press_button(host.client, buttons[0], user="bob")

    assert pressed.status_code == 200
    pressed.wait_for_message(timeout=5)
    assert discord_world.roles_of("bob") == {"VIP"}


def test_an_answer_other_than_200_fails_the_test_with_what_the_app_said(
    host: Host, discord_world: DiscordWorld
) -> None:
    with pytest.raises(AssertionError, match=r"/help was answered 404 by /webhook/discord/interactions/no"):
        discord_world.send_command(host.client, "help", user="alice", url="/webhook/discord/interactions/no")

    refused = discord_world.send_command(
        host.client, "help", user="alice", url="/webhook/discord/interactions/no", check=False
    )
    assert refused.status_code == 404, "check=False must hand the refusal back instead of failing"


def test_a_customer_links_discord_and_their_purchase_follows(host: Host, discord_world: DiscordWorld) -> None:
    host.client.post("/login/customer-1")

    linked = discord_world.link_customer(host.client, "alice", next="/thanks")

    assert linked.status_code == 200
    assert "/thanks" in linked.get_data(as_text=True), "the page must lead back to next"
    status = customers.customer_status("store-1", "customer-1")
    assert status.account is not None
    assert status.account.discord_user_id == discord_world.member("alice").id
    host.buy("3001")  # no Discord id at checkout: the linked account gets the role
    assert discord_world.roles_of("alice") == {"VIP"}


def test_a_cancelled_consent_is_the_apps_refusal_and_leaves_the_fakes_settings_alone(
    host: Host, discord_world: DiscordWorld, fake_discord: FakeDiscord
) -> None:
    host.client.post("/login/customer-1")
    fake_discord.interactive_consent = True  # a browser test's setting: the helper must put it back

    with pytest.raises(AssertionError, match="linking 'alice' failed: the callback answered 400"):
        discord_world.link_customer(host.client, "alice", consent="deny")
    refused = discord_world.link_customer(host.client, "alice", consent="deny", check=False)

    assert refused.status_code == 400
    assert customers.customer_status("store-1", "customer-1").account is None
    assert fake_discord.interactive_consent is True
    assert fake_discord.oauth_consent == "allow"


def test_linking_a_guest_fails_with_the_apps_answer(host: Host, discord_world: DiscordWorld) -> None:
    with pytest.raises(
        AssertionError, match=r"the app did not send the browser to Discord: it answered 4\d\d"
    ):
        discord_world.link_customer(host.client, "alice")


def test_linking_follows_the_apps_own_redirects_to_discord(host: Host, discord_world: DiscordWorld) -> None:
    host.client.post("/login/customer-1")
    linked = discord_world.link_customer(host.client, "bob", start="/account/discord")

    assert linked.status_code == 200
    assert customers.customer_status("store-1", "customer-1").account is not None
