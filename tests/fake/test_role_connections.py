"""Linked Roles in FakeDiscord: an application's metadata records and a user's role connection, refused
field by field (50035) as Discord refuses them, and only for the right token and scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from flask_discord_roles.testing import FakeUser
from tests.fake.helpers import Store

REDIRECT = "http://127.0.0.1:5000/discord/linked-roles"
SCOPE = "role_connections.write"

PURCHASES = {"type": 2, "key": "purchases", "name": "Purchases", "description": "Orders paid for"}
MEMBER_SINCE = {"type": 6, "key": "member_since", "name": "Customer since", "description": "First order"}
VIP = {"type": 7, "key": "vip", "name": "VIP", "description": "Holds a VIP plan"}


def metadata_url(store: Store, application_id: str | None = None) -> str:
    return store.url(f"/applications/{application_id or store.bot.application_id}/role-connections/metadata")


def connection_url(store: Store, application_id: str | None = None) -> str:
    return store.url(f"/users/@me/applications/{application_id or store.bot.application_id}/role-connection")


def errors_at(response: requests.Response, *path: str) -> list[str]:
    """The error codes Discord put at ``path`` of a 50035 body (empty if none are there)."""
    assert response.status_code == 400, f"expected a 400, got {response.status_code}: {response.text}"
    body = response.json()
    assert (body["code"], body["message"]) == (50035, "Invalid Form Body"), body
    node: Any = body["errors"]
    for part in path:
        node = node.get(part, {})
    return [error["code"] for error in node.get("_errors", [])]


@pytest.fixture
def declared(store: Store) -> Store:
    """The store's application has declared its three Linked Roles fields."""
    response = store.api.put(metadata_url(store), json=[PURCHASES, MEMBER_SINCE, VIP])
    assert response.status_code == 200, response.text
    return store


@pytest.fixture
def as_buyer(store: Store, session_factory: Callable[..., requests.Session]) -> requests.Session:
    """The buyer's OAuth2 token for the store's application, with ``role_connections.write``."""
    token = store.fake.create_user_token(store.bot, store.buyer, ["identify", SCOPE])
    return session_factory(f"Bearer {token}")


# -- the application's metadata records --------------------------------------------------------------


def test_metadata_records_are_saved_whole_and_answered_as_discord_shapes_them(store: Store) -> None:
    translated = {**PURCHASES, "name_localizations": {"fr": "Achats", "de": None}}
    saved = store.api.put(metadata_url(store), json=[translated, VIP])
    assert saved.status_code == 200, saved.text
    expected = [{**PURCHASES, "name_localizations": {"fr": "Achats"}}, VIP]
    assert saved.json() == expected, "a null translation is dropped; records without any have none"
    assert store.api.get(metadata_url(store)).json() == expected
    assert store.fake.role_connection_metadata(store.bot.application_id) == expected


def test_a_type_may_be_sent_as_an_integer_string(store: Store) -> None:
    saved = store.api.put(metadata_url(store), json=[{**PURCHASES, "type": "2"}])
    assert saved.json() == [PURCHASES], "Discord reads integer fields from integer strings"


def test_a_put_replaces_every_record_and_an_empty_list_or_null_clears_them(store: Store) -> None:
    store.api.put(metadata_url(store), json=[PURCHASES, MEMBER_SINCE, VIP])
    assert store.api.put(metadata_url(store), json=[VIP]).json() == [VIP]
    assert store.fake.role_connection_metadata(store.bot.application_id) == [VIP], "PUT is not a merge"
    assert store.api.put(metadata_url(store), json=[]).json() == []
    store.api.put(metadata_url(store), json=[VIP])
    cleared = store.api.put(metadata_url(store), data=b"null", headers={"Content-Type": "application/json"})
    assert cleared.json() == [], "the spec lets the body be null: no records"


def _records(count: int) -> list[dict[str, Any]]:
    return [{**PURCHASES, "key": f"field_{n}"} for n in range(count)]


def _one(**changes: Any) -> list[dict[str, Any]]:
    """A body of one record: PURCHASES with ``changes`` (a value of ``...`` leaves the field out)."""
    record = {**PURCHASES, **changes}
    return [{name: value for name, value in record.items() if value is not ...}]


