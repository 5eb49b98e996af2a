"""Calling the tenant API the way a store's dashboard does: a real token, the two headers, JSON.

``api_for(app, "store-1")`` makes a token for the store (through the service, as the CLI does) and returns
an :class:`Api` whose ``get``/``post``/``patch``/``delete`` send it. ``assert_error`` checks the one
error shape every failure must have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_discord_roles import get_state
from flask_discord_roles.services.api_tokens import create_token
from tests.shop import FAST_QUEUE, Shop

PREFIX = "/api/v1/tenant/discord"

API_CONFIG: dict[str, Any] = {**FAST_QUEUE, "DISCORD_ROLES_API_RATE_LIMIT": "100000/minute"}
"""The fast queue, and a rate limit no functional test reaches (the rate-limit tests set their own)."""


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


def link_guild(shop: Shop, guild_id: str | None = None) -> str:
    """Link the shop's guild (or ``guild_id``) to its store, as ``/link`` would."""
    state = get_state(shop.app)
    guild_id = guild_id or shop.guild_id
    shop.db.session.add(state.models.LinkedGuild(store_id=shop.store_id, guild_id=guild_id))
    shop.db.session.commit()
    return guild_id


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
