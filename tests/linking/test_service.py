"""Linking a customer's Discord account (services.linking) against FakeDiscord's real OAuth endpoints.

Tokens come from the fake's authorize page and token endpoint over HTTP (PKCE included), the way the
callback view gets them; deliveries run inline when the test commits, as the host's commit would run them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._core import linking
from flask_discord_roles._core.bots import get_bot
from flask_discord_roles._core.oauth_apps import oauth_app_for
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import DiscordRolesState, get_state
from flask_discord_roles.discord.oauth import (
    InvalidGrant,
    OAuthClient,
    TokenSet,
    authorize_endpoint_for,
    authorize_url,
    new_pkce,
)
from flask_discord_roles.discord.permissions import CREATE_INSTANT_INVITE, MANAGE_ROLES
from flask_discord_roles.signals import account_linked, account_unlinked
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.state import FakeUser
from tests.shop import Shop, open_shop

REDIRECT_URI = "http://127.0.0.1/discord/callback"


@pytest.fixture
def shop(app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord) -> Shop:
    """A store with a linked server whose bot may add members, and its own OAuth application saved."""
    shop = open_shop(app, db, fake_discord, bot_permissions=MANAGE_ROLES | CREATE_INSTANT_INVITE)
    shop.map("vip", "VIP")
    shop.link()
    state = get_state(app)
    bot = get_bot(state, shop.store_id)
    assert bot is not None
    bot.client_secret_ciphertext = state.cipher.encrypt(shop.bot.client_secret)
    db.session.commit()
    return shop


def state_of(shop: Shop) -> DiscordRolesState:
    return get_state(shop.app)


@contextmanager
def oauth_client(shop: Shop) -> Iterator[OAuthClient]:
    app = oauth_app_for(state_of(shop), shop.store_id)
    assert app is not None, "the store's own application is configured"
    with app.client(state_of(shop)) as client:
        yield client


def authorize(
    shop: Shop, user: FakeUser, scopes: tuple[str, ...] = ("identify", "guilds.join")
) -> tuple[TokenSet, dict[str, Any]]:
    """The browser dance: ``user`` consents on the fake's page, the code is exchanged with PKCE."""
    shop.fake.oauth_login_as(user)
    pkce = new_pkce()
    url = authorize_url(
        authorize_endpoint_for(shop.fake.api_base_url),
        client_id=shop.bot.client_id,
        redirect_uri=REDIRECT_URI,
        scopes=scopes,
        state="state-1",
        code_challenge=pkce.challenge,
    )
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    with oauth_client(shop) as client:
        tokens = client.exchange_code(code, redirect_uri=REDIRECT_URI, code_verifier=pkce.verifier)
        return tokens, client.current_user(tokens.access_token)


def token_works(shop: Shop, access_token: str) -> bool:
    with oauth_client(shop) as client:
        try:
            client.current_user(access_token)
        except InvalidGrant:  # GET /users/@me answered 401
            return False
    return True


def link(shop: Shop, customer: str, user: FakeUser, **kwargs: Any) -> tuple[linking.LinkOutcome, TokenSet]:
    tokens, me = authorize(shop, user, **kwargs)
    outcome = linking.link_account(state_of(shop), shop.store_id, customer, user=me, tokens=tokens)
    return outcome, tokens


def raw_account(shop: Shop, customer: str) -> Any:
    """The row as stored, read with plain SQL rather than through the model."""
    shop.db.session.expire_all()
    return (
        shop.db.session.execute(
            sa.text(
                "SELECT discord_user_id, access_token_ciphertext, refresh_token_ciphertext, "
                "token_expires_at, scopes FROM discord_roles_accounts "
                "WHERE store_id = :store AND customer_id = :customer"
            ),
            {"store": shop.store_id, "customer": customer},
        )
        .mappings()
        .first()
    )


@contextmanager
def receiving(signal: Any) -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **payload: Any) -> None:
        received.append(payload)

    signal.connect(receiver)
    try:
        yield received
    finally:
        signal.disconnect(receiver)


# -- linking ----------------------------------------------------------------------------------------


