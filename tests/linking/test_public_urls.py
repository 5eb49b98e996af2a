"""Every address we hand out is built from DISCORD_ROLES_PUBLIC_BASE_URL, never from the Host header.

A production app (neither TESTING nor debug) must set it; a TESTING or debug app without it uses the
request's own address, and refuses a Host header that is not a plain host name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import ConfigurationError, DiscordRoles, bots
from flask_discord_roles._core.bots import save_bot
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from tests.api import api_for, assert_error
from tests.linking import LINKING_CONFIG

BASE = "https://shop.example.com"
HOSTILE_HOSTS = ["evil.example", "a@evil", "evil.example/x", "evil.example:80@other", "shop.example.com#"]


def _bare_app(**config: Any) -> Flask:
    app = Flask("production_host")
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite://", DISCORD_ROLES_ENCRYPTION_KEYS=[generate_key()], **config
    )
    SQLAlchemy(app)
    return app


def test_a_production_app_without_a_public_base_url_does_not_start_and_says_which_setting() -> None:
    app = _bare_app()
    with pytest.raises(ConfigurationError, match="DISCORD_ROLES_PUBLIC_BASE_URL is not set"):
        DiscordRoles(app)
    assert "discord_roles" not in app.extensions, "a failed init_app must register nothing"
    DiscordRoles(_bare_app(DISCORD_ROLES_PUBLIC_BASE_URL=BASE))
    DiscordRoles(_bare_app(DEBUG=True))  # a developer's own machine: the request's address is fine
    DiscordRoles(_bare_app(TESTING=True))


@pytest.mark.parametrize(
    "base", ["https://user@shop.example.com", "https://shop.example.com/?x=1", "https://shop.example.com/#a"]
)
def test_a_public_base_url_with_a_user_query_or_fragment_is_refused(base: str) -> None:
    with pytest.raises(ConfigurationError, match="DISCORD_ROLES_PUBLIC_BASE_URL"):
        DiscordRoles(_bare_app(DISCORD_ROLES_PUBLIC_BASE_URL=base))


def _store_with_bot(fresh_app: Any, fake: FakeDiscord, **config: Any) -> tuple[Flask, DiscordRoles]:
    app, db, discord_roles = fresh_app(
        DISCORD_ROLES_API_BASE_URL=fake.api_base_url, **LINKING_CONFIG, **config
    )
    discord_roles.customer_loader(lambda: "customer-1")
    bot = fake.create_bot("Shop Bot")
    with app.app_context():
        save_bot(
            get_state(app),
            "store-1",
            application_id=bot.application_id,
            public_key=bot.public_key,
            bot_token=bot.token,
            client_secret=bot.client_secret,
        )
        db.session.commit()
    return app, discord_roles


def _redirect_uri(app: Flask, host: str) -> Any:
    answer = app.test_client().get("/discord/link", headers={"Host": host})
    if answer.status_code != 302:
        return answer
    return parse_qs(urlsplit(answer.headers["Location"]).query)["redirect_uri"][0]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_every_address_we_hand_out_comes_from_the_public_base_url_whatever_the_host(
    fresh_app: Any, fake_discord: FakeDiscord, host: str
) -> None:
    app, _ = _store_with_bot(fresh_app, fake_discord, DISCORD_ROLES_PUBLIC_BASE_URL=BASE + "/")
    api = api_for(app)
    shown = api.get("/custom-bot", headers={"Host": host})
    assert shown.status_code == 200, shown.get_data(as_text=True)
    assert shown.get_json()["interactions_url"] == f"{BASE}/webhook/discord/interactions/store-1"
    diagnosis = api.get("/diagnostics", headers={"Host": host}).get_data(as_text=True)
    assert "evil" not in diagnosis
    assert "other" not in diagnosis
    assert _redirect_uri(app, host) == f"{BASE}/discord/callback", "Discord must send the code back to us"
    with app.test_request_context(headers={"Host": host}):
        assert bots.interactions_url("store-1").startswith(BASE + "/")


@pytest.mark.parametrize(
    "host", ["a@evil", "evil.example/x", "evil.example:80@other", "a b", "shop.example.com#"]
)
def test_testing_without_a_base_url_refuses_a_host_that_is_not_a_host_name(
    fresh_app: Any, fake_discord: FakeDiscord, host: str
) -> None:
    app, _ = _store_with_bot(fresh_app, fake_discord)
    answer = api_for(app).get("/custom-bot", headers={"Host": host})
    body = assert_error(answer, 400)
    assert "Host" in body["detail"], body
    linking = _redirect_uri(app, host)
    assert not isinstance(linking, str), f"a redirect URI was built from Host {host!r}: {linking}"
    assert linking.status_code == 400


@pytest.mark.parametrize("host", ["localhost:5000", "127.0.0.1:8080", "[::1]:5000", "shop.test"])
def test_testing_without_a_base_url_uses_a_plain_host_of_the_request(
    fresh_app: Any, fake_discord: FakeDiscord, host: str
) -> None:
    app, _ = _store_with_bot(fresh_app, fake_discord)
    shown = api_for(app).get("/custom-bot", headers={"Host": host})
    assert shown.get_json()["interactions_url"] == f"http://{host}/webhook/discord/interactions/store-1"
    assert _redirect_uri(app, host) == f"http://{host}/discord/callback"
