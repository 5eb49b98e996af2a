"""The bare bot ``webhook_throughput.py`` measures ours against: the least a Discord bot endpoint can do.

A module of its own that imports Flask and PyNaCl and nothing of ours, so the process serving it is as
small as a bare bot's would be (gunicorn loads it with ``benchmarks._bare_bot:create_app()``):

``BENCH_BARE_PUBLIC_KEY``
    The application's Ed25519 public key, as hex.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask, jsonify, request
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

BARE_PATH = "/interactions"
PUBLIC_KEY_VARIABLE = "BENCH_BARE_PUBLIC_KEY"


def bare_app(public_key: str) -> Flask:
    """The least a bot endpoint can do: verify, then answer PING or a fixed message."""
    app = Flask("bare_bot")
    verify_key = VerifyKey(bytes.fromhex(public_key))
    static = {
        "type": 4,
        "data": {
            "flags": 64,
            "allowed_mentions": {"parse": []},
            "embeds": [{"title": "Your deliveries", "description": "Nothing to see here."}],
        },
    }

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
        return jsonify({"type": 1} if payload.get("type") == 1 else static)

    return app


def create_app() -> Flask:
    """gunicorn's factory: the public key comes from the environment."""
    return bare_app(os.environ[PUBLIC_KEY_VARIABLE])
