"""Who may call the tenant API, how often, and with which tokens: 401, 403, 404/405 and 429."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import ApiGrant, tokens
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.deliveries import ValidationError
from tests.api import API_CONFIG, PREFIX, Api, api_for, assert_error
from tests.services import REDIS


def bare(app: Flask, **headers: str) -> Any:
    return app.test_client().get(f"{PREFIX}/custom-bot", headers=headers)


def test_no_token_a_wrong_scheme_or_an_unknown_token_is_401(app: Flask) -> None:
    api = api_for(app)
    for headers in (
        {"X-Tenant-Id": "store-1"},
        {"Authorization": f"Basic {api.token}", "X-Tenant-Id": "store-1"},
        {"Authorization": "Bearer drt_0000_nope", "X-Tenant-Id": "store-1"},
        {"Authorization": "Bearer ", "X-Tenant-Id": "store-1"},
    ):
        body = assert_error(bare(app, **headers), 401)
        assert {key: body[key] for key in ("success", "error", "message")} == {
            "success": False,
            "error": "Unauthorized",
            "message": "Invalid or missing API token",
        }, "the custom-bot document's words"
        assert "Bearer" in body["detail"]


def test_a_token_without_the_tenant_header_is_401(app: Flask) -> None:
    api = api_for(app)
    body = assert_error(bare(app, Authorization=f"Bearer {api.token}"), 401)
    assert body["message"] == "Invalid or missing API token"
    assert "X-Tenant-Id" in body["detail"], "which header is missing is in the extra `detail`"


def test_a_revoked_or_expired_token_is_401(app: Flask, db: SQLAlchemy) -> None:
    api = api_for(app)
    assert api.get("/custom-bot").status_code == 200
    with app.app_context():
        token_id = tokens.list_tokens("store-1")[0].id
        assert tokens.revoke_token("store-1", token_id)
        db.session.commit()
    assert_error(api.get("/custom-bot"), 401)

    with app.app_context():
        issued = tokens.create_token("store-1", "short-lived", expires_at=utcnow() + timedelta(seconds=30))
        db.session.commit()
        model = get_state(app).models.ApiToken
        db.session.execute(
            sa.update(model)
            .where(model.id == issued.info.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert_error(Api(app.test_client(), issued.token, "store-1").get("/custom-bot"), 401)


def test_a_token_used_for_another_store_is_403(app: Flask) -> None:
    api = api_for(app, "store-1")
    api_for(app, "store-2")
    body = assert_error(api.get("/custom-bot", headers={"X-Tenant-Id": "store-2"}), 403)
    assert (body["error"], body["message"]) == ("Forbidden", "Token does not have required scope")
    assert body["detail"] == "This token belongs to another store."


def test_scopes_read_for_get_and_write_for_changes(app: Flask) -> None:
    reader = api_for(app, scopes=("read",))
    assert reader.get("/custom-bot").status_code == 200
    body = assert_error(reader.post("/custom-bot/toggle", json={"enabled": True}), 403)
    assert (body["message"], body["required_scope"]) == ("Token does not have required scope", "write")
    writer = api_for(app, scopes=("write",))
    assert_error(writer.get("/custom-bot"), 403)
    assert writer.post("/custom-bot/toggle", json={"enabled": True}).status_code == 404, "allowed; no bot"


def test_unknown_operations_and_methods_answer_in_the_error_shape(app: Flask) -> None:
    api = api_for(app)
    body = assert_error(api.get("/no-such-thing"), 404)
    assert body["message"] == "Operation not found"
    assert_error(api.get("/"), 404)
    not_allowed = api.put("/custom-bot")
    assert_error(not_allowed, 405)
    assert set(not_allowed.headers["Allow"].split(", ")) == {"GET", "POST", "DELETE"}


def test_the_openapi_description_needs_no_token(app: Flask) -> None:
    response = app.test_client().get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    assert response.json["openapi"] == "3.1.0"


def test_the_api_can_be_left_out_or_moved(fresh_app: Any) -> None:
    off, _, _ = fresh_app(DISCORD_ROLES_TENANT_API=False)
    assert off.test_client().get(f"{PREFIX}/openapi.json").status_code == 404
    moved, _, _ = fresh_app(DISCORD_ROLES_API_PREFIX="/dashboard/api")
    assert moved.test_client().get("/dashboard/api/openapi.json").status_code == 200


# -- tokens: CLI, Python API, a host's own ----------------------------------------------------------


def test_the_cli_creates_a_token_shown_once_lists_it_without_the_secret_and_revokes_it(app: Flask) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(args=["discord-roles", "tokens", "create", "--store", "store-1", "--name", "CI"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("drt_")
    api = Api(app.test_client(), token, "store-1")
    assert api.get("/custom-bot").status_code == 200

    listed = runner.invoke(args=["discord-roles", "tokens", "list", "--store", "store-1"])
    assert "CI" in listed.output
    assert "active" in listed.output
    assert token not in listed.output, "a listing never shows the secret"
    token_id = listed.output.split("\t", 1)[0]

    revoked = runner.invoke(args=["discord-roles", "tokens", "revoke", "--store", "store-1", token_id])
    assert revoked.exit_code == 0, revoked.output
    assert_error(api.get("/custom-bot"), 401)
    again = runner.invoke(args=["discord-roles", "tokens", "revoke", "--store", "store-2", token_id])
    assert again.exit_code != 0, "a store cannot revoke another store's token"


def test_the_cli_refuses_an_empty_name(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["discord-roles", "tokens", "create", "--store", "store-1", "--name", " "]
    )
    assert result.exit_code != 0
    assert "Name the token" in result.output


def test_a_new_token_is_stored_hashed_and_never_in_a_repr(app: Flask, db: SQLAlchemy) -> None:
    with app.app_context():
        issued = tokens.create_token("store-1", "Dashboard", scopes=["read"])
        db.session.commit()
        row = db.session.scalar(sa.select(get_state(app).models.ApiToken))
        assert row is not None
        assert issued.token not in (row.token_hash, row.token_prefix, repr(row))
    assert issued.token not in repr(issued)
    assert issued.info.scopes == ["read"]
    with app.app_context(), pytest.raises(ValidationError) as refused:
        tokens.create_token("store-1", "Bad", scopes=["admin"])
    assert "scopes" in refused.value.errors


def test_a_host_with_its_own_tokens_registers_a_loader(fresh_app: Any) -> None:
    app, _, discord_roles = fresh_app(**API_CONFIG)

    @discord_roles.api_token_loader
    def load(token: str) -> ApiGrant | None:
        return ApiGrant.for_token(token, "store-7", ["read"]) if token == "host-secret" else None

    host = Api(app.test_client(), "host-secret", "store-7")
    assert host.get("/custom-bot").status_code == 200
    assert_error(host.post("/custom-bot/toggle", json={"enabled": True}), 403)
    assert_error(host.get("/custom-bot", headers={"X-Tenant-Id": "store-8"}), 403)
    assert_error(Api(app.test_client(), "guess", "store-7").get("/custom-bot"), 401)


# -- rate limit --------------------------------------------------------------------------------------


def test_the_61st_request_in_a_minute_is_429_with_retry_after(fresh_app: Any) -> None:
    app, _, _ = fresh_app()  # the default: 60 per minute per token
    first, second = api_for(app), api_for(app)
    for n in range(60):
        assert first.get("/custom-bot/stats").status_code == 200, f"request {n + 1} of 60 was refused"
    limited = first.get("/custom-bot/stats")
    body = assert_error(limited, 429)
    assert body["message"] == "Rate limit exceeded"
    assert 1 <= body["retry_after"] <= 60
    assert limited.headers["Retry-After"] == str(body["retry_after"])
    assert second.get("/custom-bot/stats").status_code == 200, "each token has its own count"


@pytest.fixture
def redis_url(redis_client: object) -> str:
    """The suite's Redis, once ``redis_client`` has checked that it answers."""
    return REDIS.url


