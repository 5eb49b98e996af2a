"""No bot token, OAuth token or API token ever leaves through the tenant API: not in a response body or
header, not in a log line — on success, on refusal, or when Discord is down.

The test drives the whole API the way a store owner's dashboard would (saving a bot, a wrong token, an
outage, every read operation, every error) with every logger captured at DEBUG, then searches all of it
for each secret it created.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from werkzeug.test import TestResponse

from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from tests.api import PREFIX, api_for
from tests.shop import open_shop


class Transcript:
    """Everything the API said, for searching."""

    def __init__(self) -> None:
        self.responses: list[str] = []

    def record(self, response: TestResponse) -> TestResponse:
        headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
        self.responses.append(f"{response.status}\n{headers}\n{response.get_data(as_text=True)}")
        return response


def test_no_token_of_any_kind_appears_in_responses_or_logs(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The bot's identity is read a dozen times below; at the fake's 5 reads per 5 s the client waited out
    # its limit for four seconds. Rate limits have tests of their own; here they would only slow.
    fake_discord.set_route_limit("users_me", 100, 5.0)
    transcript = Transcript()
    state = get_state(app)
    shop = open_shop(app, db, fake_discord)
    shop.link()
    shop.map("vip", "VIP")
    buyer = fake_discord.create_user("buyer")
    fake_discord.add_member(shop.guild_id, buyer.id)
    access_token = fake_discord.create_user_token(shop.bot, buyer)
    refresh_token = "refresh-" + access_token[::-1]
    db.session.add(
        state.models.DiscordAccount(
            store_id=shop.store_id,
            customer_id="customer-1",
            discord_user_id=buyer.id,
            username="buyer",
            access_token_ciphertext=state.cipher.encrypt(access_token),
            refresh_token_ciphertext=state.cipher.encrypt(refresh_token),
        )
    )
    db.session.commit()
    shop.buy("order-1", "vip", buyer=buyer.id, customer="customer-1")
    api = api_for(app)
    reader = api_for(app, scopes=("read",))

    new_bot = fake_discord.create_bot("Replacement Bot")
    credentials = {
        "application_id": new_bot.application_id,
        "public_key": new_bot.public_key,
        "bot_token": new_bot.token,
    }
    wrong_token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.ABcDEf.this-one-discord-refuses"
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/custom-bot", {**credentials, "bot_token": wrong_token}),
        ("POST", "/custom-bot", {**credentials, "public_key": "short", "bot_token": wrong_token}),
        ("POST", "/custom-bot", credentials),
        ("POST", "/custom-bot/test", None),
        ("POST", "/custom-bot/register-commands", None),
        ("GET", "/customers/customer-1", None),
    ]
    for method, path, body in calls:
        transcript.record(api.call(method, path, json=body))
    fake_discord.set_faults(error_rate=1.0)
    transcript.record(api.post("/custom-bot", json=credentials))  # Discord down: 503
    transcript.record(api.post("/custom-bot/test"))
    transcript.record(api.get("/diagnostics"))
    fake_discord.set_faults()
    fake_discord.revoke_bot_token(new_bot)
    transcript.record(api.post("/custom-bot/test"))
    transcript.record(api.get("/diagnostics"))

    document = app.test_client().get(f"{PREFIX}/openapi.json").json
    for path, methods in document["paths"].items():
        if "get" in methods and "{" not in path:
            transcript.record(api.get(path))
            transcript.record(reader.post(path))  # 403 or 405
    client = app.test_client()
    for headers in (
        {"Authorization": f"Bearer {api.token}x", "X-Tenant-Id": "store-1"},
        {"Authorization": f"Bearer {api.token}", "X-Tenant-Id": "store-2"},
        {"Authorization": f"Token {api.token}", "X-Tenant-Id": "store-1"},
    ):
        transcript.record(client.get(f"{PREFIX}/custom-bot", headers=headers))

    secrets = {
        "API token": api.token,
        "read-only API token": reader.token,
        "saved bot token": new_bot.token,
        "first bot token": shop.bot.token,
        "refused bot token": wrong_token,
        "OAuth access token": access_token,
        "OAuth refresh token": refresh_token,
        "client secret": shop.bot.client_secret,
    }
    logged = [f"{record.name}: {record.getMessage()}\n{record.exc_text or ''}" for record in caplog.records]
    assert len(transcript.responses) > 20, "the transcript covers the API"
    assert logged, "the API logs (a refused bot token, an outage), so the search below means something"
    for what, secret in secrets.items():
        pattern = re.compile(re.escape(secret))
        for text in transcript.responses:
            assert not pattern.search(text), f"the {what} appeared in a response:\n{text[:500]}"
        for line in logged:
            assert not pattern.search(line), f"the {what} appeared in a log line:\n{line[:500]}"
