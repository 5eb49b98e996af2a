"""Where Discord's docs and its OpenAPI spec disagree, and we follow the docs (as the spec's README asks).

Each :class:`Erratum` corrects the loaded spec (the vendored file stays byte-identical to upstream) and says
what, where, why, and which page of Discord's docs it follows. Each :class:`Exemption` is an exchange the
spec does not describe at all, and why it is not held to it. ``docs/fake-discord-spec.md`` prints this list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ERRATA", "EXEMPT", "FROM_THE_DOCS", "Erratum", "Exemption", "exemption_for"]

DOCS = "https://discord.com/developers/docs"
# Marks an operation written here from the docs rather than taken from the spec.
FROM_THE_DOCS = "x-from-discord-docs"


@dataclass(frozen=True)
class Erratum:
    """One correction: ``where`` is a JSON pointer into the spec, ``docs`` the page we follow instead."""

    name: str
    what: str
    where: str
    why: str
    docs: str
    apply: Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Exemption:
    """Exchanges the spec does not describe: ``method`` and ``path`` (a regex on the request's path, with
    its ``/api/v10``) match the request; ``statuses`` limits it to some answers (None: the whole exchange)."""

    name: str
    method: str
    path: str
    why: str
    docs: str
    statuses: range | None = None


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def _field_error_codes_are_strings(spec: dict[str, Any]) -> None:
    _schemas(spec)["InnerErrors"]["properties"]["_errors"]["items"] = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["code", "message"],
    }


def _rate_limit_body_has_no_code(spec: dict[str, Any]) -> None:
    _schemas(spec)["RatelimitedResponse"]["allOf"][0] = {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
        "required": ["message"],
    }


_OAUTH_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error"],
}
_FORM = "application/x-www-form-urlencoded"


def _oauth_token_from_the_docs(spec: dict[str, Any]) -> None:
    """The token exchange, refresh, client-credentials grant and revocation, as the OAuth2 page shows."""
    client = {"client_id": {"type": "string"}, "client_secret": {"type": "string"}}
    grant = {
        "anyOf": [
            {
                "properties": {
                    "grant_type": {"const": "authorization_code"},
                    "code": {"type": "string"},
                    "redirect_uri": {"type": "string"},
                    "code_verifier": {"type": "string"},
                    **client,
                },
                "required": ["grant_type", "code"],
                "additionalProperties": False,
            },
            {
                "properties": {
                    "grant_type": {"const": "refresh_token"},
                    "refresh_token": {"type": "string"},
                    **client,
                },
                "required": ["grant_type", "refresh_token"],
                "additionalProperties": False,
            },
            {
                "properties": {
                    "grant_type": {"const": "client_credentials"},
                    "scope": {"type": "string"},
                    **client,
                },
                "required": ["grant_type", "scope"],
                "additionalProperties": False,
            },
        ],
    }
    token = {
        "type": "object",
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
            "refresh_token": {"type": "string"},
            "scope": {"type": "string"},
            "guild": {"$ref": "#/components/schemas/GuildResponse"},
            "webhook": {"$ref": "#/components/schemas/ApplicationIncomingWebhookResponse"},
        },
        "required": ["access_token", "token_type", "expires_in", "scope"],
    }
    revoke = {
        "type": "object",
        "properties": {
            "token": {"type": "string"},
            "token_type_hint": {"enum": ["access_token", "refresh_token"]},
            **client,
        },
        "required": ["token"],
        "additionalProperties": False,
    }

    def operation(operation_id: str, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        return {
            FROM_THE_DOCS: True,
            "operationId": operation_id,
            "requestBody": {"required": True, "content": {_FORM: {"schema": body}}},
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": answer}}},
                "429": {"$ref": "#/components/responses/ClientRatelimitedResponse"},
                "4XX": {
                    "description": "RFC 6749 error",
                    "content": {"application/json": {"schema": _OAUTH_ERROR}},
                },
            },
        }

    spec["paths"]["/oauth2/token"] = {"post": operation("oauth2_token", grant, token)}
    spec["paths"]["/oauth2/token/revoke"] = {
        "post": operation("oauth2_token_revoke", revoke, {"type": "object"})
    }


def _role_connection_platform_name_is_nullable(spec: dict[str, Any]) -> None:
    properties = _schemas(spec)["ApplicationUserRoleConnectionResponse"]["properties"]
    properties["platform_name"] = {"type": ["string", "null"]}


ERRATA: tuple[Erratum, ...] = (
    Erratum(
        name="field-error-codes-are-strings",
        what="A field's error code in a 50035 answer is a string such as BASE_TYPE_REQUIRED.",
        where="#/components/schemas/InnerErrors/properties/_errors/items",
        why="The spec reuses its top-level Error (an integer code) for the field errors under `_errors`.",
        docs=f"{DOCS}/reference#error-messages",
        apply=_field_error_codes_are_strings,
    ),
    Erratum(
        name="rate-limit-body-has-no-code",
        what="A 429 body is message, retry_after and global; it carries no code.",
        where="#/components/schemas/RatelimitedResponse/allOf/0",
        why="The spec builds the 429 body on Error, which requires a code.",
        docs=f"{DOCS}/topics/rate-limits#exceeding-a-rate-limit",
        apply=_rate_limit_body_has_no_code,
    ),
    Erratum(
        name="oauth2-token-from-the-docs",
        what="POST /oauth2/token and /oauth2/token/revoke: form-encoded grants and revocations, answered "
        "with an access token response, or an RFC 6749 error body.",
        where="#/paths/~1oauth2~1token",
        why="The spec has no /oauth2/token operations; these schemas are written from the OAuth2 page.",
        docs=f"{DOCS}/topics/oauth2#authorization-code-grant-access-token-exchange-example",
        apply=_oauth_token_from_the_docs,
    ),
    Erratum(
        name="role-connection-platform-name-is-nullable",
        what="A user's application role connection has platform_name null until the app sets one "
        "(GET before any PUT answers platform_name, platform_username null and metadata {}).",
        where="#/components/schemas/ApplicationUserRoleConnectionResponse/properties/platform_name",
        why="The spec types platform_name as a string; the docs' application role connection object "
        "has ?string, as it has for platform_username.",
        docs=f"{DOCS}/resources/user#application-role-connection-object",
        apply=_role_connection_platform_name_is_nullable,
    ),
)

EXEMPT: tuple[Exemption, ...] = (
    Exemption(
        name="cdn-is-not-the-api",
        method="*",
        path=r"^/(?!api(?:/|$))",
        why="Avatars and icons come from Discord's CDN (cdn.discordapp.com), which the spec does not cover.",
        docs=f"{DOCS}/reference#image-formatting",
    ),
    Exemption(
        name="authorize-is-a-page",
        method="*",
        path=r"^/api(?:/v\d+)?/oauth2/authorize/?$",
        why="The consent screen is a web page a person sees, not an operation of the HTTP API.",
        docs=f"{DOCS}/topics/oauth2#authorization-code-grant",
    ),
    Exemption(
        name="server-errors",
        method="*",
        path=r"",
        statuses=range(500, 600),
        why="5xx answers come from Discord's servers or Cloudflare (often HTML); the spec lists none.",
        docs=f"{DOCS}/topics/opcodes-and-status-codes#http-http-response-codes",
    ),
)

_COMPILED = tuple((e, re.compile(e.path)) for e in EXEMPT)


def exemption_for(method: str, path: str, status: int | None = None) -> Exemption | None:
    """The exemption covering this request (``status`` None) or this answer, if any."""
    for exemption, pattern in _COMPILED:
        if exemption.method not in ("*", method.upper()) or not pattern.search(path):
            continue
        if exemption.statuses is None or (status is not None and status in exemption.statuses):
            return exemption
    return None