def test_with_redis_storage_two_app_instances_share_one_count(fresh_app: Any, redis_url: str) -> None:
    config = {"DISCORD_ROLES_API_RATE_LIMIT": "5/minute", "DISCORD_ROLES_API_RATE_LIMIT_STORAGE": redis_url}
    one, _, _ = fresh_app(**config)
    two, _, _ = fresh_app(**config)
    token = api_for(one).token  # both instances read the same database, as two processes would
    via_one, via_two = Api(one.test_client(), token, "store-1"), Api(two.test_client(), token, "store-1")
    assert [via_one.get("/custom-bot").status_code for _ in range(3)] == [200, 200, 200]
    assert [via_two.get("/custom-bot").status_code for _ in range(2)] == [200, 200]
    assert_error(via_two.get("/custom-bot"), 429)
    assert_error(via_one.get("/custom-bot"), 429)


def test_an_unreachable_limit_store_lets_requests_through(fresh_app: Any) -> None:
    app, _, _ = fresh_app(DISCORD_ROLES_API_RATE_LIMIT_STORAGE="redis://127.0.0.1:1/0")
    assert api_for(app).get("/custom-bot").status_code == 200


def test_the_hosts_flask_limiter_and_ours_leave_each_other_alone(fresh_app: Any) -> None:
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    app, _, _ = fresh_app(DISCORD_ROLES_API_RATE_LIMIT="3/minute")
    Limiter(get_remote_address, app=app, default_limits=["2 per minute"], storage_uri="memory://")

    @app.get("/shop")
    def shop() -> str:
        return "shop"

    api = api_for(app)
    assert [api.get("/custom-bot").status_code for _ in range(3)] == [200, 200, 200], (
        "the host's default of 2 per minute does not apply to our API"
    )
    assert_error(api.get("/custom-bot"), 429)
    client = app.test_client()
    assert [client.get("/shop").status_code for _ in range(3)] == [200, 200, 429], (
        "the host's own limit still holds for its routes, and our requests did not count against it"
    )


