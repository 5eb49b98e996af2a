"""The tenant API's tests; this module holds the helpers that call the API the way a store's dashboard
does (a real token, the two headers, JSON), which other areas' tests use too.

``api_for(app, "store-1")`` makes a token for the store (through the service, as the CLI does) and returns
an :class:`Api` whose ``get``/``post``/``patch``/``delete`` send it. ``assert_error`` checks the one
error shape every failure must have; ``assert_documented`` checks a body against ``openapi.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from werkzeug.test import TestResponse

from flask_discord_roles._core.api_tokens import create_token
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.state import FakeBot
from tests.shop import FAST_QUEUE

PREFIX = "/api/v1/tenant/discord"

API_CONFIG: dict[str, Any] = {
    **FAST_QUEUE,
    "DISCORD_ROLES_API_RATE_LIMIT": "100000/minute",
    # An API request waits on Discord while the store owner watches; on a busy CI machine one slow or
    # dropped call to FakeDiscord must not turn a read into a 503. (Outage tests fail every call.)
    "DISCORD_ROLES_HTTP_TIMEOUT": 6.0,
    "DISCORD_ROLES_HTTP_MAX_RETRIES": 1,
    "DISCORD_ROLES_LEASE_SECONDS": 30.0,
}
"""The fast queue, a rate limit no functional test reaches (the rate-limit tests set their own), and
Discord calls with room for a loaded machine."""


@dataclass
class Api:
    client: FlaskClient
    token: str
    store_id: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Tenant-Id": self.store_id, **extra}

    def call(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        response = self.client.open(PREFIX + path, method=method, headers=headers, **kwargs)
        assert self.token not in response.get_data(as_text=True), f"{method} {path} echoed the API token"
        return response

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("DELETE", path, **kwargs)


def api_for(app: Flask, store_id: str = "store-1", scopes: tuple[str, ...] = ("read", "write")) -> Api:
    """A client holding a fresh token of ``store_id`` with ``scopes``."""
    state = get_state(app)
    with app.app_context():
        issued = create_token(state, store_id, f"test token for {store_id}", scopes)
        state.db.session.commit()
    return Api(app.test_client(), issued.token, store_id)


def assert_error(response: TestResponse, status: int, *, fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """The response is the API's error shape with ``status``; with ``fields``, a 422 naming them."""
    body = response.get_json(silent=True)
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {body}"
    assert isinstance(body, dict), f"error responses are JSON objects, got {response.data[:200]!r}"
    assert body.get("success") is False, body
    for key in ("error", "message"):
        assert isinstance(body.get(key), str), f"`{key}` is text: {body}"
        assert body[key], f"`{key}` is not empty: {body}"
    if fields:
        errors = body.get("errors")
        assert isinstance(errors, dict), f"a 422 names the fields in `errors`: {body}"
        for field in fields:
            assert field in errors, f"`errors` should name {field!r}: {errors}"
            assert errors[field], f"{field!r} has at least one message: {errors}"
            assert all(isinstance(m, str) for m in errors[field]), errors
    return body


DELIVERY_KEYS = {
    "id": int,
    "store_id": str,
    "action": str,
    "status": str,
    "source": str,
    "guild_id": str,
    "role_id": str,
    "role_name": (str, type(None)),
    "discord_user_id": (str, type(None)),
    "customer_id": (str, type(None)),
    "order_id": (str, type(None)),
    "package_id": (str, type(None)),
    "attempts": int,
    "next_attempt_at": (str, type(None)),
    "reason_code": (str, type(None)),
    "reason": (str, type(None)),
    "expires_at": (str, type(None)),
    "created_at": str,
    "updated_at": str,
    "completed_at": (str, type(None)),
}


def assert_delivery(data: Any) -> None:
    """Exactly the documented keys, each of its type; times in UTC."""
    assert isinstance(data, dict)
    assert set(data) == set(DELIVERY_KEYS)
    for key, kind in DELIVERY_KEYS.items():
        assert isinstance(data[key], kind), (key, data[key])
    assert data["created_at"].endswith("Z")


def assert_documented(api: Api, method: str, path: str, response: TestResponse) -> Any:
    """The body is valid against the schema ``/openapi.json`` gives for this operation and status."""
    document = api.get("/openapi.json").get_json()
    schema = document["paths"][path][method]["responses"][str(response.status_code)]["content"]
    validator = jsonschema_rs.Draft202012Validator(
        schema["application/json"]["schema"], validate_formats=True
    )
    body = response.get_json()
    errors = [error.message for error in validator.iter_errors(body)]
    assert not errors, errors
    return body


@dataclass
class SharedBotStore:
    """A store on the platform's shared bot, with one linked server the bot is in."""

    app: Flask
    db: SQLAlchemy
    platform: FakeBot
    guild_id: str
    store_id: str = "store-1"


@contextmanager
def shared_bot_store(make_app: Any, database_url: str, fake: FakeDiscord) -> Iterator[SharedBotStore]:
    """What ``/link`` on the shared bot leaves behind: a bot row standing for the platform's bot (its
    commands registered) and the linked server. Tables are dropped and clients closed afterwards."""
    platform = fake.create_bot("Platform Bot")
    app, db, _ = make_app(
        database_url,
        **API_CONFIG,
        DISCORD_ROLES_API_BASE_URL=fake.api_base_url,
        DISCORD_ROLES_APPLICATION_ID=platform.application_id,
        DISCORD_ROLES_PUBLIC_KEY=platform.public_key,
        DISCORD_ROLES_BOT_TOKEN=platform.token,
    )
    guild = fake.create_guild("Shared Guild")
    fake.add_bot_to_guild(platform, guild.id)
    state = get_state(app)
    with app.app_context():
        db.create_all()
        db.session.add_all(
            [
                state.models.StoreBot(
                    store_id="store-1",
                    application_id=platform.application_id,
                    public_key=platform.public_key,
                    token_ciphertext=state.cipher.encrypt(platform.token),
                    uses_platform_bot=True,
                    is_enabled=True,
                    slash_commands_registered=True,
                ),
                state.models.LinkedGuild(store_id="store-1", guild_id=guild.id),
            ]
        )
        db.session.commit()
    try:
        yield SharedBotStore(app, db, platform, guild.id)
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()
        state.clients.close()
