"""The tenant API reference, in Markdown, from the ``openapi.json`` a real app serves.

:func:`served_document` builds a throwaway app the way a host would (in-memory SQLite, a fresh key) and asks
it for its description; :func:`reference` renders every operation of it: method and path, what it does,
who may call it, its parameters, a request and a response example, and its errors in the seed's shape.
Examples come from the schema's own ``examples`` where it gives them, and are made up from the schema
(types, formats, patterns, enums) where it does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from cryptography.fernet import Fernet
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles
from flask_discord_roles._web.api.auth import required_scope
from flask_discord_roles._web.error_body import OPERATION_NOT_FOUND, error_body

METHODS = ("get", "post", "put", "patch", "delete")
SNOWFLAKE_EXAMPLE = "123456789012345678"  # the seed's own example id
TIME_EXAMPLE = "2025-01-20T14:30:00Z"
# Strings whose schema says only "a string": the seed's own example values where it gives one.
NAMED_EXAMPLES = {
    "application_id": SNOWFLAKE_EXAMPLE,
    "bot_id": SNOWFLAKE_EXAMPLE,
    "public_key": "d6a8f0c2e4b6" + "0" * 52,
    "bot_token": "MTIzNDU2Nzg5MDEyMzQ1Njc4.ABcDEf.ghIJklMNopQRstUVwxYZ",
    "client_secret": "your-oauth2-client-secret",
    "bot_name": "My Store Bot",
    "bot_avatar": "https://cdn.discordapp.com/avatars/123456789012345678/abc123.png",
    "interactions_url": "https://shop.example.com/webhook/discord/interactions/your-store",
    "url": "https://discord.com/api/oauth2/authorize?client_id=123456789012345678&permissions=268435456"
    "&scope=bot%20applications.commands",
    "role_name": "VIP",
    "name": "VIP",
    "code": "K7Q2M9XA",
    "command": "/link code:K7Q2M9XA",
    "message": "Done.",
}
# What an example shows for an error status beyond the seed's three keys.
ERROR_EXTRAS: dict[int, dict[str, Any]] = {
    401: {"detail": "Send the store's API token as Authorization: Bearer <token>."},
    403: {"detail": "This operation needs a token with the write scope.", "required_scope": "write"},
    404: {"resource": "guild"},
    409: {"detail": "Link the server again, then retry."},
    422: {"errors": {"application_id": ["Application ID must be a numeric Discord snowflake."]}},
    429: {"retry_after": 60},
    503: {"retry_after": 5},
}


def served_document() -> dict[str, Any]:
    """``openapi.json`` as a freshly built host app serves it, on its default prefix."""
    db = SQLAlchemy()
    app = Flask("tenant_api_reference")
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        DISCORD_ROLES_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DISCORD_ROLES_EXECUTOR="inline",
    )
    db.init_app(app)
    discord_roles = DiscordRoles(app, db=db)
    try:
        prefix = app.config["DISCORD_ROLES_API_PREFIX"]
        response = app.test_client().get(f"{prefix}/openapi.json")
        if response.status_code != 200:
            raise RuntimeError(f"{prefix}/openapi.json answered {response.status}")
        document: dict[str, Any] = response.get_json()
        return document
    finally:
        discord_roles.shutdown(app)
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Each (method, path, operation) of the document, path by path."""
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def title(method: str, path: str) -> str:
    """How the reference names an operation (and how its test finds it): ``GET /guilds/{guild_id}``."""
    return f"{method.upper()} {path}"