def test_link_stores_the_account_with_its_tokens_encrypted(shop: Shop) -> None:
    user = shop.fake.create_user("ada", global_name="Ada L.", avatar="a_0123abcd")
    outcome, tokens = link(shop, "customer-1", user)
    shop.db.session.commit()

    assert outcome.previous_discord_user_id is None
    account = linking.get_account(state_of(shop), shop.store_id, "customer-1")
    assert account == outcome.account
    assert account is not None
    assert (account.discord_user_id, account.username, account.global_name) == (user.id, "ada", "Ada L.")
    assert account.avatar_url == f"{shop.fake.cdn_url}/avatars/{user.id}/a_0123abcd.gif"
    assert tokens.access_token not in repr(account)

    row = raw_account(shop, "customer-1")
    for secret, stored in (
        (tokens.access_token, row["access_token_ciphertext"]),
        (tokens.refresh_token, row["refresh_token_ciphertext"]),
    ):
        assert secret
        assert stored
        assert secret not in stored, "tokens are encrypted at rest"
        assert state_of(shop).cipher.decrypt(stored) == secret
    assert row["scopes"] == "identify guilds.join"
    assert row["token_expires_at"] is not None
    assert linking.get_account(state_of(shop), shop.store_id, "customer-2") is None


def test_queued_roles_are_delivered_once_the_link_is_committed(shop: Shop) -> None:
    member = shop.fake.create_user("buyer")
    shop.fake.add_member(shop.guild_id, member.id)
    shop.buy("order-1", "vip", buyer=None, customer="customer-1")

    outcome, _ = link(shop, "customer-1", member)
    assert outcome.due == [row.id for row in shop.deliveries()]
    assert shop.roles_of(member.id) == set(), "nothing is sent before the host commits"
    shop.db.session.commit()

    assert shop.roles_of(member.id) == {"VIP"}
    assert shop.statuses() == [("add", "completed", None)]


def test_claim_mode_attaches_the_account_but_waits_for_claim(shop: Shop) -> None:
    shop.settings(delivery_mode="claim")
    member = shop.fake.create_user("buyer")
    shop.fake.add_member(shop.guild_id, member.id)
    shop.buy("order-1", "vip", buyer=None, customer="customer-1")

    outcome, _ = link(shop, "customer-1", member)
    shop.db.session.commit()

    assert outcome.due == []
    (row,) = shop.deliveries()
    assert (row.discord_user_id, row.status, row.next_attempt_at) == (member.id, "pending", None)
    assert shop.roles_of(member.id) == set()


# -- joining the store's server ---------------------------------------------------------------------


def test_a_new_member_is_joined_then_given_the_queued_roles(shop: Shop) -> None:
    shop.settings(join_guilds_on_link=True)
    newcomer = shop.fake.create_user("newcomer")
    shop.buy("order-1", "vip", buyer=None, customer="customer-1")

    outcome, _ = link(shop, "customer-1", newcomer)
    assert outcome.joined_guild_ids == [shop.guild_id]
    assert outcome.join_problems == []
    assert shop.fake.is_member(shop.guild_id, newcomer.id)
    (join,) = shop.fake.calls_to("PUT", f"/guilds/{shop.guild_id}/members/{newcomer.id}")
    assert "roles" not in (join.json or {}), "roles go through the queue, not the join"
    shop.db.session.commit()

    assert shop.roles_of(newcomer.id) == {"VIP"}
    (row,) = shop.deliveries()
    assert (row.status, row.role_was_present) == ("completed", False), "provenance says we granted it"


def test_an_existing_member_is_not_rejoined_but_still_gets_the_roles(shop: Shop) -> None:
    shop.settings(join_guilds_on_link=True)
    member = shop.fake.create_user("regular")
    shop.fake.add_member(shop.guild_id, member.id)
    shop.buy("order-1", "vip", buyer=None, customer="customer-1")

    outcome, _ = link(shop, "customer-1", member)
    assert (outcome.joined_guild_ids, outcome.join_problems) == ([], [])
    shop.db.session.commit()

    assert shop.roles_of(member.id) == {"VIP"}


def test_a_role_that_failed_because_the_buyer_was_not_in_the_server_comes_due_after_the_join(
    shop: Shop,
) -> None:
    shop.settings(join_guilds_on_link=True)
    buyer = shop.fake.create_user("outsider")
    shop.buy("order-1", "vip", buyer=buyer.id, customer="customer-1")  # Discord id given at checkout
    assert shop.statuses() == [("add", "failed", "member_not_in_guild")]

    outcome, _ = link(shop, "customer-1", buyer)
    assert outcome.joined_guild_ids == [shop.guild_id]
    shop.db.session.commit()

    assert shop.roles_of(buyer.id) == {"VIP"}
    assert shop.statuses() == [("add", "completed", None)]


