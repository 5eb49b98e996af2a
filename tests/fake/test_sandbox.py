"""The sandbox pages FakeDiscord serves: a person's view and remote control of the same fake world."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask, Response, request
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from werkzeug.serving import make_server

from flask_discord_roles.testing import FakeBot, FakeDiscord
from tests.fake.helpers import Store

EPHEMERAL = 64


def storefront(fake: FakeDiscord, bot: FakeBot, seen: list[dict[str, Any]]) -> Flask:
    """A stand-in for a store's interactions endpoint: /help answers at once, /claim defers and edits."""
    app = Flask("storefront")
    verify = VerifyKey(bytes.fromhex(bot.public_key))

    def edit_later(token: str) -> None:
        time.sleep(0.3)  # long enough for the page to show the deferred state first
        requests.patch(
            f"{fake.api_base_url}/webhooks/{bot.application_id}/{token}/messages/@original",
            json={"content": "You now have VIP", "flags": EPHEMERAL},
            timeout=5,
        )

    @app.post("/interactions")
    def interactions() -> Response:
        raw = request.get_data()
        try:
            signature = bytes.fromhex(request.headers["X-Signature-Ed25519"])
            verify.verify(request.headers["X-Signature-Timestamp"].encode() + raw, signature)
        except (KeyError, ValueError, BadSignatureError):
            return Response("invalid request signature", status=401)
        payload = json.loads(raw)
        seen.append(payload)
        answer: dict[str, Any]
        if payload["type"] == 1:
            answer = {"type": 1}
        elif payload["type"] == 3:
            answer = {"type": 4, "data": {"content": f"pressed {payload['data']['custom_id']}"}}
        elif payload["data"]["name"] == "claim":
            threading.Thread(target=edit_later, args=(payload["token"],), daemon=True).start()
            answer = {"type": 5, "data": {"flags": EPHEMERAL}}
        else:
            button = {"type": 2, "style": 1, "label": "Claim <now>", "custom_id": "claim:again"}
            link = {"type": 2, "style": 5, "label": "Evil", "url": "javascript:alert(1)"}
            answer = {
                "type": 4,
                "data": {
                    "content": "Use /claim <code> to get your roles",
                    "flags": EPHEMERAL,
                    "components": [{"type": 1, "components": [button, link]}],
                },
            }
        return Response(json.dumps(answer), mimetype="application/json")

    return app


