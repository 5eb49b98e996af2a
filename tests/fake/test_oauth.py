"""The OAuth2 code flow with PKCE, token refresh, revocation and Bearer access."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fake.helpers import Store

REDIRECT = "http://127.0.0.1:5000/discord/callback"


@pytest.fixture
def http(session_factory: Callable[..., requests.Session]) -> requests.Session:
    return session_factory()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(store: Store, http: requests.Session, **params: str) -> dict[str, list[str]]:
    url = store.fake.authorize_url(store.bot, params.pop("redirect_uri", REDIRECT), **params)
    response = http.get(url, allow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


def exchange(store: Store, http: requests.Session, **fields: str) -> requests.Response:
    data = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, **fields}
    auth = (store.bot.client_id, store.bot.client_secret)
    return http.post(store.url("/oauth2/token"), data=data, auth=auth)


def test_code_flow_with_pkce(store: Store, http: requests.Session) -> None:
    store.fake.oauth_login_as(store.buyer)
    verifier, challenge = pkce()
    query = authorize(store, http, state="s1", code_challenge=challenge, code_challenge_method="S256")
    assert query["state"] == ["s1"]
    code = query["code"][0]
    # Change the last character for sure: a random verifier ends in "x" one time in 64.
    wrong = verifier[:-1] + ("y" if verifier.endswith("x") else "x")
    assert exchange(store, http, code=code, code_verifier=wrong).json() == {
        "error": "invalid_grant",
        "error_description": 'Invalid "code_verifier" in request.',
    }
    tokens = exchange(store, http, code=code, code_verifier=verifier)
    assert tokens.status_code == 200
    body: dict[str, Any] = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "identify guilds.join"
    assert body["expires_in"] > 0
    me = http.get(store.url("/users/@me"), headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["id"] == store.buyer.id
    assert me.json()["global_name"] == "Buyer"
    assert me.json()["discriminator"] == "0"
    reused = exchange(store, http, code=code, code_verifier=verifier)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


@pytest.mark.breaks_discord_spec
def test_token_endpoint_is_form_only_and_checks_client(store: Store, http: requests.Session) -> None:
    code = authorize(store, http)["code"][0]
    as_json = http.post(
        store.url("/oauth2/token"),
        json={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(store.bot.client_id, store.bot.client_secret),
    )
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "unsupported_grant_type"
    wrong_secret = http.post(
        store.url("/oauth2/token"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(store.bot.client_id, "nope"),
    )
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    wrong_redirect = exchange(store, http, code=code, redirect_uri="http://127.0.0.1/other")
    assert wrong_redirect.json()["error"] == "invalid_grant"
    in_body = http.post(
        store.url("/oauth2/token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": store.bot.client_id,
            "client_secret": store.bot.client_secret,
        },
    )
    assert in_body.status_code == 200


def test_refresh_rotates_and_revoke_kills(store: Store, http: requests.Session) -> None:
    store.fake.oauth_login_as(store.buyer)
    tokens = exchange(store, http, code=authorize(store, http)["code"][0]).json()
    auth = (store.bot.client_id, store.bot.client_secret)
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    rotated = http.post(store.url("/oauth2/token"), data=refresh, auth=auth).json()
    assert rotated["access_token"] != tokens["access_token"]
    again = http.post(store.url("/oauth2/token"), data=refresh, auth=auth)
    assert again.json()["error"] == "invalid_grant"

    def me(access: str) -> int:
        headers = {"Authorization": f"Bearer {access}"}
        return http.get(store.url("/users/@me"), headers=headers).status_code

    assert me(tokens["access_token"]) == 401
    assert me(rotated["access_token"]) == 200
    store.fake.expire_user_tokens(store.buyer)
    assert me(rotated["access_token"]) == 401
    revoke = http.post(store.url("/oauth2/token/revoke"), data={"token": rotated["refresh_token"]}, auth=auth)
    assert revoke.status_code == 200
    refreshed = http.post(
        store.url("/oauth2/token"),
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        auth=auth,
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_authorize_errors(store: Store, http: requests.Session) -> None:
    store.fake.oauth_consent = "deny"
    denied = authorize(store, http, state="s")
    assert denied["error"] == ["access_denied"]
    assert denied["state"] == ["s"]
    store.fake.oauth_consent = "allow"
    assert authorize(store, http, scope="identify nonsense")["error"] == ["invalid_scope"]
    assert authorize(store, http, code_challenge="abc", code_challenge_method="plain")["error"] == [
        "invalid_request"
    ]
    unknown = http.get(
        f"{store.fake.base_url}/oauth2/authorize",
        params={"client_id": "1", "response_type": "code", "redirect_uri": REDIRECT},
        allow_redirects=False,
    )
    assert unknown.status_code == 400
    foreign = store.fake.authorize_url(store.bot, "https://evil.example/cb")
    assert http.get(foreign, allow_redirects=False).status_code == 400
    store.fake.allow_redirect_uri("https://shop.example/cb")
    allowed = http.get(store.fake.authorize_url(store.bot, "https://shop.example/cb"), allow_redirects=False)
    assert allowed.status_code == 302


def test_bot_invite_adds_the_bot(store: Store, http: requests.Session) -> None:
    other = store.fake.create_bot("Invited")
    url = f"{store.fake.base_url}/oauth2/authorize"
    params = {
        "client_id": other.client_id,
        "scope": "bot applications.commands",
        "permissions": "268435456",
        "guild_id": store.guild.id,
    }
    assert http.get(url, params=params, allow_redirects=False).status_code == 200
    assert store.fake.is_member(store.guild.id, other.user_id)


def test_joined_member_via_oauth_token(store: Store, http: requests.Session) -> None:
    newcomer = store.fake.create_user("newcomer")
    store.fake.oauth_login_as(newcomer)
    tokens = exchange(store, http, code=authorize(store, http)["code"][0]).json()
    url = store.url(f"/guilds/{store.guild.id}/members/{newcomer.id}")
    assert store.api.put(url, json={"access_token": tokens["access_token"]}).status_code == 201
    assert store.fake.is_member(store.guild.id, newcomer.id)
