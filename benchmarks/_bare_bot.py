"""The bare bot ``webhook_throughput.py`` measures ours against: the least a Discord bot endpoint can do.

A module of its own that imports Flask and PyNaCl and nothing of ours, so the process serving it is as
small as a bare bot's would be (gunicorn loads it with ``benchmarks._bare_bot:create_app()``):

``BENCH_BARE_PUBLIC_KEY``
    The application's Ed25519 public key, as hex.

With ``--floor``, ``webhook_throughput.py`` also serves :func:`floor_app`: the bare bot plus the one
statement ours sends for a /check (record the interaction id, count it, read the member's deliveries),
sent with psycopg on a connection the process keeps, its rows fetched and the same fixed message
answered. No bot that records and reads on PostgreSQL in the request can do less; it is read from:

``BENCH_FLOOR_DSN``
    The psycopg connection string.
``BENCH_FLOOR_SQL`` / ``BENCH_FLOOR_VALUES``
    The statement, in psycopg's paramstyle, and its values but the interaction's own (JSON).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, request
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

BARE_PATH = "/interactions"
PUBLIC_KEY_VARIABLE = "BENCH_BARE_PUBLIC_KEY"
FLOOR_DSN_VARIABLE = "BENCH_FLOOR_DSN"
FLOOR_SQL_VARIABLE = "BENCH_FLOOR_SQL"
FLOOR_VALUES_VARIABLE = "BENCH_FLOOR_VALUES"
STATIC_ANSWER = {
    "type": 4,
    "data": {
        "flags": 64,
        "allowed_mentions": {"parse": []},
        "embeds": [{"title": "Your deliveries", "description": "Nothing to see here."}],
    },
}


def bare_app(public_key: str, command: Any = None) -> Flask:
    """The least a bot endpoint can do: verify, then answer PING or a fixed message; ``command``, if
    given, is called with each command's payload first."""
    app = Flask("bare_bot")
    verify_key = VerifyKey(bytes.fromhex(public_key))

    @app.post(BARE_PATH)
    def interactions() -> Any:
        body = request.get_data()
        signature = request.headers.get("X-Signature-Ed25519", "")
        timestamp = request.headers.get("X-Signature-Timestamp", "")
        try:
            verify_key.verify(timestamp.encode() + body, bytes.fromhex(signature))
        except (BadSignatureError, ValueError):
            return jsonify({"error": "invalid request signature"}), 401
        payload = json.loads(body)
        if payload.get("type") == 1:
            return jsonify({"type": 1})
        if command is not None:
            command(payload)
        return jsonify(STATIC_ANSWER)

    return app


def floor_app(public_key: str, dsn: str, sql: str, values: dict[str, Any]) -> Flask:
    """The bare bot that also sends ours' /check statement and fetches its rows (see the module)."""
    import psycopg  # only this app needs the driver

    connection = psycopg.connect(dsn, autocommit=True)  # opened in the worker, after gunicorn's fork

    def record_and_read(payload: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        bound = {**values, "interaction_id": payload["id"], "received_at": now, "now": now}
        connection.execute(sql, bound).fetchall()

    return bare_app(public_key, record_and_read)


def create_app() -> Flask:
    """gunicorn's factory: the public key comes from the environment."""
    return bare_app(os.environ[PUBLIC_KEY_VARIABLE])


def create_floor_app() -> Flask:
    """gunicorn's factory for :func:`floor_app`: everything comes from the environment."""
    return floor_app(
        os.environ[PUBLIC_KEY_VARIABLE],
        os.environ[FLOOR_DSN_VARIABLE],
        os.environ[FLOOR_SQL_VARIABLE],
        json.loads(os.environ[FLOOR_VALUES_VARIABLE]),
    )
