"""The tenant API: what a store's dashboard calls, under ``DISCORD_ROLES_API_PREFIX``.

Every request names its store (``X-Tenant-Id``) and proves it may act for it (``Authorization: Bearer``);
every view reads and writes that store's rows only, through the services. Errors use one shape (see
:mod:`.errors`); the OpenAPI 3.1 description is served at ``<prefix>/openapi.json``.
"""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from flask_discord_roles._runtime.state import get_state
from flask_discord_roles._web.api.auth import authorise, observe, rate_limit_headers
from flask_discord_roles._web.api.errors import install_error_handlers
from flask_discord_roles._web.guards import guard

tenant_api = Blueprint("discord_roles_api", __name__)
guard(tenant_api)  # paths with control characters are refused before the token is even looked up
install_error_handlers(tenant_api)


MAX_ID = 2**63 - 1
"""Ids in paths are at most a signed 64-bit integer: larger ones name nothing (and SQLite would overflow)."""


@tenant_api.before_request
def _authorise() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    operation = getattr(view, "openapi", None)
    if (operation is not None and operation.public) or request.endpoint == f"{tenant_api.name}._unknown":
        observe(get_state())
        return
    authorise(get_state())
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and value > MAX_ID:
            raise NotFound()


@tenant_api.after_request
def _rate_limit_headers(response: Response) -> Response:
    """``X-RateLimit-*`` on every answer, errors included, so a client can pace itself before a 429."""
    response.headers.update(rate_limit_headers())
    return response


# No automatic OPTIONS: an OPTIONS request for a real operation must list that operation's methods only.
@tenant_api.route(
    "/",
    defaults={"rest": ""},
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    provide_automatic_options=False,
)
@tenant_api.route(
    "/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], provide_automatic_options=False
)
def _unknown(rest: str) -> NoReturn:
    """Any path under the prefix that no operation answers: 404 (or 405) in the API's error shape.

    Werkzeug would raise these before our blueprint is known, and the host's HTML error page would answer.
    """
    allowed = _methods_elsewhere()
    if allowed:
        raise MethodNotAllowed(valid_methods=sorted(allowed))
    raise NotFound()


def _methods_elsewhere() -> set[str]:
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed: set[str] = set()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != f"{tenant_api.name}._unknown":
            allowed.add(method)
    return allowed