@pytest.mark.parametrize(
    ("body", "where", "code"),
    [
        (_records(6), "", "BASE_TYPE_MAX_LENGTH"),
        ({"key": "purchases"}, "", "LIST_TYPE_CONVERT"),
        (["purchases"], "0", "DICT_TYPE_CONVERT"),
        (_one(key="Purchases"), "0.key", "STRING_TYPE_REGEX"),
        (_one(key="paid-orders"), "0.key", "STRING_TYPE_REGEX"),
        (_one(key=""), "0.key", "BASE_TYPE_BAD_LENGTH"),
        (_one(key="k" * 51), "0.key", "BASE_TYPE_BAD_LENGTH"),
        ([PURCHASES, {**VIP, "key": "purchases"}], "1.key", "ROLE_CONNECTION_METADATA_DUPLICATE_KEY"),
        (_one(name=""), "0.name", "BASE_TYPE_BAD_LENGTH"),
        (_one(name="n" * 101), "0.name", "BASE_TYPE_BAD_LENGTH"),
        (_one(description="d" * 201), "0.description", "BASE_TYPE_BAD_LENGTH"),
        (_one(description=...), "0.description", "BASE_TYPE_REQUIRED"),
        (_one(type=0), "0.type", "BASE_TYPE_CHOICES"),
        (_one(type=9), "0.type", "BASE_TYPE_CHOICES"),
        (_one(type="two"), "0.type", "BASE_TYPE_CHOICES"),
        (_one(type=True), "0.type", "BASE_TYPE_CHOICES"),
        (_one(name_localizations={"xx": "?"}), "0.name_localizations.xx", "BASE_TYPE_CHOICES"),
        (_one(name_localizations={"fr": "n" * 101}), "0.name_localizations.fr", "BASE_TYPE_BAD_LENGTH"),
        (
            _one(description_localizations={"fr": "d" * 201}),
            "0.description_localizations.fr",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (_one(description_localizations=["fr"]), "0.description_localizations", "DICT_TYPE_CONVERT"),
    ],
)
@pytest.mark.breaks_discord_spec  # sends what Discord refuses, to see the refusal
def test_a_record_discord_would_refuse_gets_50035_at_its_path_and_changes_nothing(
    store: Store, body: Any, where: str, code: str
) -> None:
    store.api.put(metadata_url(store), json=[VIP])
    refused = store.api.put(metadata_url(store), json=body)
    assert code in errors_at(refused, *filter(None, where.split("."))), refused.json()
    assert store.fake.role_connection_metadata(store.bot.application_id) == [VIP], (
        "a refused PUT changed state"
    )


@pytest.mark.breaks_discord_spec  # sends what Discord refuses, to see the refusal
def test_every_problem_of_a_body_is_reported_at_once(store: Store) -> None:
    refused = store.api.put(metadata_url(store), json=[{**PURCHASES, "key": "Bad"}, {**VIP, "name": ""}])
    assert errors_at(refused, "0", "key") == ["STRING_TYPE_REGEX"]
    assert errors_at(refused, "1", "name") == ["BASE_TYPE_BAD_LENGTH"]


def test_metadata_takes_the_applications_own_bot_token_only(
    store: Store, as_buyer: requests.Session, session_factory: Callable[..., requests.Session]
) -> None:
    other = store.fake.create_bot("Other Shop")
    as_other = session_factory(f"Bot {other.token}")
    foreign = as_other.put(metadata_url(store), json=[VIP])
    assert (foreign.status_code, foreign.json()["code"]) == (403, 50001), "another app's bot: Missing Access"
    assert as_other.get(metadata_url(store)).status_code == 403
    assert as_buyer.get(metadata_url(store)).status_code == 401, (
        "a user's token cannot read an app's metadata"
    )
    assert session_factory().get(metadata_url(store)).status_code == 401
    assert store.fake.role_connection_metadata(store.bot.application_id) == []


# -- the user's role connection ------------------------------------------------------------------------


def test_a_user_without_a_connection_reads_empty_fields(declared: Store, as_buyer: requests.Session) -> None:
    answer = as_buyer.get(connection_url(declared))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"platform_name": None, "platform_username": None, "metadata": {}}
    assert declared.fake.role_connection(declared.buyer, declared.bot.application_id) is None


