"""The tenant API's one error shape, ``{"success": false, "error", "message"[, "errors"][, "retry_after"]}``,
and the handlers that turn every failure inside the blueprint into it (never an HTML page, never a trace).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from ...discord.errors import TransientDiscordError
from ...services.errors import ValidationError
from ..guards import InputRefused

logger = logging.getLogger("flask_discord_roles.api")

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Validation Error",
    429: "Too Many Requests",
    500: "Server Error",
    503: "Service Unavailable",
}

DISCORD_RETRY_SECONDS = 5


class ApiError(Exception):
    """Raise inside a tenant-API view to answer with the error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: dict[str, list[str]] | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.retry_after = retry_after
        self.headers = headers or {}


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def error_response(error: ApiError) -> Response:
    body: dict[str, Any] = {
        "success": False,
        "error": TITLES.get(error.status, "Error"),
        "message": error.message,
    }
    if error.errors is not None:
        body["errors"] = error.errors
    headers = dict(error.headers)
    if error.retry_after is not None:
        seconds = max(1, math.ceil(error.retry_after))
        body["retry_after"] = seconds
        headers["Retry-After"] = str(seconds)
    response = jsonify(body)
    response.status_code = error.status
    response.headers.update(headers)
    return response


def install_error_handlers(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(ApiError, error_response)

    @blueprint.errorhandler(ValidationError)
    def invalid(error: ValidationError) -> Response:
        return error_response(ApiError(422, "The given data was invalid.", errors=error.errors))

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
        message = {
            400: "The request could not be read. Send JSON with Content-Type: application/json.",
            404: "Operation not found.",
            405: "This operation does not accept that method.",
            413: "The request body is too large.",
            415: "Send the body as JSON with Content-Type: application/json.",
        }.get(status, error.description or TITLES.get(status, "Error"))
        if status == 400 and isinstance(error, InputRefused):
            message = error.description or message  # says what was wrong with the body
        response = error_response(ApiError(status, message))
        if status == 405 and error.get_headers():
            response.headers.update({k: v for k, v in error.get_headers() if k == "Allow"})
        return response

    @blueprint.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.exception("tenant API: unexpected %s", type(error).__name__)
        return error_response(ApiError(500, "Something went wrong on our side; nothing was changed."))
