"""What every tenant-API view needs: the caller's store, the request body, the query, the commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import g, request

from flask_discord_roles._runtime.api_grant import ApiGrant
from flask_discord_roles._runtime.state import DiscordRolesState, get_state
from flask_discord_roles._runtime.timestamps import EXAMPLE, format_timestamp
from flask_discord_roles._web.api.errors import invalid
from flask_discord_roles._web.guards import parse_json, read_body

MAX_BODY_BYTES = 64 * 1024
"""The largest request body the API reads: its bodies are a few fields (413 beyond, read no further)."""


def store_id() -> str:
    """The store the authenticated caller acts for."""
    grant: ApiGrant = g.discord_roles_grant
    return grant.store_id


def state() -> DiscordRolesState:
    return get_state()


def has_control_characters(text: str) -> bool:
    """NUL and the other C0 controls: never in an id or a name, and PostgreSQL refuses NUL outright."""
    return any(ord(character) < 32 and character not in "\t\n\r" for character in text)


def json_body() -> dict[str, Any]:
    """The JSON object sent, ``{}`` for no body; 422 for anything else (control characters included).

    Bounded before parsing (see :mod:`..guards`): 413 past :data:`MAX_BODY_BYTES`, 400 when nested
    too deep for a parser to follow.
    """
    raw = read_body(MAX_BODY_BYTES)
    if not raw:
        return {}
    try:
        body = parse_json(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise invalid({"body": ['Send a JSON object, e.g. {"enabled": true}.']})
    errors = {
        str(key): ["Text may not contain control characters such as NUL."]
        for key, value in body.items()
        if _holds_control_characters(key) or _holds_control_characters(value)
    }
    if errors:
        raise invalid(errors)
    return body


def _holds_control_characters(value: object) -> bool:
    if isinstance(value, str):
        return has_control_characters(value)
    if isinstance(value, list):
        return any(_holds_control_characters(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_control_characters(k) or _holds_control_characters(v) for k, v in value.items())
    return False


def query_text(name: str, *, max_length: int = 64) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_length:
        raise invalid({name: [f"At most {max_length} characters."]})
    if has_control_characters(value):
        raise invalid({name: ["No control characters such as NUL."]})
    return value


def query_int(
    name: str, *, minimum: int, maximum: int | None = None, default: int | None = None
) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise invalid({name: [f"Must be a whole number {bound}."]})
    return value


def query_time(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid({name: [f"Must be an ISO 8601 time such as {EXAMPLE}."]}) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """A time in an answer: the one format every time has (:mod:`flask_discord_roles._runtime.timestamps`)."""
    return None if value is None else format_timestamp(value)


def commit() -> None:
    get_state().db.session.commit()