class Renderer:
    """Markdown for one OpenAPI document; resolves its ``$ref``s."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.prefix = document.get("servers", [{"url": ""}])[0]["url"]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            target: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            schema = target
        return schema

    # -- examples -------------------------------------------------------------------------------------

    def example(self, schema: dict[str, Any], name: str = "") -> Any:
        """A value ``schema`` accepts, as a reader would expect to see it."""
        schema = self.resolve(schema)
        if schema.get("examples"):
            return schema["examples"][0]
        for key in ("example", "const", "default"):
            if key in schema:
                return schema[key]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [option for option in schema[key] if self.resolve(option).get("type") != "null"]
                return self.example({**options[0], **_annotations(schema)} if options else {}, name)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or "properties" in schema:
            properties = schema.get("properties", {})
            if properties:
                return {key: self.example(value, key) for key, value in properties.items()}
            if schema.get("required"):
                return dict.fromkeys(schema["required"], "…")
            extra = schema.get("additionalProperties")
            return {"key": self.example(extra, name)} if isinstance(extra, dict) else {}
        if kind == "array":
            return [self.example(schema.get("items", {}), name)]
        if kind == "integer":
            return max(schema.get("minimum", 1), 1 if not name.endswith("_count") else 0)
        if kind == "number":
            return 96.0
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string_example(schema, name)

    def _string_example(self, schema: dict[str, Any], name: str) -> str:
        if name in NAMED_EXAMPLES:
            return NAMED_EXAMPLES[name]
        pattern = schema.get("pattern", "")
        if "{17,19}" in pattern:
            return SNOWFLAKE_EXAMPLE
        if schema.get("format") == "date-time":
            return TIME_EXAMPLE
        if schema.get("format") == "uri":
            return f"https://shop.example.com/{name.replace('_', '-') or 'page'}"
        if "{64}" in pattern:
            return "ab" * 32
        if name.endswith("_id"):
            return "42"
        return name.replace("_", " ") or "text"

    # -- words ----------------------------------------------------------------------------------------

    def type_of(self, schema: dict[str, Any]) -> str:
        """A schema's type in a few words: ``string (Discord id)``, ``integer or null``."""
        schema = self.resolve(schema)
        if "const" in schema:
            return f"`{json.dumps(schema['const'])}`"
        if schema.get("enum"):
            return " or ".join(f"`{value}`" for value in schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return " or ".join(self.type_of(option) for option in schema[key])
        kind = schema.get("type", "any")
        if isinstance(kind, list):
            return " or ".join(kind)
        if kind == "array":
            return f"array of {self.type_of(schema.get('items', {}))}"
        if "{17,19}" in schema.get("pattern", ""):
            return "string (Discord id)"
        if schema.get("format") == "date-time":
            return "string (UTC time)"
        if kind in ("integer", "number") and ("minimum" in schema or "maximum" in schema):
            return f"{kind}, {schema.get('minimum', '…')} to {schema.get('maximum', '…')}"
        return str(kind)

    def description_of(self, schema: dict[str, Any], given: str | None = None) -> str:
        if given:
            return given
        schema = self.resolve(schema)
        if schema.get("description"):
            return str(schema["description"])
        for key in ("anyOf", "oneOf"):
            for option in schema.get(key, ()):
                if self.resolve(option).get("description"):
                    return str(self.resolve(option)["description"])
        return ""

    # -- the page -------------------------------------------------------------------------------------

    def reference(self) -> str:
        by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for method, path, operation in operations(self.document):
            by_tag.setdefault(operation.get("tags", ["Other"])[0], []).append((method, path, operation))
        parts = [self.errors_section()]
        for tag in sorted(by_tag):
            parts.append(f"## {tag}\n")
            parts += [self.operation(method, path, op) for method, path, op in by_tag[tag]]
        return "\n".join(parts)

    def operation(self, method: str, path: str, operation: dict[str, Any]) -> str:
        lines = [f"### {operation['summary']}\n", f"```text\n{method.upper()} {self.prefix}{path}\n```\n"]
        if operation.get("description"):
            lines.append(f"{operation['description']}\n")
        if operation.get("security", self.document.get("security")) == []:
            lines.append("**Auth:** none; anyone may read it.\n")
        else:
            lines.append(
                "**Auth:** `Authorization: Bearer <token>` and `X-Tenant-Id: <store id>`; the token needs "
                f"the `{required_scope(method.upper())}` scope.\n"
            )
        if operation.get("parameters"):
            lines.append(self.parameters(operation["parameters"]))
        body = operation.get("requestBody")
        if body:
            lines.append(self.request_body(body))
        lines += self.responses(operation["responses"])
        return "\n".join(lines)

    def parameters(self, parameters: list[dict[str, Any]]) -> str:
        rows = ["**Parameters:**\n", "| Name | In | Type | Required | Description |", "|---|---|---|---|---|"]
        for parameter in parameters:
            schema = parameter.get("schema", {})
            rows.append(
                f"| `{parameter['name']}` | {parameter['in']} | {_cell(self.type_of(schema))} | "
                f"{'yes' if parameter.get('required') else 'no'} | "
                f"{_cell(self.description_of(schema, parameter.get('description')))} |"
            )
        return "\n".join(rows) + "\n"

    def request_body(self, body: dict[str, Any]) -> str:
        schema = self.resolve(body["content"]["application/json"]["schema"])
        required = set(schema.get("required", ()))
        optional = "" if body.get("required", False) else " (optional)"
        rows = [f"**Request body**{optional}: JSON.", ""]
        if schema.get("description"):
            rows += [str(schema["description"]), ""]
        if schema.get("properties"):
            rows += ["| Field | Type | Required | Description |", "|---|---|---|---|"]
            for name, field in schema["properties"].items():
                rows.append(
                    f"| `{name}` | {_cell(self.type_of(field))} | {'yes' if name in required else 'no'} | "
                    f"{_cell(self.description_of(field))} |"
                )
            rows.append("")
        rows += ["Example:", "", _json_block(self.example(schema)), ""]
        return "\n".join(rows)

    def responses(self, responses: dict[str, Any]) -> list[str]:
        lines = []
        errors = []
        for status, response in responses.items():
            code = int(status)
            if code >= 400:
                errors.append((code, response))
                continue
            lines.append(f"**Response {code} {HTTPStatus(code).phrase}:**\n")
            content = response.get("content", {}).get("application/json")
            if content:
                lines.append(_json_block(self.example(content["schema"])) + "\n")
        if errors:
            lines += ["**Errors:**\n", "| Status | `error` | When |", "|---|---|---|"]
            lines += [
                f"| [{code}](#errors) | {error_body(code)['error']} | {_cell(response['description'])} |"
                for code, response in errors
            ]
            lines.append("")
        return lines

    def errors_section(self) -> str:
        """Once for the page: every error status an operation can answer, with a whole example body."""
        statuses = sorted(
            {int(status) for _, _, op in operations(self.document) for status in op["responses"]}
        )
        error_schema = self.resolve({"$ref": "#/components/schemas/Error"})
        lines = [
            "## Errors\n",
            "Every error answers in the custom-bot document's shape: `success` (always `false`), "
            "`error` (the status in words) and `message` (one fixed text per case), with `errors` and "
            "`retry_after` where they apply. Our own extra keys say more without breaking a client that "
            "knows only those:\n",
            "| Key | Type | Meaning |",
            "|---|---|---|",
        ]
        for key, field in error_schema["properties"].items():
            lines.append(f"| `{key}` | {_cell(self.type_of(field))} | {_cell(self.description_of(field))} |")
        lines.append("")
        for status in statuses:
            if status < 400:
                continue
            lines.append(f"**{status} {HTTPStatus(status).phrase}**\n")
            lines.append(_json_block(error_body(status, **ERROR_EXTRAS.get(status, {}))) + "\n")
            if status == 404:
                lines.append("A path no operation answers gets the seed's own text instead:\n")
                lines.append(_json_block(error_body(404, message=OPERATION_NOT_FOUND)) + "\n")
        return "\n".join(lines)


def _annotations(schema: dict[str, Any]) -> dict[str, Any]:
    """What a wrapper (``anyOf`` with null) says about its value, carried onto the option we show."""
    return {key: schema[key] for key in ("examples", "example") if key in schema}


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _json_block(value: Any) -> str:
    return f"```json\n{json.dumps(value, indent=2, ensure_ascii=False)}\n```"


def reference(document: dict[str, Any] | None = None) -> str:
    """The Markdown of every operation in ``document`` (default: the one a fresh app serves)."""
    return Renderer(document if document is not None else served_document()).reference()