@pytest.fixture
def endpoint(store: Store) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    server = make_server("127.0.0.1", 0, storefront(store.fake, store.bot, seen), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/interactions", seen
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def browser(session_factory: Callable[..., requests.Session]) -> requests.Session:
    return session_factory()


def guild_url(store: Store) -> str:
    return f"{store.fake.sandbox_url}/guilds/{store.guild.id}"


def member_row(page: str, user_id: str) -> str:
    found = re.search(rf'<tr data-user-id="{user_id}">(.*?)</tr>', page, re.S)
    assert found is not None, f"no row for member {user_id}"
    return found.group(1)


def role_order(page: str) -> list[str]:
    return re.findall(r'<tr data-role-id="(\d+)">', page)


def wait_for(browser: requests.Session, url: str, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page = browser.get(url, timeout=5).text
        if text in page or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


def act_as(browser: requests.Session, store: Store, user_id: str) -> None:
    form = {"user_id": user_id}
    answer = browser.post(f"{store.fake.sandbox_url}/act-as", data=form, allow_redirects=False)
    assert (answer.status_code, answer.headers["Location"]) == (303, "/sandbox")


def test_index_lists_guilds_users_and_escapes_names(store: Store, browser: requests.Session) -> None:
    evil = store.fake.create_user("<script>alert(1)</script>")
    store.fake.add_member(store.guild.id, evil.id)
    calls_before = len(store.fake.calls)
    index = browser.get(store.fake.sandbox_url)
    assert index.status_code == 200
    assert index.headers["Content-Type"].startswith("text/html")
    assert f'href="/sandbox/guilds/{store.guild.id}">Shop</a>' in index.text
    assert "@buyer" in index.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index.text
    assert "<script>alert" not in index.text
    guild_page = browser.get(guild_url(store)).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in member_row(guild_page, evil.id)
    assert "<script>alert" not in guild_page
    assert len(store.fake.calls) == calls_before  # pages for people are not API calls
    assert browser.get(f"{store.fake.sandbox_url}/guilds/1").status_code == 404
    assert store.fake.internal_errors == []


def test_guild_page_shows_roles_members_and_api_changes(store: Store, browser: requests.Session) -> None:
    page = browser.get(guild_url(store)).text
    assert role_order(page) == [store.bot_role.id, store.role.id]  # highest first
    assert "bot role of Store Bot" in page
    assert "managed" in page
    assert "no roles" in member_row(page, store.buyer.id)
    assert store.api.put(store.role_url()).status_code == 204  # the bot gives VIP through the API
    assert "VIP" in member_row(browser.get(guild_url(store)).text, store.buyer.id)


def test_moving_the_bot_role_changes_the_hierarchy_the_api_reports(
    store: Store, browser: requests.Session
) -> None:
    top = store.fake.create_role(store.guild.id, "Admins", position=99)
    page = browser.get(guild_url(store)).text
    assert role_order(page) == [top.id, store.bot_role.id, store.role.id]
    move = f"{guild_url(store)}/roles/{store.bot_role.id}/move"
    answer = browser.post(move, data={"direction": "up"}, allow_redirects=False)
    assert (answer.status_code, answer.headers["Location"]) == (303, f"/sandbox/guilds/{store.guild.id}")
    roles = store.api.get(store.url(f"/guilds/{store.guild.id}/roles")).json()
    position = {r["id"]: r["position"] for r in roles}
    assert position[store.bot_role.id] > position[top.id] > position[store.role.id]
    assert role_order(browser.get(guild_url(store)).text) == [store.bot_role.id, top.id, store.role.id]
    browser.post(move, data={"direction": "down"})
    browser.post(move, data={"direction": "down"})
    browser.post(move, data={"direction": "down"})  # already at the bottom: stays there
    assert role_order(browser.get(guild_url(store)).text) == [top.id, store.role.id, store.bot_role.id]


def test_help_through_the_sandbox_shows_the_ephemeral_answer_and_its_buttons(
    store: Store, browser: requests.Session, endpoint: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = endpoint
    store.fake.set_interactions_url(store.bot, url)
    act_as(browser, store, store.buyer.id)
    command = {"application_id": store.bot.application_id, "command": "help", "code": ""}
    page = browser.post(f"{guild_url(store)}/command", data=command).text
    sent = seen[-1]
    assert (sent["type"], sent["data"]["name"], sent["data"]["options"]) == (2, "help", [])
    assert sent["member"]["user"]["id"] == store.buyer.id
    assert "Use /claim &lt;code&gt; to get your roles" in page
    assert "Only you can see this" in page
    assert "javascript:" not in page  # a non-web link button is shown as text only
    button = re.search(r'<form class="inline" method="post" action="([^"]+/press)">(.*?)</form>', page, re.S)
    assert button is not None
    assert "Claim &lt;now&gt;" in button.group(2)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', button.group(2)))
    pressed = browser.post(store.fake.base_url + html.unescape(button.group(1)), data=fields).text
    assert seen[-1]["type"] == 3
    assert seen[-1]["data"]["custom_id"] == "claim:again"
    assert seen[-1]["message"]["flags"] == EPHEMERAL  # the message the button sits on
    assert "pressed claim:again" in pressed


def test_deferred_claim_shows_the_edited_answer_when_it_arrives(
    store: Store, browser: requests.Session, endpoint: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = endpoint
    store.fake.set_interactions_url(store.bot, url)
    assert store.fake.interactions_url(store.bot) == url
    act_as(browser, store, store.buyer.id)
    command = {"application_id": store.bot.application_id, "command": "claim", "code": "AB-12"}
    page = browser.post(f"{guild_url(store)}/command", data=command).text
    assert seen[-1]["data"]["options"] == [{"name": "code", "type": 3, "value": "AB-12"}]
    assert "/claim code:AB-12" in page
    assert "Store Bot is thinking…" in page
    page = wait_for(browser, guild_url(store), "You now have VIP")
    assert "You now have VIP" in page
    assert "Only you can see this · edited answer" in page
    kinds = [e["kind"] for e in store.fake.interaction_responses[seen[-1]["token"]]]
    assert kinds == ["initial", "edit_original"]


def test_commands_need_a_member_and_an_endpoint(store: Store, browser: requests.Session) -> None:
    stranger = store.fake.create_user("stranger")
    act_as(browser, store, stranger.id)
    page = browser.get(guild_url(store)).text
    assert "You are not a member of this server" in page
    command = {"application_id": store.bot.application_id, "command": "check"}
    refused = browser.post(f"{guild_url(store)}/command", data=command).text
    assert "Act as a member of this server first." in refused
    browser.post(f"{guild_url(store)}/join")
    assert store.fake.is_member(store.guild.id, stranger.id)
    refused = browser.post(f"{guild_url(store)}/command", data=command).text
    assert "Store Bot has no interactions endpoint URL yet." in refused


def test_saving_the_endpoint_url_pings_it_first(
    store: Store, browser: requests.Session, endpoint: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = endpoint
    save = f"{store.fake.sandbox_url}/bots/{store.bot.application_id}/interactions-url"
    page = browser.post(save, data={"url": "http://127.0.0.1:9/nothing"}).text
    assert "was not saved" in page
    assert store.fake.interactions_url(store.bot) is None
    browser.post(save, data={"url": url})
    assert seen[-1]["type"] == 1
    assert store.fake.interactions_url(store.bot) == url


def test_interactive_consent_page_authorize_and_cancel(store: Store, browser: requests.Session) -> None:
    store.fake.interactive_consent = True
    other = store.fake.create_user("other")
    store.fake.oauth_login_as(store.buyer)
    authorize = store.fake.authorize_url(store.bot, "http://127.0.0.1:5000/callback", state="s<1>")
    shown = browser.get(authorize, allow_redirects=False)
    assert shown.status_code == 200
    assert "Store Bot" in shown.text
    assert "Join servers for you" in shown.text
    assert f'<option value="{store.buyer.id}" selected>' in shown.text
    hidden = re.search(r'name="query" value="([^"]*)"', shown.text)
    assert hidden is not None
    query = html.unescape(hidden.group(1))

    yes = browser.post(
        f"{store.fake.base_url}/oauth2/authorize",
        data={"query": query, "decision": "authorize", "user_id": other.id},
        allow_redirects=False,
    )
    assert yes.status_code == 302
    location = urlsplit(yes.headers["Location"])
    params = parse_qs(location.query)
    assert (location.path, params["state"]) == ("/callback", ["s<1>"])
    token = browser.post(
        f"{store.fake.api_base_url}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": "http://127.0.0.1:5000/callback",
            "client_id": store.bot.client_id,
            "client_secret": store.bot.client_secret,
        },
    ).json()
    me = browser.get(
        f"{store.fake.api_base_url}/oauth2/@me", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert me.json()["user"]["id"] == other.id  # whoever was picked on the page

    no = browser.post(
        f"{store.fake.base_url}/oauth2/authorize",
        data={"query": query, "decision": "cancel"},
        allow_redirects=False,
    )
    assert no.status_code == 302
    assert parse_qs(urlsplit(no.headers["Location"]).query)["error"] == ["access_denied"]

    store.fake.interactive_consent = False  # the default: straight back with a code, as tests expect
    assert "code=" in browser.get(authorize, allow_redirects=False).headers["Location"]


def test_messages_show_discords_markdown_and_never_the_apps_html() -> None:
    from flask_discord_roles.testing.sandbox_pages import markdown

    assert (
        markdown("**VIP** for `/claim` *now*") == "<strong>VIP</strong> for <code>/claim</code> <em>now</em>"
    )
    shown = markdown('<script>alert(1)</script> **<img src=x onerror="x">**')
    assert "<script>" not in shown, f"app text must stay text: {shown}"
    assert "<img" not in shown, f"app text must stay text: {shown}"
    assert markdown("2*3*4 stays as typed") == "2*3*4 stays as typed"


def test_fake_discord_serves_the_avatars_and_icons_an_app_links_to(fake_discord: FakeDiscord) -> None:
    from flask_discord_roles.discord.snowflake import avatar_url, cdn_for, icon_url

    cdn = cdn_for(fake_discord.api_base_url)
    assert cdn == fake_discord.cdn_url, "an app pointed at FakeDiscord finds its CDN there"
    assert cdn_for("https://discord.com/api/v10") == "https://cdn.discordapp.com"
    user = fake_discord.create_user("ann")
    for url in (
        avatar_url(user.id, None, cdn),
        avatar_url(user.id, "a1b2c3", cdn),
        icon_url("123456789012345678", "a_ffee", cdn),
    ):
        answer = requests.get(url or "", timeout=5)
        assert answer.status_code == 200, f"{url} answered {answer.status_code}"
        assert answer.headers["Content-Type"] == "image/png"
        assert answer.content.startswith(b"\x89PNG\r\n\x1a\n"), f"{url} is not a PNG"
    assert requests.get(f"{cdn}/avatars/not-a-user/x.png", timeout=5).status_code == 404


def test_the_index_shows_each_users_linked_roles_connection_with_the_declared_names(store: Store) -> None:
    metadata = f"{store.fake.api_base_url}/applications/{store.bot.application_id}/role-connections/metadata"
    declared = store.api.put(
        metadata,
        json=[{"type": 7, "key": "verified_buyer", "name": "Verified <buyer>", "description": "Bought"}],
        timeout=5,
    )
    assert declared.status_code == 200, declared.text
    empty = requests.get(store.fake.sandbox_url, timeout=5).text
    assert "Linked Roles connections" in empty
    assert "none yet" in empty

    token = store.fake.create_user_token(
        store.bot, store.buyer, scopes=("identify", "role_connections.write")
    )
    written = requests.put(
        f"{store.fake.api_base_url}/users/@me/applications/{store.bot.application_id}/role-connection",
        json={"platform_name": "Shop", "metadata": {"verified_buyer": "1"}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert written.status_code == 200, written.text
    index = requests.get(store.fake.sandbox_url, timeout=5).text
    row = re.search(rf'<tr data-user-id="{store.buyer.id}".*?</tr>', index, re.S)
    assert row is not None, "the buyer's connection has a row"
    assert "Shop" in row.group(0)
    assert "Verified &lt;buyer&gt;: <strong>1</strong>" in row.group(0), "named as declared, escaped"
