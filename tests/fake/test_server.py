"""The fake as a server: lifecycle, reset, recorded calls and many concurrent clients."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from flask_discord_roles.testing import FakeDiscord
from tests.fake.helpers import Store


def test_lifecycle() -> None:
    fake = FakeDiscord()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    with fake:
        assert fake.api_base_url == fake.base_url + "/api/v10"
        with requests.get(fake.api_base_url + "/users/@me", timeout=5) as response:
            assert response.status_code == 401
    with pytest.raises(RuntimeError):
        _ = fake.base_url


@pytest.mark.breaks_discord_spec
def test_one_connection_serves_many_calls_as_discord_keeps_them_alive(store: Store) -> None:
    # Every kind of answer, bodies sent and bodies not read by the route alike, then a normal call.
    member_url = store.url(f"/guilds/{store.guild.id}/members/{store.buyer.id}")
    role_url = store.url(f"/guilds/{store.guild.id}/members/{store.buyer.id}/roles/{store.role.id}")
    assert store.api.get(member_url).status_code == 200
    assert store.api.put(role_url, json={"ignored": "x" * 5000}).status_code == 204
    assert store.api.post(store.url("/channels/1/messages"), json={"content": "hi"}).status_code == 404
    assert store.api.delete(role_url).status_code == 204
    response = store.api.get(member_url)

    assert response.json()["user"]["id"] == store.buyer.id, "the last answer must be its own, not a stale one"
    assert response.headers.get("Connection") != "close"
    pools = store.api.get_adapter(member_url).poolmanager.pools
    # urllib3's pool container refuses plain iteration; keys() is its way.
    opened = sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118
    assert opened == 1, f"{opened} TCP connections for 5 calls"


def test_reset_wipes_state_but_keeps_serving(store: Store) -> None:
    store.fake.set_route_limit("users_me", 1, 60.0)
    base_url = store.fake.base_url
    assert store.api.get(store.url("/users/@me")).status_code == 200
    store.fake.reset()
    assert store.fake.base_url == base_url
    assert store.fake.calls == []
    assert store.api.get(store.url("/users/@me")).status_code == 401  # the bot is gone
    bot = store.fake.create_bot()
    store.api.headers["Authorization"] = f"Bot {bot.token}"
    assert store.api.get(store.url("/users/@me")).status_code == 200  # limits back to defaults


def test_fixture_starts_each_test_clean(fake_discord: FakeDiscord) -> None:
    assert fake_discord.world.guilds == {}
    assert fake_discord.calls == []
    fake_discord.create_guild()


@pytest.mark.breaks_discord_spec
def test_unknown_routes(store: Store) -> None:
    missing = store.api.get(store.url("/nowhere"))
    assert (missing.status_code, missing.json()["code"]) == (404, 0)
    wrong_method = store.api.post(store.url(f"/guilds/{store.guild.id}/roles"))
    assert wrong_method.status_code == 405


def test_recorded_calls(store: Store) -> None:
    store.api.put(store.role_url(), headers={"X-Audit-Log-Reason": "order%201"})
    store.api.post(
        store.url(f"/channels/{store.fake.create_channel(store.guild.id).id}/messages"),
        json={"content": "hello"},
    )
    [put] = store.fake.calls_to("PUT", r"/guilds/\d+/members/\d+/roles/\d+$")
    assert put.status == 204
    assert put.auth == "bot"
    assert put.token_suffix == store.bot.token[-6:]
    assert put.audit_log_reason == "order 1"
    assert put.path.startswith("/api/v10/")
    [message] = store.fake.calls_to("post", r"/messages$")
    assert message.json == {"content": "hello"}
    store.fake.clear_calls()
    assert store.fake.calls == []


def test_hundreds_of_concurrent_clients(
    store: Store, session_factory: Callable[..., requests.Session]
) -> None:
    store.fake.set_route_limit("guild", 10_000, 60.0)
    store.fake.set_global_limit(None)
    url = store.url(f"/guilds/{store.guild.id}")
    headers = {"Authorization": f"Bot {store.bot.token}"}

    def fetch(_: int) -> int:
        with requests.get(url, headers=headers, timeout=10) as response:
            return response.status_code

    with ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(fetch, range(400)))
    assert statuses == [200] * 400
    assert store.fake.internal_errors == []