def test_discord_down_during_the_join_keeps_the_link_and_reports_the_problem(shop: Shop) -> None:
    shop.settings(join_guilds_on_link=True)
    newcomer = shop.fake.create_user("newcomer")
    tokens, me = authorize(shop, newcomer)
    shop.fake.set_faults(error_rate=1.0, routes=["guild_member"])

    outcome = linking.link_account(state_of(shop), shop.store_id, "customer-1", user=me, tokens=tokens)
    shop.db.session.commit()

    assert outcome.joined_guild_ids == []
    (problem,) = outcome.join_problems
    assert shop.guild_id in problem
    assert "Discord did not answer" in problem
    assert tokens.access_token not in problem
    assert linking.get_account(state_of(shop), shop.store_id, "customer-1") is not None
    assert not shop.fake.is_member(shop.guild_id, newcomer.id)


def test_join_problems_say_what_is_wrong_per_server(shop: Shop) -> None:
    shop.settings(join_guilds_on_link=True)
    elsewhere = shop.fake.create_guild("Bot-less Guild")  # the store's bot was never invited there
    shop.link(elsewhere.id)
    newcomer = shop.fake.create_user("newcomer")

    outcome, _ = link(shop, "customer-1", newcomer)

    assert outcome.joined_guild_ids == [shop.guild_id]
    (problem,) = outcome.join_problems
    assert elsewhere.id in problem
    assert "bot is not in this server" in problem


def test_a_grant_without_guilds_join_links_but_cannot_join(shop: Shop) -> None:
    shop.settings(join_guilds_on_link=True)
    newcomer = shop.fake.create_user("newcomer")

    outcome, _ = link(shop, "customer-1", newcomer, scopes=("identify",))

    (problem,) = outcome.join_problems
    assert "guilds.join" in problem
    assert shop.fake.calls_to("PUT", f"/guilds/{shop.guild_id}/members/{newcomer.id}") == []
    assert linking.get_account(state_of(shop), shop.store_id, "customer-1") is not None


def test_a_later_join_refreshes_a_token_discord_expired_early(shop: Shop) -> None:
    newcomer = shop.fake.create_user("newcomer")
    _, tokens = link(shop, "customer-1", newcomer)  # the store did not join customers then
    shop.db.session.commit()
    shop.fake.expire_user_tokens(newcomer)  # our expiry date still says the token is good
    shop.settings(join_guilds_on_link=True)

    joins = linking.join_guilds(state_of(shop), shop.store_id, "customer-1")
    shop.db.session.commit()

    assert (joins.joined_guild_ids, joins.problems) == ([shop.guild_id], [])
    assert shop.fake.is_member(shop.guild_id, newcomer.id)
    joins_sent = shop.fake.calls_to("PUT", f"/guilds/{shop.guild_id}/members/{newcomer.id}")
    assert [call.status for call in joins_sent] == [403, 201], "refused token, refreshed, joined"
    refreshed = linking.access_token_for(state_of(shop), shop.store_id, "customer-1")
    assert refreshed is not None
    assert refreshed != tokens.access_token


# -- relinking --------------------------------------------------------------------------------------


def test_relinking_moves_pending_deliveries_to_the_new_account_and_revokes_the_old_tokens(
    shop: Shop,
) -> None:
    old = shop.fake.create_user("old-account")  # not in the server: its grant stays pending (claim)
    new = shop.fake.create_user("new-account")
    shop.fake.add_member(shop.guild_id, new.id)
    shop.settings(delivery_mode="claim")
    shop.buy("order-1", "vip", buyer=None, customer="customer-1")
    _, old_tokens = link(shop, "customer-1", old)
    shop.db.session.commit()
    assert [(row.discord_user_id, row.status) for row in shop.deliveries()] == [(old.id, "pending")]
    shop.settings(delivery_mode="automatic")

    with receiving(account_linked) as linked:
        outcome, new_tokens = link(shop, "customer-1", new)
        assert linked == [], "signals wait for the commit"
        shop.db.session.commit()

    assert outcome.previous_discord_user_id == old.id
    assert outcome.account.discord_user_id == new.id
    assert linked == [
        {
            "store_id": shop.store_id,
            "customer_id": "customer-1",
            "discord_user_id": new.id,
            "previous_discord_user_id": old.id,
        }
    ]
    assert [(row.discord_user_id, row.status) for row in shop.deliveries()] == [(new.id, "completed")]
    assert shop.roles_of(new.id) == {"VIP"}
    assert not token_works(shop, old_tokens.access_token), "the replaced account's grant is revoked"
    assert token_works(shop, new_tokens.access_token)