# -- every operation, the same rules ---------------------------------------------------------------


def documented_operations(app: Flask) -> list[tuple[str, str]]:
    """Every (method, path) of the description that needs a token, with a sample id in each parameter."""
    paths = app.test_client().get(f"{PREFIX}/openapi.json").json["paths"]
    return [
        (method.upper(), re.sub(r"\{\w+\}", "123456789012345678", path))
        for path, methods in paths.items()
        for method, operation in methods.items()
        if operation.get("security") != []
    ]


def test_every_operation_answers_401_403_and_429_in_the_documented_shape(fresh_app: Any) -> None:
    app, _, _ = fresh_app(DISCORD_ROLES_API_RATE_LIMIT="1/minute")
    operations = documented_operations(app)
    assert len(operations) >= 25
    client = app.test_client()
    for n, (method, path) in enumerate(operations):
        # Requests without a token are counted per address: each comes from its own here.
        unauthenticated = client.open(
            PREFIX + path,
            method=method,
            headers={"X-Tenant-Id": "store-1"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"},
        )
        assert_error(unauthenticated, 401)
        assert unauthenticated.json["error"] == "Unauthorized", f"{method} {path}"

        if method != "GET":
            scoped = api_for(app, scopes=("read",))
            assert_error(scoped.call(method, path, json={}), 403)

        limited = api_for(app)
        limited.call(method, path, json={} if method != "GET" else None)  # the one allowed request
        refused = limited.call(method, path, json={} if method != "GET" else None)
        body = assert_error(refused, 429)
        assert body["retry_after"] >= 1, f"{method} {path}: {body}"
        assert refused.headers["Retry-After"] == str(body["retry_after"]), f"{method} {path}"


def test_guessing_tokens_is_rate_limited_per_address(fresh_app: Any) -> None:
    app, _, _ = fresh_app(DISCORD_ROLES_API_RATE_LIMIT="2/minute")
    client = app.test_client()
    guesses = [
        client.get(
            f"{PREFIX}/custom-bot", headers={"Authorization": f"Bearer drt_guess{n}", "X-Tenant-Id": "s"}
        )
        for n in range(3)
    ]
    assert [guess.status_code for guess in guesses] == [401, 401, 429]
    assert_error(guesses[2], 429)
    assert api_for(app).get("/custom-bot").status_code == 200, "a real token has its own count"
