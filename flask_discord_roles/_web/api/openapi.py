"""``GET <prefix>/openapi.json``: the OpenAPI 3.1 description of the tenant API, built from the routes.

Each route's view carries its :class:`~.spec.Operation`; the errors every operation shares (401, 403,
429, and 404/422/503 where an operation declares them) are added here in the one error shape.
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app

from flask_discord_roles._runtime.version import __version__
from flask_discord_roles._web.api.blueprint import MAX_ID, tenant_api
from flask_discord_roles._web.api.spec import (
    HOST_ID,
    INTEGER,
    MESSAGE,
    SNOWFLAKE,
    STRING,
    Operation,
    Schema,
    documented,
    obj,
    ref,
)
from flask_discord_roles._web.error_body import MESSAGES, OPERATION_NOT_FOUND, TITLES

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
_PATH_TYPES = {"int": {"type": "integer", "minimum": 1, "maximum": MAX_ID}, None: STRING, "string": STRING}
# Path parameters named like these hold these kinds of ids, whatever the operation.
_NAMED = {"guild_id": SNOWFLAKE, "role_id": SNOWFLAKE, "customer_id": HOST_ID}

ERROR = obj(
    {
        "success": {"const": False},
        "error": {"enum": sorted(set(TITLES.values())), "description": "The status, in words."},
        "message": {
            "enum": sorted({*MESSAGES.values(), OPERATION_NOT_FOUND}),
            "description": "One fixed text per case: the custom-bot document's own for 401, 403, 404 "
            "(an unknown operation), 422 and 429.",
        },
    },
    {
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": STRING},
            "description": "What is wrong with each field, in words.",
        },
        "retry_after": {"type": "integer", "minimum": 1, "description": "Seconds to wait."},
        "detail": {**MESSAGE, "description": "Ours: the specific reason and what to do, in words."},
        "required_scope": {
            "enum": ["read", "write"],
            "description": "Ours, on a 403 for a missing scope: the scope the operation needs.",
        },
        "resource": {
            "enum": ["backfill", "custom_bot", "delivery", "guild", "mapping", "reconcile_run"],
            "description": "Ours, on a 404 for an id this store does not have: what was not found.",
        },
    },
)
ERROR_DESCRIPTIONS = {
    401: "Invalid or missing API token (or X-Tenant-Id; `detail` says which)",
    403: "Token does not have required scope (`required_scope`), or belongs to another store",
    404: "Resource not found: no such id in this store (`resource` says what); Operation not found for "
    "an unknown path",
    409: "Conflicts with the current state; `detail` says how to resolve it",
    422: "The given data was invalid; `errors` names each field",
    429: "Rate limit exceeded; `retry_after` (and the Retry-After header) say when to come back",
    503: "Discord unavailable; nothing was changed; `retry_after` says when to try again",
}
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"schema": INTEGER, "description": "Requests allowed per window."},
    "X-RateLimit-Remaining": {"schema": INTEGER, "description": "Requests left in the current window."},
    "X-RateLimit-Reset": {
        "schema": INTEGER,
        "description": "When a request is next freed, in Unix seconds (UTC).",
    },
}
"""On every answer, errors included (left out only when the count cannot be read)."""


def build_document(api_prefix: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in current_app.url_map.iter_rules():
        if not rule.endpoint.startswith(f"{tenant_api.name}.") or rule.endpoint.endswith("._unknown"):
            continue
        operation: Operation | None = getattr(current_app.view_functions[rule.endpoint], "openapi", None)
        if operation is None:
            raise RuntimeError(f"{rule.endpoint} has no OpenAPI description (@documented)")
        path = _CONVERTER.sub(r"{\2}", rule.rule[len(api_prefix) :] or "/")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, operation, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flask-discord-roles tenant API",
            "version": __version__,
            "description": "Manage a store's Discord bot, servers, role mappings, settings and deliveries. "
            "Send `Authorization: Bearer <token>` and `X-Tenant-Id: <store id>` with every request. "
            "Every answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` "
            "(Unix seconds); times are UTC to the second, e.g. `2025-01-20T14:30:00Z`.",
        },
        "servers": [{"url": api_prefix}],
        "security": [{"bearer": [], "tenant": []}],
        "tags": [
            {"name": name}
            for name in sorted({op["tags"][0] for item in paths.values() for op in item.values()})
        ],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token of the store."},
                "tenant": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Tenant-Id",
                    "description": "The store id.",
                },
            },
            "schemas": {"Error": ERROR},
        },
    }


def _operation(rule: Any, operation: Operation, method: str) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _NAMED.get(name) or _PATH_TYPES.get(kind, STRING),
        }
        for kind, name in _CONVERTER.findall(rule.rule)
    ]
    parameters.extend(operation.parameters)
    responses: dict[str, Any] = {
        str(status): {
            "description": "OK" if status < 300 else "Done",
            "headers": RATE_LIMIT_HEADERS,
            "content": _json(schema),
        }
        for status, schema in operation.responses.items()
    }
    errors = set(operation.errors)
    if not operation.public:
        errors |= {401, 403, 429}
    if parameters:
        errors |= {422} if operation.parameters else set()
        errors |= {404} if len(parameters) > len(operation.parameters) else set()
    if operation.body is not None:
        errors.add(422)
    for status in sorted(errors):
        response: dict[str, Any] = {
            "description": ERROR_DESCRIPTIONS[status],
            "headers": dict(RATE_LIMIT_HEADERS),
            "content": _json(ref("Error")),
        }
        if status in (429, 503):
            response["headers"]["Retry-After"] = {"schema": INTEGER, "description": "Seconds to wait."}
        responses[str(status)] = response
    document: dict[str, Any] = {
        "operationId": rule.endpoint.split(".", 1)[1],
        "summary": operation.summary,
        "tags": [operation.tag],
        "responses": responses,
    }
    if operation.description:
        document["description"] = operation.description
    if parameters:
        document["parameters"] = parameters
    if operation.body is not None:
        document["requestBody"] = {"required": operation.body_required, "content": _json(operation.body)}
    if operation.public:
        document["security"] = []
    return document


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


@tenant_api.get("/openapi.json")
@documented(
    summary="This description",
    tag="Meta",
    responses={200: {"type": "object", "required": ["openapi", "paths"]}},
    public=True,
)
def openapi_document() -> dict[str, Any]:
    from flask_discord_roles._web.api.context import state

    return build_document(state().settings.api_prefix)
