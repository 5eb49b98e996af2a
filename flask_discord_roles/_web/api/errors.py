"""The tenant API's failures as answers: :class:`ApiError` for a view to raise, and the handlers that
turn every failure inside the blueprint into the seed's error shape (never an HTML page, never a trace).

The bodies themselves, with the seed's messages and our extra keys, come from :mod:`..error_body`.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from flask_discord_roles._web.error_body import OPERATION_NOT_FOUND, error_body, retry_seconds
from flask_discord_roles._web.guards import InputRefused
from flask_discord_roles.discord.errors import TransientDiscordError
from flask_discord_roles.errors import ValidationError

logger = logging.getLogger("flask_discord_roles.api")

DISCORD_RETRY_SECONDS = 5


class ApiError(Exception):
    """Raise inside a tenant-API view to answer with the error shape.

    ``detail`` is the specific reason in words; ``message`` is left to the status (the seed's words)
    except where one status has two cases (404: an unknown operation, or an unknown id).
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        message: str | None = None,
        errors: dict[str, list[str]] | None = None,
        retry_after: float | None = None,
        required_scope: str | None = None,
        resource: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or message or str(status))
        self.status = status
        self.body = error_body(
            status,
            message=message,
            detail=detail,
            errors=errors,
            retry_after=retry_after,
            required_scope=required_scope,
            resource=resource,
        )
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_seconds(retry_after))


def not_found(resource: str, detail: str) -> ApiError:
    """A 404 for an id this store does not have (``resource`` names its kind, e.g. ``delivery``)."""
    return ApiError(404, detail, resource=resource)


def invalid(errors: dict[str, list[str]]) -> ApiError:
    """A 422 naming what is wrong with each field."""
    return ApiError(422, errors=errors)


def error_response(error: ApiError) -> Response:
    response = jsonify(error.body)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


HTTP_DETAILS = {
    400: "Send JSON with Content-Type: application/json.",
    404: "No operation answers at this path. GET openapi.json lists them all.",
    405: "This operation does not accept that method; the Allow header lists the ones it does.",
    413: "The request body is too large.",
    415: "Send the body as JSON with Content-Type: application/json.",
}


def install_error_handlers(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(ApiError, error_response)

    @blueprint.errorhandler(ValidationError)
    def invalid_data(error: ValidationError) -> Response:
        return error_response(invalid(error.errors))

    @blueprint.errorhandler(TransientDiscordError)
    def discord_unavailable(error: TransientDiscordError) -> Response:
        # Services change nothing when Discord fails them midway: the view's session is rolled back.
        retry = getattr(error, "retry_after", None) or DISCORD_RETRY_SECONDS
        return error_response(
            ApiError(
                503,
                "Discord did not answer in time, so nothing was changed. Try again in a moment.",
                retry_after=retry,
            )
        )

    @blueprint.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        # A NotFound raised by routing or by a view means "no such operation": the seed's words. A
        # view that looked an id up raises not_found() instead.
        message = OPERATION_NOT_FOUND if status == 404 else None
        detail = HTTP_DETAILS.get(status)
        if isinstance(error, InputRefused):
            detail = error.description or detail  # what was wrong with the path or the body
        response = error_response(ApiError(status, detail, message=message))
        if status == 405 and error.get_headers():
            response.headers.update({k: v for k, v in error.get_headers() if k == "Allow"})
        return response

    @blueprint.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.exception("tenant API: unexpected %s", type(error).__name__)
        return error_response(ApiError(500, "Something went wrong on our side; nothing was changed."))
