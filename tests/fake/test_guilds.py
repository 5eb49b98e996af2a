"""The fake enforces Discord's auth, hierarchy and member rules on role and member routes."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
import requests

from flask_discord_roles.testing.permissions import ADMINISTRATOR, MANAGE_ROLES
from tests.fake.helpers import Store


def assert_error(response: requests.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


def test_unknown_or_missing_token_is_401_code_0(
    store: Store, session_factory: Callable[..., requests.Session]
) -> None:
    for authorization in ("Bot not.a.token", None, f"Bearer {store.bot.token}"):
        response = session_factory(authorization).get(store.url(f"/guilds/{store.guild.id}"))
        assert response.status_code == 401
        assert response.json() == {"message": "401: Unauthorized", "code": 0}


def test_revoked_token_is_401(store: Store) -> None:
    assert store.api.get(store.url("/users/@me")).status_code == 200
    store.fake.revoke_bot_token(store.bot)
    response = store.api.put(store.role_url())
    assert_error(response, 401, 0)
    assert store.fake.member_roles(store.guild.id, store.buyer.id) == set()


def test_add_and_remove_are_idempotent_204s(store: Store) -> None:
    for _ in range(2):
        response = store.api.put(store.role_url())
        assert response.status_code == 204
        assert response.content == b""
        assert "Content-Type" not in response.headers
    assert store.fake.member_roles(store.guild.id, store.buyer.id) == {store.role.id}
    for _ in range(2):
        assert store.api.delete(store.role_url()).status_code == 204
    assert store.fake.member_roles(store.guild.id, store.buyer.id) == set()
    assert [e["action"] for e in store.fake.audit_log(store.guild.id)] == [
        "member_role_add",
        "member_role_remove",
    ]


def test_audit_log_reason_is_decoded_and_limited(store: Store) -> None:
    reason = "Order #42 — paid"
    headers = {"X-Audit-Log-Reason": quote(reason)}
    assert store.api.put(store.role_url(), headers=headers).status_code == 204
    assert store.fake.audit_log(store.guild.id)[0]["reason"] == reason
    assert store.fake.calls_to("PUT", r"/roles/")[0].audit_log_reason == reason
    too_long = store.api.delete(store.role_url(), headers={"X-Audit-Log-Reason": "x" * 513})
    assert_error(too_long, 400, 50035)
    assert "audit_log_reason" in too_long.json()["errors"]


def test_role_above_bot_is_50013(store: Store) -> None:
    high = store.fake.create_role(store.guild.id, "Staff", position=99)
    assert high.position > store.bot_role.position
    assert_error(store.api.put(store.role_url(high.id)), 403, 50013)
    assert store.fake.member_roles(store.guild.id, store.buyer.id) == set()


def test_equal_positions_lower_id_is_higher(store: Store) -> None:
    older = store.role  # created before the bot joined: lower id than the bot's role
    newer = store.fake.create_role(store.guild.id, "Newer")
    for role in (older, newer):
        store.fake.force_role_position(store.guild.id, role.id, store.bot_role.position)
    assert_error(store.api.put(store.role_url(older.id)), 403, 50013)
    assert store.api.put(store.role_url(newer.id)).status_code == 204


def test_managed_and_everyone_roles_are_never_assignable(store: Store) -> None:
    managed = store.fake.create_role(store.guild.id, "Booster", managed=True, position=1)
    assert managed.position < store.bot_role.position
    assert_error(store.api.put(store.role_url(managed.id)), 403, 50013)
    assert_error(store.api.put(store.role_url(store.guild.id)), 403, 50013)


def test_manage_roles_is_required(store: Store) -> None:
    weak_bot = store.fake.create_bot("Weak")
    store.fake.add_bot_to_guild(weak_bot, store.guild.id, permissions=0)
    store.api.headers["Authorization"] = f"Bot {weak_bot.token}"
    assert_error(store.api.put(store.role_url()), 403, 50013)


def test_administrator_does_not_bypass_hierarchy(store: Store) -> None:
    admin_bot = store.fake.create_bot("Admin")
    store.fake.add_bot_to_guild(admin_bot, store.guild.id, permissions=ADMINISTRATOR, role_position=1)
    store.api.headers["Authorization"] = f"Bot {admin_bot.token}"
    assert_error(store.api.put(store.role_url()), 403, 50013)
    below = store.fake.create_role(store.guild.id, "Below", position=1)
    assert store.api.put(store.role_url(below.id)).status_code == 204


@pytest.mark.breaks_discord_spec
def test_unknown_things(store: Store) -> None:
    stranger = store.fake.create_user("stranger")
    assert_error(store.api.put(store.role_url(user_id=stranger.id)), 404, 10007)
    assert_error(store.api.put(store.role_url("123456789012345678")), 404, 10011)
    assert_error(store.api.get(store.url("/guilds/123456789012345678")), 404, 10004)
    assert_error(store.api.get(store.url(f"/guilds/{store.guild.id}/members/{stranger.id}")), 404, 10007)
    assert_error(store.api.put(store.role_url("not-a-snowflake")), 400, 50035)
    other = store.fake.create_guild("Not ours")
    assert_error(store.api.get(store.url(f"/guilds/{other.id}/roles")), 403, 50001)


def test_guild_roles_and_member_reads(store: Store) -> None:
    guild = store.api.get(store.url(f"/guilds/{store.guild.id}"), params={"with_counts": "true"})
    assert guild.json()["approximate_member_count"] == 3  # owner, bot, buyer
    assert "approximate_presence_count" in guild.json()
    roles = store.api.get(store.url(f"/guilds/{store.guild.id}/roles")).json()
    everyone = next(r for r in roles if r["id"] == store.guild.id)
    assert everyone["position"] == 0
    assert {r["position"] for r in roles} == set(range(len(roles)))
    bot_role = next(r for r in roles if r["id"] == store.bot_role.id)
    assert bot_role["managed"] is True
    assert bot_role["permissions"] == str(MANAGE_ROLES)
    assert bot_role["tags"] == {"bot_id": store.bot.user_id}
    member = store.api.get(store.url(f"/guilds/{store.guild.id}/members/{store.buyer.id}")).json()
    assert member["user"]["id"] == store.buyer.id
    assert member["roles"] == []
    assert member["joined_at"]
    me = store.api.get(store.url("/users/@me")).json()
    assert me["id"] == store.bot.user_id != store.bot.application_id
    assert me["bot"] is True


def test_new_roles_go_below_bot_roles_and_moves_renumber(store: Store) -> None:
    fresh = store.fake.create_role(store.guild.id, "Fresh")
    assert store.role.position < fresh.position < store.bot_role.position
    store.fake.move_role(store.guild.id, store.bot_role.id, 1)
    positions = sorted(r.position for r in store.guild.roles.values())
    assert positions == list(range(len(positions)))
    assert store.bot_role.position == 1
    assert_error(store.api.put(store.role_url(fresh.id)), 403, 50013)


def test_join_member_201_then_204_ignoring_roles(store: Store) -> None:
    newcomer = store.fake.create_user("newcomer")
    token = store.fake.create_user_token(store.bot, newcomer)
    url = store.url(f"/guilds/{store.guild.id}/members/{newcomer.id}")
    joined = store.api.put(url, json={"access_token": token, "roles": [store.role.id]})
    assert joined.status_code == 201
    assert joined.json()["roles"] == [store.role.id]
    other = store.fake.create_role(store.guild.id, "Other")
    again = store.api.put(url, json={"access_token": token, "roles": [other.id]})
    assert again.status_code == 204
    assert store.fake.member_roles(store.guild.id, newcomer.id) == {store.role.id}


@pytest.mark.breaks_discord_spec
def test_join_member_checks_token_scope_and_hierarchy(store: Store) -> None:
    newcomer = store.fake.create_user("newcomer")
    url = store.url(f"/guilds/{store.guild.id}/members/{newcomer.id}")
    assert_error(store.api.put(url, json={}), 400, 50035)
    assert_error(store.api.put(url, json={"access_token": "nope"}), 403, 50025)
    someone_elses = store.fake.create_user_token(store.bot, store.buyer)
    assert_error(store.api.put(url, json={"access_token": someone_elses}), 403, 50025)
    identify_only = store.fake.create_user_token(store.bot, newcomer, scopes=["identify"])
    assert_error(store.api.put(url, json={"access_token": identify_only}), 403, 50001)
    token = store.fake.create_user_token(store.bot, newcomer)
    staff = store.fake.create_role(store.guild.id, "Staff", position=99)
    assert_error(store.api.put(url, json={"access_token": token, "roles": [staff.id]}), 403, 50013)
    assert not store.fake.is_member(store.guild.id, newcomer.id)
    store.fake.expire_user_tokens(newcomer)
    assert_error(store.api.put(url, json={"access_token": token}), 403, 50025)


def test_member_roles_raises_lookup_error_for_non_members(store: Store) -> None:
    store.fake.remove_member(store.guild.id, store.buyer.id)
    assert not store.fake.is_member(store.guild.id, store.buyer.id)
    with pytest.raises(LookupError, match="not a member"):
        store.fake.member_roles(store.guild.id, store.buyer.id)


def test_list_members_pages_in_user_id_order_and_needs_the_members_intent(store: Store) -> None:
    members = store.url(f"/guilds/{store.guild.id}/members")
    everyone = sorted(store.fake.guild(store.guild.id).members, key=int)
    assert len(everyone) >= 2, "the store's guild has the bot and a buyer at least"

    one = store.api.get(members)  # limit defaults to 1, after to 0
    assert [m["user"]["id"] for m in one.json()] == everyone[:1]
    rest = store.api.get(members, params={"limit": "1000", "after": everyone[0]})
    assert [m["user"]["id"] for m in rest.json()] == everyone[1:]
    assert store.api.get(members, params={"after": everyone[-1]}).json() == []

    store.bot.members_intent = False
    assert_error(store.api.get(members), 403, 50001)


@pytest.mark.breaks_discord_spec
def test_list_members_refuses_a_limit_or_cursor_discord_would_refuse(store: Store) -> None:
    members = store.url(f"/guilds/{store.guild.id}/members")
    assert_error(store.api.get(members, params={"limit": "1001"}), 400, 50035)
    assert_error(store.api.get(members, params={"limit": "0"}), 400, 50035)
    assert_error(store.api.get(members, params={"after": "me"}), 400, 50035)
