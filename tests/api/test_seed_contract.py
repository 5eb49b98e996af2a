"""The custom-bot document's own words, to the letter: its error bodies, its failed connection test, its
times, and the docs' quotes of them (the troubleshooting page's table of the tenant API's errors).

The document is vendored at ``docs/seed/000_custom_bot_api.txt`` (byte for byte); these tests read its
JSON examples from there, so a client written from the document sees exactly what it was promised.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_discord_roles._runtime.state import get_state
from flask_discord_roles._web.error_body import EXTRA_KEYS, MESSAGES, OPERATION_NOT_FOUND, TITLES
from flask_discord_roles.testing import FakeDiscord
from tests.api import API_CONFIG, PREFIX, api_for
from tests.shop import Shop

ROOT = Path(__file__).resolve().parents[2]
SEED = (ROOT / "docs" / "seed" / "000_custom_bot_api.txt").read_text(encoding="utf-8")
ERRORS_PAGE = ROOT / "docs" / "troubleshooting.md"
ERRORS_DOC = ERRORS_PAGE.read_text(encoding="utf-8")
SEED_TIME = "%Y-%m-%dT%H:%M:%SZ"  # how the seed writes "2025-01-20T14:30:00Z"
SEED_KEYS = {"success", "error", "message", "errors", "retry_after"}


def _json_after(text: str, marker: str, start: int = 0) -> dict[str, Any]:
    """The JSON object that follows ``marker`` in ``text`` (the seed runs headings into its examples)."""
    at = text.index("{", text.index(marker, start))
    body, _ = json.JSONDecoder().raw_decode(text, at)
    assert isinstance(body, dict)
    return body


def seed_errors() -> dict[int, dict[str, Any]]:
    """Each example of the seed's "Error Responses" section, by status."""
    section = SEED[SEED.index("Error Responses") : SEED.index("Rate Limits")]
    examples = {
        int(status): _json_after(section, f"{status} {title}\n")
        for status, title in re.findall(r"(\d{3}) ([A-Z][A-Za-z ]+)\n\{", section)
    }
    assert set(examples) == {401, 403, 404, 422, 429}, f"the seed's error section changed: {examples}"
    return examples


SEED_ERRORS = seed_errors()


def provoke(app: Flask, status: int) -> Any:
    """The request that, by the seed's description, answers ``status``."""
    if status == 401:
        return app.test_client().get(f"{PREFIX}/custom-bot", headers={"X-Tenant-Id": "store-1"})
    if status == 403:
        return api_for(app, scopes=("read",)).post("/custom-bot/toggle", json={"enabled": True})
    if status == 404:
        return api_for(app).get("/no-such-operation")
    if status == 422:
        # Only the application id is wrong, as in the seed's example.
        return api_for(app).post(
            "/custom-bot",
            json={"application_id": "my-app", "public_key": "ab" * 32, "bot_token": "MTIz.ABc.ghI"},
        )
    if status == 429:
        api = api_for(app)
        api.get("/custom-bot")
        return api.get("/custom-bot")
    raise AssertionError(status)


@pytest.mark.parametrize("status", sorted(SEED_ERRORS))
def test_each_error_the_seed_names_has_its_exact_words(fresh_app: Any, status: int) -> None:
    app, _, _ = fresh_app(**(API_CONFIG | {"DISCORD_ROLES_API_RATE_LIMIT": "1/minute"}))
    seed = SEED_ERRORS[status]
    response = provoke(app, status)
    body = response.get_json()
    assert response.status_code == status, body
    ours = {key: body.get(key) for key in ("success", "error", "message")}
    assert ours == {key: seed[key] for key in ("success", "error", "message")}, (
        f"{status}: the seed says {seed}, we said {body}"
    )
    assert set(seed) <= set(body), f"{status}: the seed's keys {sorted(seed)} are all there: {body}"
    extra = set(body) - SEED_KEYS
    assert extra <= set(EXTRA_KEYS), f"{status}: undocumented extra keys {extra - set(EXTRA_KEYS)}"
    if status == 422:
        assert body["errors"] == seed["errors"], "the seed's own example field message, word for word"
    if status == 429:
        assert isinstance(body["retry_after"], int), "whole seconds, as the seed writes 60"
        assert 1 <= body["retry_after"] <= 60


