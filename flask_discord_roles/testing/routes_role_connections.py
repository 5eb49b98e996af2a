"""Linked Roles routes: an application's role-connection metadata records (bot token) and the current
user's role connection to an application (the user's OAuth2 token with ``role_connections.write``).

Both PUTs replace what was there, as Discord's do, and refuse a bad body whole with 50035 and every
problem at its JSON path. A user's metadata may only use keys the application declared, each value a
string of at most 100 characters that reads as its record's type (an integer, or an ISO 8601 date).
DELETE (in Discord's spec, not its docs) removes the user's connection.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import flask_discord_roles.testing.protocol as p
from flask_discord_roles.testing.role_connections_state import MetadataRecord, RoleConnection
from flask_discord_roles.testing.validation import Errors

__all__ = [
    "DATETIME_TYPES",
    "LOCALES",
    "MAX_RECORDS",
    "METADATA",
    "METADATA_KEY",
    "METADATA_TYPES",
    "SCOPE",
    "USER_CONNECTION",
    "validate_connection",
    "validate_records",
]

METADATA = "/applications/{application_id}/role-connections/metadata"
USER_CONNECTION = "/users/@me/applications/{application_id}/role-connection"
SCOPE = "role_connections.write"
MAX_RECORDS = 5
METADATA_KEY = re.compile(r"^[a-z0-9_]+$")
METADATA_TYPES = range(1, 9)  # INTEGER_LESS_THAN_OR_EQUAL (1) ... BOOLEAN_NOT_EQUAL (8)
DATETIME_TYPES = frozenset({5, 6})  # their values are ISO 8601 timestamps; the others' are integers
# Discord's available locales (its reference page), the keys a *_localizations dictionary may use.
# fmt: off
LOCALES = frozenset({
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl",
    "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja",
    "zh-TW", "ko",
})
# fmt: on
_INT64 = range(-(2**63), 2**63)

Path = tuple[str | int, ...]


# -- the application's metadata records -----------------------------------------------------------


def _own_application(ctx: p.Context) -> str:
    bot = ctx.require_bot()
    if ctx.params["application_id"] != bot.application_id:
        raise p.missing_access()
    return bot.application_id


def _required(errors: Errors, path: Path, record: dict[str, Any], name: str) -> bool:
    if record.get(name) is None:
        errors.add((*path, name), "BASE_TYPE_REQUIRED", "This field is required")
        return False
    return True


def _check_localizations(errors: Errors, path: Path, value: Any, limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    for locale, text in value.items():
        if locale not in LOCALES:
            errors.add((*path, locale), "BASE_TYPE_CHOICES", f"Value must be one of {sorted(LOCALES)}.")
        elif text is not None:
            errors.length_between((*path, locale), text, 1, limit)


def _metadata_type(value: Any) -> int | None:
    """The type as a number, or None if it is none of the 8; like Discord, an integer string is read."""
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}", value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in METADATA_TYPES:
        return value
    return None


def _check_record(errors: Errors, index: int, record: Any, seen: set[str]) -> None:
    path: Path = (index,)
    if not isinstance(record, dict):
        errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    if _required(errors, path, record, "type") and _metadata_type(record["type"]) is None:
        errors.add((*path, "type"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3, 4, 5, 6, 7, 8).")
    if _required(errors, path, record, "key"):
        key = record["key"]
        errors.length_between((*path, "key"), key, 1, 50)
        if isinstance(key, str) and 1 <= len(key) <= 50:
            if not METADATA_KEY.match(key):
                errors.add(
                    (*path, "key"), "STRING_TYPE_REGEX", "String value did not match validation regex."
                )
            elif key in seen:
                errors.add((*path, "key"), "ROLE_CONNECTION_METADATA_DUPLICATE_KEY", f"Duplicate key: {key}")
            seen.add(key)
    if _required(errors, path, record, "name"):
        errors.length_between((*path, "name"), record["name"], 1, 100)
    if _required(errors, path, record, "description"):
        errors.length_between((*path, "description"), record["description"], 1, 200)
    _check_localizations(errors, (*path, "name_localizations"), record.get("name_localizations"), 100)
    _check_localizations(
        errors, (*path, "description_localizations"), record.get("description_localizations"), 200
    )


def _translations(value: Any) -> dict[str, str] | None:
    # A null translation means "none for this locale": Discord keeps only the ones given.
    return None if value is None else {k: v for k, v in value.items() if v is not None}


def validate_records(body: Any) -> list[MetadataRecord]:
    """Check an update's body (a list of at most 5 records, or null for none) and build the records."""
    if body is None:
        return []
    if not isinstance(body, list):
        raise p.invalid_form(p.field_error("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"))
    errors = Errors()
    if len(body) > MAX_RECORDS:
        errors.add((), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_RECORDS} or fewer in length.")
    seen: set[str] = set()
    for index, record in enumerate(body):
        _check_record(errors, index, record, seen)
    errors.raise_if_any()
    return [
        MetadataRecord(
            type=_metadata_type(record["type"]) or 0,  # never 0: checked above
            key=record["key"],
            name=record["name"],
            description=record["description"],
            name_localizations=_translations(record.get("name_localizations")),
            description_localizations=_translations(record.get("description_localizations")),
        )
        for record in body
    ]