def test_a_put_saves_the_whole_connection_and_the_next_one_replaces_it(
    declared: Store, as_buyer: requests.Session
) -> None:
    body = {
        "platform_name": "Example Shop",
        "platform_username": "buyer@example.com",
        "metadata": {"purchases": "3", "member_since": "2026-01-31T12:00:00+00:00", "vip": "1"},
    }
    saved = as_buyer.put(connection_url(declared), json=body)
    assert (saved.status_code, saved.json()) == (200, body)
    assert as_buyer.get(connection_url(declared)).json() == body
    assert declared.fake.role_connection(declared.buyer, declared.bot.application_id) == body
    replaced = as_buyer.put(connection_url(declared), json={"metadata": {"purchases": "4"}})
    expected = {"platform_name": None, "platform_username": None, "metadata": {"purchases": "4"}}
    assert replaced.json() == expected, "fields left out of a PUT are cleared, not kept"
    assert declared.fake.role_connection(declared.buyer.id, declared.bot.application_id) == expected


def test_connections_are_kept_per_user(
    declared: Store, as_buyer: requests.Session, session_factory: Callable[..., requests.Session]
) -> None:
    other: FakeUser = declared.fake.create_user("someone")
    token = declared.fake.create_user_token(declared.bot, other, [SCOPE])
    session_factory(f"Bearer {token}").put(connection_url(declared), json={"metadata": {"purchases": "9"}})
    assert as_buyer.get(connection_url(declared)).json()["metadata"] == {}
    assert declared.fake.role_connection(other, declared.bot.application_id) == {
        "platform_name": None,
        "platform_username": None,
        "metadata": {"purchases": "9"},
    }


@pytest.mark.parametrize(
    ("body", "path", "code"),
    [
        ({"platform_name": "n" * 51}, ("platform_name",), "BASE_TYPE_MAX_LENGTH"),
        ({"platform_username": "u" * 101}, ("platform_username",), "BASE_TYPE_MAX_LENGTH"),
        ({"metadata": ["purchases"]}, ("metadata",), "DICT_TYPE_CONVERT"),
        ({"metadata": {"refunds": "1"}}, ("metadata", "refunds"), "BASE_TYPE_CHOICES"),
        ({"metadata": {"purchases": 3}}, ("metadata", "purchases"), "STRING_TYPE_CONVERT"),
        ({"metadata": {"purchases": ""}}, ("metadata", "purchases"), "BASE_TYPE_BAD_LENGTH"),
        ({"metadata": {"purchases": "1" * 101}}, ("metadata", "purchases"), "BASE_TYPE_BAD_LENGTH"),
        ({"metadata": {"purchases": "three"}}, ("metadata", "purchases"), "NUMBER_TYPE_COERCE"),
        ({"metadata": {"purchases": "9" * 20}}, ("metadata", "purchases"), "NUMBER_TYPE_COERCE"),
        ({"metadata": {"vip": "yes"}}, ("metadata", "vip"), "NUMBER_TYPE_COERCE"),
        ({"metadata": {"member_since": "last year"}}, ("metadata", "member_since"), "DATE_TIME_TYPE_PARSE"),
    ],
)
@pytest.mark.breaks_discord_spec  # sends what Discord refuses, to see the refusal
def test_a_connection_discord_would_refuse_gets_50035_at_its_path_and_changes_nothing(
    declared: Store, as_buyer: requests.Session, body: dict[str, Any], path: tuple[str, ...], code: str
) -> None:
    before = {"platform_name": "Example Shop", "platform_username": None, "metadata": {"purchases": "1"}}
    as_buyer.put(connection_url(declared), json=before)
    refused = as_buyer.put(connection_url(declared), json=body)
    assert code in errors_at(refused, *path), refused.json()
    assert declared.fake.role_connection(declared.buyer, declared.bot.application_id) == before


