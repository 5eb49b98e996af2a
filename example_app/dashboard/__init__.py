"""The store owner's dashboard: the bot, servers, role mappings, settings, deliveries, customers and
diagnostics, server-rendered on the extension's public Python API.

Every page is the owner's alone. Each page lives in its own module; importing them registers their
routes on :data:`dashboard`.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, current_app, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

dashboard = Blueprint("dashboard", __name__)


@dashboard.before_request
def owners_only() -> Response | None:
    """Signed out: sign in first (as ``login_required`` does). Signed in as a shopper: 403."""
    if not current_user.is_authenticated:
        response: Response = current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        return response
    if not current_user.is_owner:
        abort(403)
    return None


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool


# (label, the page's endpoint, other endpoints that belong to the same section)
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Overview", "dashboard.overview", ()),
    ("Bot", "dashboard.bot", ()),
    ("Servers", "dashboard.guilds", ("dashboard.confirm_unlink",)),
    ("Role mappings", "dashboard.mappings", ()),
    ("Settings", "dashboard.settings", ()),
    ("Deliveries", "dashboard.deliveries", ()),
    ("Customers", "dashboard.customers", ("dashboard.customer",)),
    ("Diagnostics", "dashboard.diagnostics", ()),
    ("Drift", "dashboard.drift", ()),
)


@dashboard.context_processor
def navigation() -> dict[str, list[NavItem]]:
    here = request.endpoint
    return {
        "dashboard_nav": [
            NavItem(label, url_for(endpoint), here == endpoint or here in also)
            for label, endpoint, also in SECTIONS
        ]
    }


# Imported last, for their routes: each module registers its pages on the blueprint defined above.
from . import (  # noqa: E402, F401
    bot,
    customers,
    deliveries,
    demo_clock,
    diagnostics,
    drift,
    guilds,
    mappings,
    overview,
    settings,
)
