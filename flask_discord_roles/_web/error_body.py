"""Every JSON error body under our blueprints, built in one place, in the seed's shape.

The custom-bot document (``docs/seed/000_custom_bot_api.txt``, section "Error Responses") fixes the shape
``{"success": false, "error": <title>, "message": <text>[, "errors"][, "retry_after"]}`` and the exact
``message`` for 401, 403, 404 (an unknown operation), 422 and 429. A client written from that document
may match those strings, so they are the seed's word for word, and every other case has one fixed,
equally short ``message`` of its own. Whatever is specific to one failure goes in extra keys:

``detail``
    The specific reason and what to do about it, in words to show a person.
``required_scope``
    On a 403 for a missing scope: the scope the operation needs (``read`` or ``write``).
``resource``
    On a 404 for an id this store does not have: what kind of thing was not found.

A client that knows only the seed reads ``success``/``error``/``message`` and ignores the rest.
"""

from __future__ import annotations

import math
from typing import Any

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
    500: "Internal Server Error",
    503: "Service Unavailable",
}
"""``error`` for each status: the seed's titles for the statuses it names, HTTP's reason phrase otherwise."""

# The seed's own words, for the cases it names.
UNAUTHORIZED = "Invalid or missing API token"
FORBIDDEN = "Token does not have required scope"
OPERATION_NOT_FOUND = "Operation not found"
INVALID_DATA = "The given data was invalid"
RATE_LIMITED = "Rate limit exceeded"

# Ours, in the seed's style, for what the seed does not name.
RESOURCE_NOT_FOUND = "Resource not found"
BAD_REQUEST = "The request could not be read"
METHOD_NOT_ALLOWED = "Method not allowed"
CONFLICT = "Conflicts with the current state"
PAYLOAD_TOO_LARGE = "Request body too large"
UNSUPPORTED_MEDIA_TYPE = "Unsupported media type"
INTERNAL_ERROR = "Internal server error"
DISCORD_UNAVAILABLE = "Discord unavailable"

MESSAGES = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    404: RESOURCE_NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    409: CONFLICT,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    422: INVALID_DATA,
    429: RATE_LIMITED,
    500: INTERNAL_ERROR,
    503: DISCORD_UNAVAILABLE,
}
"""The one ``message`` per status; 404 has a second, :data:`OPERATION_NOT_FOUND`, for an unknown path."""

EXTRA_KEYS = ("detail", "required_scope", "resource")
"""Keys we add to the seed's shape (see the module's docstring)."""


def error_body(
    status: int,
    *,
    message: str | None = None,
    detail: str | None = None,
    errors: dict[str, list[str]] | None = None,
    retry_after: float | None = None,
    required_scope: str | None = None,
    resource: str | None = None,
) -> dict[str, Any]:
    """The JSON body of an error answer with ``status``.

    ``message`` defaults to the one for the status (:data:`MESSAGES`); ``retry_after`` is rounded up to
    whole seconds, at least one, as the seed writes it.
    """
    body: dict[str, Any] = {
        "success": False,
        "error": TITLES.get(status, "Error"),
        "message": message or MESSAGES.get(status, TITLES.get(status, "Error")),
    }
    if errors is not None:
        body["errors"] = errors
    if retry_after is not None:
        body["retry_after"] = retry_seconds(retry_after)
    if detail is not None:
        body["detail"] = detail
    if required_scope is not None:
        body["required_scope"] = required_scope
    if resource is not None:
        body["resource"] = resource
    return body


def retry_seconds(retry_after: float) -> int:
    """Whole seconds to wait, never zero: a client that retries after 0 seconds is refused again."""
    return max(1, math.ceil(retry_after))