def test_delivered_roles_stay_with_the_old_account_on_relink(shop: Shop) -> None:
    old = shop.fake.create_user("old-account")
    new = shop.fake.create_user("new-account")
    for user in (old, new):
        shop.fake.add_member(shop.guild_id, user.id)
    shop.buy("order-1", "vip", buyer=None, customer="customer-1")
    link(shop, "customer-1", old)
    shop.db.session.commit()
    assert shop.roles_of(old.id) == {"VIP"}

    outcome, _ = link(shop, "customer-1", new)
    shop.db.session.commit()

    assert outcome.due == []
    assert shop.roles_of(old.id) == {"VIP"}
    assert shop.roles_of(new.id) == set()
    assert [(row.discord_user_id, row.status) for row in shop.deliveries()] == [(old.id, "completed")]


def test_linking_the_same_account_again_replaces_the_tokens_and_keeps_them_working(shop: Shop) -> None:
    user = shop.fake.create_user("ada")
    first, _ = link(shop, "customer-1", user)
    shop.db.session.commit()

    again, tokens = link(shop, "customer-1", user)
    shop.db.session.commit()

    assert again.previous_discord_user_id is None
    assert again.account.linked_at == first.account.linked_at
    assert linking.access_token_for(state_of(shop), shop.store_id, "customer-1") == tokens.access_token
    assert token_works(shop, tokens.access_token)


def test_one_discord_account_cannot_be_linked_to_two_customers(shop: Shop) -> None:
    user = shop.fake.create_user("shared")
    other = shop.fake.create_user("other")
    link(shop, "customer-1", user)
    link(shop, "customer-2", other)
    shop.db.session.commit()
    before = raw_account(shop, "customer-2")
    tokens, me = authorize(shop, user)

    with receiving(account_linked) as linked, pytest.raises(linking.AccountTaken) as taken:
        linking.link_account(state_of(shop), shop.store_id, "customer-2", user=me, tokens=tokens)
    shop.db.session.commit()

    assert "already linked to another customer" in str(taken.value)
    assert tokens.access_token not in str(taken.value)
    assert raw_account(shop, "customer-2") == before, "nothing changed"
    account = linking.get_account(state_of(shop), shop.store_id, "customer-1")
    assert account is not None
    assert account.discord_user_id == user.id
    assert linked == []


def test_the_same_discord_account_may_link_in_another_store(shop: Shop) -> None:
    user = shop.fake.create_user("ada")
    link(shop, "customer-1", user)
    tokens, me = authorize(shop, user)

    outcome = linking.link_account(state_of(shop), "store-2", "customer-1", user=me, tokens=tokens)
    shop.db.session.commit()

    assert outcome.account.discord_user_id == user.id


# -- unlinking --------------------------------------------------------------------------------------


def test_unlink_revokes_the_tokens_keeps_the_roles_and_signals_after_commit(shop: Shop) -> None:
    member = shop.fake.create_user("buyer")
    shop.fake.add_member(shop.guild_id, member.id)
    shop.buy("order-1", "vip", buyer=None, customer="customer-1")
    _, tokens = link(shop, "customer-1", member)
    shop.db.session.commit()
    assert shop.roles_of(member.id) == {"VIP"}

    with receiving(account_unlinked) as unlinked:
        gone = linking.unlink_account(state_of(shop), shop.store_id, "customer-1")
        assert unlinked == []
        shop.db.session.commit()

    assert gone is not None
    assert gone.discord_user_id == member.id
    assert unlinked == [
        {"store_id": shop.store_id, "customer_id": "customer-1", "discord_user_id": member.id}
    ]
    assert raw_account(shop, "customer-1") is None
    assert linking.get_account(state_of(shop), shop.store_id, "customer-1") is None
    assert not token_works(shop, tokens.access_token), "revoked at Discord"
    assert shop.roles_of(member.id) == {"VIP"}, "delivered roles stay"
    assert linking.unlink_account(state_of(shop), shop.store_id, "customer-1") is None


def test_unlink_goes_ahead_when_discord_is_down_or_the_grant_was_already_revoked(shop: Shop) -> None:
    first, second = shop.fake.create_user("one"), shop.fake.create_user("two")
    _, tokens = link(shop, "customer-1", first)
    link(shop, "customer-2", second)
    shop.db.session.commit()
    with oauth_client(shop) as client:
        client.revoke(tokens.access_token)  # the customer removed the app in Discord's settings

    assert linking.unlink_account(state_of(shop), shop.store_id, "customer-1") is not None
    shop.fake.set_faults(error_rate=1.0, routes=["oauth_token"])
    assert linking.unlink_account(state_of(shop), shop.store_id, "customer-2") is not None
    shop.db.session.commit()

    assert raw_account(shop, "customer-1") is None
    assert raw_account(shop, "customer-2") is None


