"""How each tenant-API view describes itself for the OpenAPI document, next to the view it describes.

A view carries an :class:`Operation` (set by :func:`documented`); :mod:`.openapi` walks the blueprint's
routes and assembles the document from them, so a route cannot exist undocumented (a test checks) and
a description cannot drift from the path it sits on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask_discord_roles._runtime.timestamps import EXAMPLE as TIMESTAMP_EXAMPLE
from flask_discord_roles._runtime.timestamps import PATTERN as TIMESTAMP_PATTERN

Schema = dict[str, Any]
View = TypeVar("View", bound=Callable[..., Any])

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
COUNT: Schema = {"type": "integer", "minimum": 0}
"""How many of something: a whole number, never negative."""
NUMBER: Schema = {"type": "number"}
SNOWFLAKE: Schema = {
    "type": "string",
    # What discord.snowflake.is_snowflake accepts, up to 1.8e19 (Discord's ids stay below it until the 2150s).
    "pattern": "^(?:[0-9]{17,19}|1[0-7][0-9]{18})$",
    "description": "A Discord id (17 to 20 digits).",
}
HOST_ID: Schema = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^\\u0000]+$"}
"""One of the host's ids (store, customer, order, package): text without NUL, which PostgreSQL refuses."""
DATETIME: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": TIMESTAMP_PATTERN,
    "examples": [TIMESTAMP_EXAMPLE],
    "description": "UTC to the second, as the custom-bot document writes it (`%Y-%m-%dT%H:%M:%SZ`).",
}
"""A time in an answer: always this one format (:mod:`flask_discord_roles._runtime.timestamps`)."""
TIME_FILTER: Schema = {
    "type": "string",
    "examples": [TIMESTAMP_EXAMPLE],
    "description": "An ISO 8601 time; without a zone, UTC.",
}
"""A time a caller sends: any ISO 8601 form is accepted."""
MESSAGE: Schema = {"type": "string", "description": "What happened, in words to show the store owner."}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, **extra: Any) -> Schema:
    """An object with exactly these keys; ``required`` ones are always present."""
    properties = {**required, **(optional or {})}
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    responses: dict[int, Schema]
    description: str | None = None
    body: Schema | None = None
    body_required: bool = True
    parameters: list[dict[str, Any]] = field(default_factory=list)
    # Error statuses beyond the ones every operation has (401, 403, 429).
    errors: tuple[int, ...] = ()
    public: bool = False


def documented(
    *,
    summary: str,
    tag: str,
    responses: dict[int, Schema],
    description: str | None = None,
    body: Schema | None = None,
    body_required: bool = True,
    parameters: Iterable[dict[str, Any]] = (),
    errors: Iterable[int] = (),
    public: bool = False,
) -> Callable[[View], View]:
    """Attach the OpenAPI description of the view below it."""
    operation = Operation(
        summary=summary,
        tag=tag,
        responses=responses,
        description=description,
        body=body,
        body_required=body_required,
        parameters=list(parameters),
        errors=tuple(errors),
        public=public,
    )

    def attach(view: View) -> View:
        view.openapi = operation  # type: ignore[attr-defined]
        return view

    return attach
