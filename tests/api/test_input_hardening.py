"""Bad input at our blueprints' doors gets a clear JSON refusal, never a 500, and never reaches a query.

Paths with control characters, bodies too large or nested too deep for a parser, and errors nobody
expected: the webhook and the tenant API each answer in their own JSON shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from tests.api import Api, assert_error
from tests.shop import Shop

WEBHOOK = "/webhook/discord/interactions"
DEEP = b"[" * 50_000


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@contextmanager
def counted_queries(db: SQLAlchemy) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("slug", ["store-1%00", "store-a%00", "%01", "store%1F-1", "store-1%7F"])
def test_a_control_character_in_the_store_slug_is_a_json_404_before_any_query(
    shop: Shop, client: FlaskClient, caplog: pytest.LogCaptureFixture, slug: str
) -> None:
    body = json.dumps(shop.fake.ping_payload(shop.bot)).encode()
    with caplog.at_level(logging.WARNING), counted_queries(shop.db) as queries:
        answer = shop.post_signed(f"{WEBHOOK}/{slug}", body, client)
    assert answer.status_code == 404, f"{slug} answered {answer.status_code}: {answer.text[:200]}"
    assert answer.json()["success"] is False
    assert answer.json()["error"] == "Not Found"
    assert queries == [], f"a path with a control character reached the database: {queries}"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == [], "junk must not raise alerts"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/guilds/1%00"),
        ("GET", "/customers/cus%00tomer"),
        ("POST", "/customers/a%0Ab/roles"),
        ("DELETE", "/customers/c/roles/1%00/2"),
        ("GET", "/no%00such"),
    ],
)
def test_a_control_character_in_a_tenant_api_path_is_a_404_before_the_token_is_looked_up(
    api: Api, db: SQLAlchemy, method: str, path: str
) -> None:
    with counted_queries(db) as queries:
        answer = api.call(method, path, json={})
    body = assert_error(answer, 404)
    assert body["error"] == "Not Found"
    assert queries == [], f"{method} {path} reached the database: {queries}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/custom-bot"),
        ("POST", "/custom-bot/toggle"),
        ("POST", "/customers/customer-1/roles"),
        ("POST", "/deliveries/retry"),
        ("POST", "/mappings"),
        ("PATCH", "/settings"),
    ],
)
def test_json_nested_too_deep_or_too_large_is_refused_before_parsing_on_every_write(
    api: Api, db: SQLAlchemy, method: str, path: str
) -> None:
    deep = api.call(method, path, data=DEEP, headers={"Content-Type": "application/json"})
    body = assert_error(deep, 400)
    assert "nested" in body["detail"], body
    huge = b'{"enabled": true, "padding": "' + b"x" * 70_000 + b'"}'
    large = api.call(method, path, data=huge, headers={"Content-Type": "application/json"})
    assert_error(large, 413)
    # Nesting within the bound is read as before: a list where an object belongs is a 422.
    shallow = api.call(method, path, data=b"[" * 20 + b"]" * 20, headers={"Content-Type": "application/json"})
    assert_error(shallow, 422)


def test_a_signed_interaction_nested_too_deep_is_a_json_400(shop: Shop, client: FlaskClient) -> None:
    for body in (DEEP, b'{"type": 2, "id": "1", "data": ' + b'{"a": ' * 40 + b"1" + b"}" * 41):
        answer = shop.post_signed(f"{WEBHOOK}/store-1", body, client)
        assert answer.status_code == 400, f"answered {answer.status_code}: {answer.text[:200]}"
        assert answer.json()["error"] == "Bad Request"
        assert "nested" in answer.json()["message"]


def test_brackets_inside_strings_do_not_count_as_nesting(shop: Shop, client: FlaskClient) -> None:
    payload = shop.fake.command_payload(shop.bot, shop.guild_id, shop.member("alice"), "help")
    payload["note"] = "[" * 500 + '\\"{' * 200
    answer = shop.post_signed(f"{WEBHOOK}/store-1", json.dumps(payload).encode(), client)
    assert answer.status_code == 200, answer.text[:200]


def test_an_unexpected_error_in_the_webhook_is_json_logged_once_and_tells_nothing(
    shop: Shop, client: FlaskClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("db password is hunter2")

    monkeypatch.setattr("flask_discord_roles._web.interactions.answer_interaction", broken)
    payload = shop.fake.command_payload(shop.bot, shop.guild_id, shop.member("alice"), "help")
    with caplog.at_level(logging.ERROR):
        answer = shop.fake.send_interaction(f"{WEBHOOK}/store-1", shop.bot, payload, client=client)
    assert answer.status_code == 500
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {
        "success": False,
        "error": "Internal Server Error",
        "message": "Internal server error",
        "detail": "Something went wrong on our side.",
    }
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1, f"logged once: {[record.getMessage() for record in errors]}"
    assert errors[0].exc_info is not None, "logged with the traceback"


def test_an_unexpected_error_in_the_tenant_api_is_the_seeds_shape_logged_once(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("db password is hunter2")

    monkeypatch.setattr("flask_discord_roles._core.settings.settings_dict", broken)
    with caplog.at_level(logging.ERROR):
        answer = api.get("/settings")
    body = assert_error(answer, 500)
    assert set(body) == {"success", "error", "message", "detail"}
    assert (body["error"], body["message"]) == ("Internal Server Error", "Internal server error")
    assert "hunter2" not in answer.get_data(as_text=True)
    assert "Traceback" not in answer.get_data(as_text=True)
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1, f"logged once: {[record.getMessage() for record in errors]}"
    assert errors[0].exc_info is not None, "logged with the traceback"