def test_metadata_keys_must_be_declared_first(store: Store, as_buyer: requests.Session) -> None:
    refused = as_buyer.put(connection_url(store), json={"metadata": {"purchases": "1"}})
    assert errors_at(refused, "metadata", "purchases") == ["BASE_TYPE_CHOICES"]
    named_only = as_buyer.put(connection_url(store), json={"platform_name": "Example Shop"})
    assert named_only.status_code == 200, "a connection without metadata needs no declared field"


def test_the_user_routes_need_a_token_with_the_scope_for_that_application(
    declared: Store, session_factory: Callable[..., requests.Session]
) -> None:
    fake = declared.fake
    no_scope = session_factory(f"Bearer {fake.create_user_token(declared.bot, declared.buyer, ['identify'])}")
    for method in ("GET", "PUT"):
        answer = no_scope.request(method, connection_url(declared), json={} if method == "PUT" else None)
        assert (answer.status_code, answer.json()) == (401, {"message": "401: Unauthorized", "code": 0}), (
            f"{method} without role_connections.write"
        )
    other_app = fake.create_bot("Other Shop")
    elsewhere = session_factory(f"Bearer {fake.create_user_token(other_app, declared.buyer, [SCOPE])}")
    foreign = elsewhere.put(connection_url(declared), json={"metadata": {"purchases": "1"}})
    assert (foreign.status_code, foreign.json()["code"]) == (403, 50001), (
        "a token speaks for its own app only"
    )
    as_bot = session_factory(f"Bot {declared.bot.token}").get(connection_url(declared))
    assert as_bot.status_code == 401, "the bot token is not the user's"
    assert fake.role_connection(declared.buyer, declared.bot.application_id) is None


def test_the_scope_is_granted_through_the_oauth_flow(
    declared: Store, session_factory: Callable[..., requests.Session]
) -> None:
    fake, http = declared.fake, session_factory()
    fake.oauth_login_as(declared.buyer)
    consent = http.get(
        fake.authorize_url(declared.bot, REDIRECT, scope=f"identify {SCOPE}"), allow_redirects=False
    )
    assert consent.status_code == 302, consent.text
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    tokens = http.post(
        declared.url("/oauth2/token"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(declared.bot.client_id, declared.bot.client_secret),
    ).json()
    assert tokens["scope"] == f"identify {SCOPE}"
    saved = http.put(
        connection_url(declared),
        json={"metadata": {"vip": "1"}},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert saved.status_code == 200, saved.text
    assert fake.role_connection(declared.buyer, declared.bot.application_id)["metadata"] == {"vip": "1"}


# -- rate limits -----------------------------------------------------------------------------------


def test_each_route_family_is_limited_per_token(
    declared: Store, as_buyer: requests.Session, session_factory: Callable[..., requests.Session]
) -> None:
    fake = declared.fake
    fake.set_route_limit("role_connection", 1, 60.0)
    assert as_buyer.get(connection_url(declared)).status_code == 200
    limited = as_buyer.put(connection_url(declared), json={"metadata": {"purchases": "1"}})
    assert limited.status_code == 429, "GET and PUT share the user's bucket"
    assert limited.headers["X-RateLimit-Scope"] == "user"
    assert fake.role_connection(declared.buyer, declared.bot.application_id) is None, "a 429 applies nothing"
    someone = fake.create_user("someone")
    theirs = session_factory(f"Bearer {fake.create_user_token(declared.bot, someone, [SCOPE])}")
    assert theirs.get(connection_url(declared)).status_code == 200, "another user's token has its own bucket"
    metadata = declared.api.get(metadata_url(declared))
    assert metadata.status_code == 200, "the metadata routes are a family of their own"
    assert metadata.headers["X-RateLimit-Bucket"] != limited.headers["X-RateLimit-Bucket"]


def test_delete_removes_the_users_connection_and_may_be_repeated(
    declared: Store, as_buyer: requests.Session
) -> None:
    as_buyer.put(connection_url(declared), json={"platform_name": "Example Shop"})
    for _ in range(2):
        removed = as_buyer.delete(connection_url(declared))
        assert (removed.status_code, removed.content) == (204, b"")
    assert declared.fake.role_connection(declared.buyer, declared.bot.application_id) is None
    assert as_buyer.get(connection_url(declared)).json()["platform_name"] is None