def test_a_refused_bot_token_fails_the_connection_test_with_the_seeds_words(shop: Shop) -> None:
    seed = _json_after(SEED, "Response (Failure):", SEED.index("Test Bot Connection"))
    assert seed == {"connected": False, "error": "Invalid bot token"}
    shop.fake.revoke_bot_token(shop.bot)
    body = api_for(shop.app).post("/custom-bot/test").get_json()
    assert {key: body[key] for key in seed} == seed, body
    assert "Reset it" in body["detail"], "what to do is in the extra `detail`"


def test_a_scope_refusal_names_the_scope_in_an_extra_key(app: Flask) -> None:
    body = api_for(app, scopes=("read",)).post("/custom-bot/toggle", json={"enabled": True}).get_json()
    assert body["message"] == SEED_ERRORS[403]["message"]
    assert body["required_scope"] == "write"


def test_an_unknown_id_is_resource_not_found_and_says_which_kind(app: Flask) -> None:
    api = api_for(app)
    delivery = api.get("/deliveries/42").get_json()
    assert {key: delivery[key] for key in ("error", "message", "resource")} == {
        "error": "Not Found",
        "message": "Resource not found",
        "resource": "delivery",
    }
    mapping = api.delete("/mappings/7").get_json()
    assert (mapping["message"], mapping["resource"]) == ("Resource not found", "mapping")
    guild = api.delete("/guilds/123456789012345678").get_json()
    assert (guild["message"], guild["resource"]) == ("Resource not found", "guild")
    no_bot = api.post("/custom-bot/toggle", json={"enabled": True}).get_json()
    assert (no_bot["message"], no_bot["resource"]) == ("Resource not found", "custom_bot")


# -- times ---------------------------------------------------------------------------------------------


