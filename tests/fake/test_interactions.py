"""The fake signs interactions like Discord and records what the app sends back through webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from werkzeug.serving import make_server

from flask_discord_roles.testing import FakeBot, sign_interaction
from tests.fake.helpers import Store


def test_sign_interaction_verifies_over_timestamp_and_body() -> None:
    key = SigningKey.generate()
    body = b'{"type":1}'
    headers = sign_interaction(key, "1700000000", body)
    assert len(headers["X-Signature-Ed25519"]) == 128
    verify = VerifyKey(key.verify_key.encode())
    verify.verify(b"1700000000" + body, bytes.fromhex(headers["X-Signature-Ed25519"]))
    with pytest.raises(BadSignatureError):
        verify.verify(b"1700000001" + body, bytes.fromhex(headers["X-Signature-Ed25519"]))


def interactions_app(bot: FakeBot, seen: list[dict[str, Any]]) -> Flask:
    """A minimal app that does what ours must: verify the raw body, PONG, defer commands."""
    app = Flask("interactions")
    verify = VerifyKey(bytes.fromhex(bot.public_key))

    @app.post("/interactions")
    def interactions() -> Response:
        raw = request.get_data()
        try:
            signature = bytes.fromhex(request.headers["X-Signature-Ed25519"])
            timestamp = request.headers["X-Signature-Timestamp"]
            verify.verify(timestamp.encode() + raw, signature)
        except (KeyError, ValueError, BadSignatureError):
            return Response("invalid request signature", status=401)
        payload = json.loads(raw)
        seen.append(payload)
        answer = {"type": 1} if payload["type"] == 1 else {"type": 5, "data": {"flags": 64}}
        return Response(json.dumps(answer), mimetype="application/json")

    return app


def test_endpoint_check_and_deferred_command_with_test_client(store: Store) -> None:
    seen: list[dict[str, Any]] = []
    client = interactions_app(store.bot, seen).test_client()
    assert store.fake.check_interactions_endpoint("/interactions", store.bot, client) == []
    store.fake.add_member(store.guild.id, store.buyer.id, roles=[store.role.id])
    payload = store.fake.command_payload(store.bot, store.guild.id, store.buyer, "claim", {"order": "A1"})
    result = store.fake.send_interaction("/interactions", store.bot, payload, client=client)
    assert result.status_code == 200
    assert result.json()["type"] == 5
    delivered = seen[-1]
    assert delivered == payload
    assert delivered["type"] == 2
    assert delivered["member"]["roles"] == [store.role.id]
    assert delivered["member"]["user"]["id"] == store.buyer.id
    assert delivered["data"]["options"] == [{"name": "order", "type": 3, "value": "A1"}]
    assert int(delivered["app_permissions"]) & 268435456
    assert delivered["context"] == 0
    assert [e["kind"] for e in store.fake.interaction_responses[payload["token"]]] == ["initial"]


def test_webhook_edits_and_followups_are_recorded(store: Store) -> None:
    payload = store.fake.component_payload(store.bot, store.guild.id, store.buyer, "claim:1")
    assert payload["data"] == {"custom_id": "claim:1", "component_type": 2}
    app_id, token = store.bot.application_id, payload["token"]
    http = store.api
    http.headers.pop("Authorization")
    store.fake.set_global_limit(1, 10.0)  # webhooks are exempt from the global limit
    too_early = http.patch(
        store.url(f"/webhooks/{app_id}/{token}/messages/@original"), json={"content": "Delivered!"}
    )
    assert (too_early.status_code, too_early.json()) == (
        404,
        {"message": "Unknown Webhook", "code": 10015},
    ), "Discord has no webhook for an interaction it has no answer to yet"
    deferral = {"type": 5, "data": {"flags": 64}}
    callback = http.post(store.url(f"/interactions/{payload['id']}/{token}/callback"), json=deferral)
    assert callback.status_code == 204
    edit = http.patch(
        store.url(f"/webhooks/{app_id}/{token}/messages/@original"),
        json={"content": "Delivered!", "allowed_mentions": {"parse": []}},
    )
    assert edit.status_code == 200
    assert edit.json()["content"] == "Delivered!"
    followup = http.post(store.url(f"/webhooks/{app_id}/{token}"), json={"content": "More", "flags": 64})
    assert followup.status_code == 200
    assert (
        http.get(store.url(f"/webhooks/{app_id}/{token}/messages/@original")).json()["content"]
        == "Delivered!"
    )
    entries = store.fake.interaction_responses[token]
    assert [(e["kind"], e["method"], e["status"], e["acknowledged_before"]) for e in entries] == [
        ("edit_original", "PATCH", 404, False),
        ("callback", "POST", 204, False),
        ("edit_original", "PATCH", 200, True),
        ("followup", "POST", 200, True),
    ]
    assert entries[2]["data"]["content"] == "Delivered!"
    (early,) = store.fake.responses_before_acknowledgement()
    assert (early["token"], early["kind"], early["status"]) == (token, "edit_original", 404)
    assert "X-RateLimit-Bucket" in edit.headers
    unknown = http.patch(store.url(f"/webhooks/{app_id}/nope/messages/@original"), json={"content": "x"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, 10015)
    store.fake.world.interaction_ttl = 0
    expired = http.post(store.url(f"/webhooks/{app_id}/{token}"), json={"content": "late"})
    assert (expired.status_code, expired.json()["code"]) == (401, 50027)


def test_callback_acknowledges_once(store: Store) -> None:
    payload = store.fake.command_payload(store.bot, store.guild.id, store.buyer, "claim")
    url = store.url(f"/interactions/{payload['id']}/{payload['token']}/callback")
    body = {"type": 4, "data": {"content": "hi", "flags": 64}}
    assert store.api.post(url, json=body).status_code == 204
    again = store.api.post(url, json=body)
    assert (again.status_code, again.json()["code"]) == (400, 40060)
    wrong = store.api.post(store.url(f"/interactions/1/{payload['token']}/callback"), json=body)
    assert (wrong.status_code, wrong.json()["code"]) == (404, 10062)


@pytest.fixture
def served_app(store: Store) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    server = make_server("127.0.0.1", 0, interactions_app(store.bot, seen), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/interactions", seen
    server.shutdown()
    server.server_close()
    thread.join()


def test_send_interaction_over_real_http(store: Store, served_app: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = served_app
    assert store.fake.ping(url, store.bot).json() == {"type": 1}
    assert store.fake.probe_invalid_signature(url, store.bot).status_code == 401
    payload = store.fake.command_payload(store.bot, None, store.buyer, "claim")
    result = store.fake.send_interaction(url, store.bot, payload)
    assert result.headers["content-type"] == "application/json"
    assert seen[-1]["user"]["id"] == store.buyer.id
    assert seen[-1]["context"] == 1


def deferring_app(bot: FakeBot, fake_api: str, *, edit_on_close: bool) -> Flask:
    """An app that defers /claim and edits the answer: inside the request (too early) or once the
    response has been sent (Werkzeug's ``call_on_close``)."""
    app = Flask("deferring")

    @app.post("/interactions")
    def interactions() -> Response:
        payload = request.get_json()
        if payload["type"] == 1:
            return Response(json.dumps({"type": 1}), mimetype="application/json")
        edit_url = f"{fake_api}/webhooks/{bot.application_id}/{payload['token']}/messages/@original"

        def edit() -> None:
            requests.patch(edit_url, json={"content": "Done"}, timeout=10)

        response = Response(json.dumps({"type": 5, "data": {"flags": 64}}), mimetype="application/json")
        if edit_on_close:
            response.call_on_close(edit)
        else:
            edit()
        return response

    return app


@pytest.mark.parametrize("over_http", [True, False], ids=["over HTTP", "test client"])
@pytest.mark.parametrize("edit_on_close", [True, False], ids=["edits once answered", "edits first"])
def test_an_edit_counts_only_once_the_app_has_answered(
    store: Store, over_http: bool, edit_on_close: bool
) -> None:
    app = deferring_app(store.bot, store.fake.api_base_url, edit_on_close=edit_on_close)
    payload = store.fake.command_payload(store.bot, store.guild.id, store.buyer, "claim")
    if over_http:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/interactions"
            store.fake.send_interaction(url, store.bot, payload)
            deadline = time.monotonic() + 5  # over HTTP the close callback runs after the answer is read
            while len(store.fake.interaction_responses[payload["token"]]) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
    else:
        store.fake.send_interaction("/interactions", store.bot, payload, client=app.test_client())

    order = [(e["kind"], e["status"]) for e in store.fake.interaction_responses[payload["token"]]]
    if edit_on_close:
        assert order == [("initial", 200), ("edit_original", 200)], f"Discord saw {order}"
        assert store.fake.responses_before_acknowledgement() == []
    else:
        assert order == [("edit_original", 404), ("initial", 200)], f"Discord saw {order}"
        (early,) = store.fake.responses_before_acknowledgement()
        assert early["token"] == payload["token"]
