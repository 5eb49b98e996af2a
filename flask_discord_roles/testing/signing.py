"""Signing and delivering interactions exactly as Discord does, to a Flask test client or over HTTP.

Discord signs ``timestamp.encode() + raw_body`` with the application's Ed25519 key and sends the
signature as hex. The body bytes sent are the bytes signed: nothing re-serialises them in between.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

__all__ = ["USER_AGENT", "InteractionResult", "deliver", "sign_interaction"]

USER_AGENT = "Discord-Interactions/1.0 (+https://discord.com)"


def sign_interaction(signing_key: Any, timestamp: str, body: bytes) -> dict[str, str]:
    """The two signature headers for ``body``; ``signing_key`` is a ``nacl.signing.SigningKey``."""
    signature: bytes = signing_key.sign(timestamp.encode() + body).signature
    return {"X-Signature-Ed25519": signature.hex(), "X-Signature-Timestamp": timestamp}


@dataclass
class InteractionResult:
    """The app's answer, shaped like a small ``requests.Response`` whichever way it was sent."""

    status_code: int
    headers: CaseInsensitiveDict[str]
    data: bytes

    @property
    def content(self) -> bytes:
        return self.data

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.data)


def deliver(
    url: str,
    body: bytes,
    headers: dict[str, str],
    client: Any = None,
    timeout: float = 10.0,
    *,
    received: Callable[[InteractionResult], None] | None = None,
) -> InteractionResult:
    """POST ``body`` as-is; ``client`` is a Flask test client, or None for real HTTP.

    ``received`` is called with the answer as soon as it has been read, before the response is closed:
    a WSGI server closes it only after sending it, so what an app runs on close (Werkzeug's
    ``call_on_close``) happens after Discord has its answer, through a test client as in production.
    """
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    if client is not None:
        response = client.post(url, data=body, headers=headers)
        try:
            result = InteractionResult(
                response.status_code, CaseInsensitiveDict(dict(response.headers)), response.get_data()
            )
            if received is not None:
                received(result)
        finally:
            response.close()
        return result
    with requests.Session() as session:
        answer = session.post(url, data=body, headers=headers, timeout=timeout)
        result = InteractionResult(
            answer.status_code, CaseInsensitiveDict(dict(answer.headers)), answer.content
        )
        if received is not None:
            received(result)
        return result