def _times(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (where, text) in a JSON answer whose key says it is a time (``…_at``)."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_at") and isinstance(item, str):
                found.append((f"{path}.{key}", item))
            found.extend(_times(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found.extend(_times(item, f"{path}[{n}]"))
    return found


def test_every_time_in_every_answer_is_utc_to_the_second(shop: Shop, fake_discord: FakeDiscord) -> None:
    state = get_state(shop.app)
    shop.link()
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.db.session.add(
        state.models.DiscordAccount(
            store_id="store-1",
            customer_id="alice",
            discord_user_id=alice,
            username="alice",
            access_token_ciphertext=state.cipher.encrypt("access"),
            refresh_token_ciphertext=state.cipher.encrypt("refresh"),
            scopes="identify",
        )
    )
    shop.db.session.commit()
    shop.buy("order-1", "vip", buyer=alice, customer="alice")
    shop.buy("order-2", "vip", buyer=None, customer="bob")
    bot = state.models.StoreBot
    shop.db.session.execute(
        sa.update(bot)
        .where(bot.store_id == "store-1")
        .values(last_interaction_at=datetime(2025, 1, 20, 14, 30, 0, 473441, tzinfo=UTC))
    )
    shop.db.session.commit()

    api = api_for(shop.app)
    delivery_id = api.get("/deliveries").json["deliveries"][0]["id"]
    answers = {
        "POST /guilds/link-code": api.post("/guilds/link-code"),
        "GET /custom-bot": api.get("/custom-bot"),
        "GET /custom-bot/stats": api.get("/custom-bot/stats"),
        "GET /guilds": api.get("/guilds"),
        "GET /mappings": api.get("/mappings"),
        "GET /deliveries": api.get("/deliveries"),
        "GET /deliveries/{id}": api.get(f"/deliveries/{delivery_id}"),
        "GET /customers/alice": api.get("/customers/alice"),
        "GET /diagnostics": api.get("/diagnostics"),
    }
    seen: list[str] = []
    for name, response in answers.items():
        assert response.status_code < 300, (name, response.get_json())
        for where, text in _times(response.get_json()):
            try:
                datetime.strptime(text, SEED_TIME)
            except ValueError:
                pytest.fail(f"{name} {where} = {text!r} is not like the seed's 2025-01-20T14:30:00Z")
            seen.append(f"{name} {where}")
    assert len(seen) >= 15, f"too few times to judge: {seen}"
    assert api.get("/custom-bot").json["bot"]["last_interaction_at"] == "2025-01-20T14:30:00Z"
    for needed in ("link-code", "stats", "/guilds", "/mappings", "/deliveries", "customers", "diagnostics"):
        assert any(needed in where for where in seen), f"no time checked in {needed}: {seen}"


def test_the_openapi_description_gives_times_the_seeds_pattern(app: Flask) -> None:
    document = api_for(app).get("/openapi.json").get_json()
    delivery = document["paths"]["/deliveries/{delivery_id}"]["get"]["responses"]["200"]["content"]
    created_at = delivery["application/json"]["schema"]["properties"]["delivery"]["properties"]["created_at"]
    assert re.fullmatch(created_at["pattern"], "2025-01-20T14:30:00Z")
    assert not re.fullmatch(created_at["pattern"], "2025-01-20T14:30:00.473441Z")
    assert not re.fullmatch(created_at["pattern"], "2025-01-20T14:30:00+00:00")


# -- rate-limit headers ----------------------------------------------------------------------------------


def test_every_answer_carries_the_rate_limit_headers(fresh_app: Any) -> None:
    app, _, _ = fresh_app(**(API_CONFIG | {"DISCORD_ROLES_API_RATE_LIMIT": "5/minute"}))
    api = api_for(app)
    answers = [
        ("200", api.get("/custom-bot")),
        ("404 resource", api.get("/deliveries/42")),
        ("422", api.get("/deliveries?limit=0")),
        ("404 operation", api.get("/no-such-operation")),
        ("403", api_for(app, scopes=("read",)).post("/custom-bot/toggle", json={"enabled": True})),
        ("401", app.test_client().get(f"{PREFIX}/custom-bot")),
        ("openapi.json", app.test_client().get(f"{PREFIX}/openapi.json")),
    ]
    for name, response in answers:
        for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            assert response.headers.get(header, "").isdigit(), f"{name}: {header} missing: {response.headers}"
        assert response.headers["X-RateLimit-Limit"] == "5", name
    remaining = [int(response.headers["X-RateLimit-Remaining"]) for _, response in answers[:4]]
    assert remaining == [4, 3, 2, 2], "each request of the token counts down; an unknown path is not counted"
    reset = int(answers[0][1].headers["X-RateLimit-Reset"])
    assert 0 < reset - datetime.now(UTC).timestamp() <= 61, "Unix seconds when a request is freed"

    assert [api.get("/custom-bot").headers["X-RateLimit-Remaining"] for _ in range(2)] == ["1", "0"]
    limited = api.get("/custom-bot")
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["Retry-After"] == str(limited.json["retry_after"])


def test_the_openapi_description_documents_the_rate_limit_headers(app: Flask) -> None:
    document = api_for(app).get("/openapi.json").get_json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                headers = response.get("headers", {})
                assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(headers), (
                    f"{method.upper()} {path} {status}"
                )


# -- the docs quote the seed -------------------------------------------------------------------------


def documented_error_rows() -> dict[str, tuple[str, str]]:
    """The docs' error table: status (or ``404 unknown operation``) → (`error`, `message`) as quoted."""
    rows = re.findall(r"^ *\| (\d{3}(?: [a-z ]+)?) \| `([^`]+)` \| `([^`]+)` \|", ERRORS_DOC, re.M)
    return {status: (error, message) for status, error, message in rows}


def test_the_docs_quote_the_seeds_error_messages_word_for_word() -> None:
    rows = documented_error_rows()
    assert rows, f"{ERRORS_PAGE.relative_to(ROOT)} has the table of error statuses, titles and messages"
    for status, seed in SEED_ERRORS.items():
        key = f"{status} unknown operation" if status == 404 else str(status)
        assert rows.get(key) == (seed["error"], seed["message"]), (
            f"{ERRORS_PAGE.name}'s row for {key}: {rows.get(key)}, the seed says {seed}"
        )
    assert '`"error": "Invalid bot token"`' in ERRORS_DOC, (
        f"{ERRORS_PAGE.name} quotes the seed's failed /test answer"
    )


def test_the_docs_table_is_every_error_we_send() -> None:
    rows = documented_error_rows()
    ours = {str(status): (TITLES[status], message) for status, message in MESSAGES.items()}
    ours["404 unknown operation"] = (TITLES[404], OPERATION_NOT_FOUND)
    ours["404"] = (TITLES[404], MESSAGES[404])
    assert rows == ours, (
        f"{ERRORS_PAGE.name}'s error table and flask_discord_roles._web.error_body say the same"
    )
