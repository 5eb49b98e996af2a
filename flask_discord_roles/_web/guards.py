"""What every request to our blueprints passes before a view reads it, in one place for all of them.

- A path with a control character (NUL above all, which PostgreSQL refuses outright) names nothing of
  ours: it is refused before any query, so junk cannot reach the database, the logs or the alerts.
- A body is read up to a limit and no further (413 beyond it), and JSON nested deeper than
  :data:`MAX_JSON_DEPTH` is refused (400) before the parser, which would otherwise recurse until
  ``RecursionError``. The bound is checked on the raw bytes, so it costs a scan, not a parse.

Each refusal is a :class:`werkzeug.exceptions.HTTPException` that is also an :class:`InputRefused`; each
blueprint's own error handler turns it into that blueprint's JSON shape, using its ``description``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Request, request
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects we parse. Interactions and API bodies need fewer than ten."""

_PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A JSON string, escapes included (unrolled so it runs in linear time), and the brackets outside them.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_BODY_KEY = "discord_roles.body"


class InputRefused:
    """Marks the refusals below, whose ``description`` is the message to show."""


class UnsafePath(InputRefused, NotFound):
    description = "Nothing answers at an address with control characters in it."


class BodyTooLarge(InputRefused, RequestEntityTooLarge):
    description = "The request body is too large."


class JsonTooDeep(InputRefused, BadRequest):
    description = f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep."


def guard(blueprint: Blueprint) -> None:
    """Refuse unsafe paths on ``blueprint`` before its views and before-request hooks run."""
    # URL value preprocessors run before every before_request function (the tenant API's token check
    # queries the database), so nothing of ours has touched the database yet.
    blueprint.url_value_preprocessor(_refuse_unsafe_path)


def _refuse_unsafe_path(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if _PATH_CONTROL.search(request.path):
        raise UnsafePath()


def read_body(limit: int) -> bytes:
    """The raw body as sent, at most ``limit`` bytes (:class:`BodyTooLarge` beyond, read no further)."""
    # The proxy resolved once: each ``request.`` is a context lookup, on every interaction Discord sends.
    current: Request = request._get_current_object()  # type: ignore[attr-defined]
    cached = current.environ.get(_BODY_KEY)  # the request's own, not g: an app context may span requests
    if isinstance(cached, bytes):
        return cached
    length = current.content_length  # parsed from the header at each access
    if length is not None:
        if length > limit:
            raise BodyTooLarge()
        body = current.get_data(cache=True)  # bounded by the length; a host hook may have read it too
    else:
        body = current.stream.read(limit + 1)  # chunked: no length to trust, so stop past the limit
    if len(body) > limit:
        raise BodyTooLarge()
    current.environ[_BODY_KEY] = body
    return body


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed; :class:`JsonTooDeep` when nested too deep, ``ValueError`` when it is not JSON."""
    if _nested_deeper_than(raw, MAX_JSON_DEPTH):
        raise JsonTooDeep()
    return json.loads(raw)


def _nested_deeper_than(raw: bytes, limit: int) -> bool:
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the usual case: too few brackets to matter
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub(b"", raw)):
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