def test_a_rolled_back_link_sends_nothing(shop: Shop) -> None:
    member = shop.fake.create_user("buyer")
    shop.fake.add_member(shop.guild_id, member.id)
    shop.buy("order-1", "vip", buyer=None, customer="customer-1")

    with receiving(account_linked) as linked:
        link(shop, "customer-1", member)
        shop.db.session.rollback()

    assert linked == []
    assert shop.roles_of(member.id) == set()
    assert linking.get_account(state_of(shop), shop.store_id, "customer-1") is None


# -- the customer's token ---------------------------------------------------------------------------


def test_access_token_for_refreshes_an_expired_token_and_stores_the_new_one(shop: Shop) -> None:
    user = shop.fake.create_user("ada")
    _, tokens = link(shop, "customer-1", user)
    shop.db.session.commit()
    stored = raw_account(shop, "customer-1")
    shop.fake.expire_user_tokens(user)
    later = utcnow() + timedelta(days=8)  # past the stored expiry date

    fresh = linking.access_token_for(state_of(shop), shop.store_id, "customer-1", now=later)
    shop.db.session.commit()

    assert fresh is not None
    assert fresh != tokens.access_token
    assert token_works(shop, fresh)
    assert not token_works(shop, tokens.access_token)
    row = raw_account(shop, "customer-1")
    assert row["access_token_ciphertext"] != stored["access_token_ciphertext"]
    assert fresh not in row["access_token_ciphertext"]
    assert state_of(shop).cipher.decrypt(row["access_token_ciphertext"]) == fresh
    assert linking.access_token_for(state_of(shop), shop.store_id, "customer-1") == fresh, "no refresh now"


def test_a_revoked_grant_means_not_linked_for_joining_without_an_error(shop: Shop) -> None:
    user = shop.fake.create_user("ada")
    _, tokens = link(shop, "customer-1", user)
    shop.db.session.commit()
    with oauth_client(shop) as client:
        client.revoke(tokens.access_token)
    later = utcnow() + timedelta(days=8)

    assert linking.access_token_for(state_of(shop), shop.store_id, "customer-1", now=later) is None
    shop.db.session.commit()

    row = raw_account(shop, "customer-1")
    assert (row["discord_user_id"], row["access_token_ciphertext"], row["refresh_token_ciphertext"]) == (
        user.id,
        None,
        None,
    ), "the tokens are gone, the account stays for deliveries by id"
    assert linking.access_token_for(state_of(shop), shop.store_id, "customer-1") is None
    shop.settings(join_guilds_on_link=True)
    joins = linking.join_guilds(state_of(shop), shop.store_id, "customer-1")
    assert joins.joined_guild_ids == []
    assert "Link Discord again" in joins.problems[0]


def test_access_token_for_lets_discord_being_down_through(shop: Shop) -> None:
    from flask_discord_roles.discord.errors import TransientDiscordError

    user = shop.fake.create_user("ada")
    link(shop, "customer-1", user)
    shop.db.session.commit()
    shop.fake.set_faults(error_rate=1.0, routes=["oauth_token"])

    with pytest.raises(TransientDiscordError):
        linking.access_token_for(
            state_of(shop), shop.store_id, "customer-1", now=utcnow() + timedelta(days=8)
        )
    shop.db.session.rollback()
    assert raw_account(shop, "customer-1")["access_token_ciphertext"] is not None, "nothing cleared"
    assert linking.access_token_for(state_of(shop), shop.store_id, "nobody") is None


def test_a_join_with_a_grant_revoked_before_its_expiry_reports_it_and_clears_the_tokens(
    shop: Shop,
) -> None:
    user = shop.fake.create_user("ada")
    _, tokens = link(shop, "customer-1", user)
    shop.db.session.commit()
    with oauth_client(shop) as client:
        client.revoke(tokens.access_token)  # our expiry date still says the token is good
    shop.settings(join_guilds_on_link=True)

    joins = linking.join_guilds(state_of(shop), shop.store_id, "customer-1")
    shop.db.session.commit()

    assert joins.joined_guild_ids == []
    (problem,) = joins.problems
    assert "Link Discord again" in problem
    assert raw_account(shop, "customer-1")["access_token_ciphertext"] is None
    assert not shop.fake.is_member(shop.guild_id, user.id)