def _get_metadata(ctx: p.Context) -> p.Reply:
    records = ctx.world.role_connections.records(_own_application(ctx))
    return p.json_reply([record.to_json() for record in records])


def _put_metadata(ctx: p.Context) -> p.Reply:
    application_id = _own_application(ctx)
    records = validate_records(ctx.json_body())
    ctx.world.role_connections.metadata[application_id] = records
    return p.json_reply([record.to_json() for record in records])


# -- the current user's role connection -----------------------------------------------------------


def _connection_key(ctx: p.Context) -> tuple[str, str]:
    grant = ctx.grant
    # Discord answers a token without the scope as it answers no token at all.
    if grant is None or SCOPE not in grant.scopes:
        raise p.unauthorized()
    if ctx.params["application_id"] != grant.client_id:
        raise p.missing_access()  # a token speaks for the application it was granted to, only
    return grant.user_id, grant.client_id


def _check_value(errors: Errors, key: str, value: Any, kind: int) -> None:
    path: Path = ("metadata", key)
    if not isinstance(value, str):
        errors.add(path, "STRING_TYPE_CONVERT", "Could not interpret value as string.")
        return
    if not 1 <= len(value) <= 100:
        errors.length_between(path, value, 1, 100)
        return
    if kind in DATETIME_TYPES:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            errors.add(path, "DATE_TIME_TYPE_PARSE", f"Could not parse {value}. Should be ISO8601.")
    elif not re.fullmatch(r"-?\d+", value) or int(value) not in _INT64:
        errors.add(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')


def validate_connection(body: dict[str, Any], declared: dict[str, int]) -> RoleConnection:
    """Check an update's body against the application's declared keys and build the connection."""
    errors = Errors()
    errors.max_length(("platform_name",), body.get("platform_name"), 50)
    errors.max_length(("platform_username",), body.get("platform_username"), 100)
    metadata = body.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        errors.add(("metadata",), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        metadata = {}
    elif len(metadata) > MAX_RECORDS:
        errors.add(("metadata",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_RECORDS} or fewer in length.")
    for key, value in metadata.items():
        if key not in declared:
            choices = ", ".join(sorted(declared)) or "none: the application declared no metadata"
            errors.add(("metadata", key), "BASE_TYPE_CHOICES", f"Key must be one of: {choices}.")
        else:
            _check_value(errors, key, value, declared[key])
    errors.raise_if_any()
    return RoleConnection(body.get("platform_name"), body.get("platform_username"), dict(metadata))


def _get_connection(ctx: p.Context) -> p.Reply:
    connection = ctx.world.role_connections.connections.get(_connection_key(ctx), RoleConnection())
    return p.json_reply(connection.to_json())


def _put_connection(ctx: p.Context) -> p.Reply:
    key = _connection_key(ctx)
    store = ctx.world.role_connections
    connection = validate_connection(ctx.json_object(), store.declared_types(key[1]))
    store.connections[key] = connection
    return p.json_reply(connection.to_json())


def _delete_connection(ctx: p.Context) -> p.Reply:
    # In the spec, not in the docs: the user's connection goes, as if the application never wrote one.
    ctx.world.role_connections.connections.pop(_connection_key(ctx), None)
    return p.no_content()


p.route("GET", METADATA, family="role_connection_metadata")(_get_metadata)
p.route("PUT", METADATA, family="role_connection_metadata")(_put_metadata)
p.route("GET", USER_CONNECTION, family="role_connection", auth="bearer")(_get_connection)
p.route("PUT", USER_CONNECTION, family="role_connection", auth="bearer")(_put_connection)
p.route("DELETE", USER_CONNECTION, family="role_connection", auth="bearer")(_delete_connection)
