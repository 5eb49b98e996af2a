"""``/dashboard/settings``: every store setting the extension has, in one form.

Only the settings the owner changed are sent, so saving the form never re-checks an untouched
notification channel with Discord. A refused form is shown again as typed, each message by its field,
and nothing is saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from flask_discord_roles import store_settings
from flask_discord_roles.discord.errors import TransientDiscordError
from flask_discord_roles.store_settings import ValidationError

from .. import db
from . import dashboard
from .common import DISCORD_DOWN, saved, store_id


@dataclass(frozen=True)
class Field:
    label: str
    kind: str  # checkbox, select, textarea, text or number: how the template draws it
    help: str = ""


FIELDS = {
    "linking_enabled": Field("Customers can link Discord at checkout", "checkbox"),
    "require_link": Field(
        "Require a Discord link before paying", "checkbox", "Needs linking enabled as well."
    ),
    "join_guilds_on_link": Field(
        "Add customers to the server when they link", "checkbox", "The bot then needs Create Invite."
    ),
    "notifications_enabled": Field("Post purchase notifications", "checkbox"),
    "notification_channel_id": Field(
        "Notification channel id",
        "text",
        "With Developer Mode on in Discord, right-click the channel and Copy Channel ID.",
    ),
    "welcome_message": Field(
        "Welcome message", "textarea", "Shown to a customer once they have linked Discord."
    ),
    "checkout_prompt": Field(
        "Checkout prompt", "textarea", "Asks customers to link Discord during checkout."
    ),
    "delivery_mode": Field(
        "Delivery mode",
        "select",
        "Automatic: roles are given as soon as the buyer's Discord account is known. "
        "Claim: buyers run /claim in the server.",
    ),
    "claims_expire": Field("Unclaimed roles expire", "checkbox"),
    "claim_expiry_hours": Field("Hours before an unclaimed role expires", "number"),
    "linked_roles_enabled": Field(
        "Discord Linked Roles",
        "checkbox",
        "Server admins can require 'Verified buyer', an order count or an active subscription on any "
        "role; customers who linked Discord before link again once.",
    ),
}
DELIVERY_MODES = ("automatic", "claim")
NUMBER_ERROR = "Enter a whole number of hours."


def field(name: str, value: Any) -> Field:
    """How to show a setting; one this page does not know yet still gets a plain input."""
    kind = "checkbox" if isinstance(value, bool) else "number" if isinstance(value, int) else "text"
    return FIELDS.get(name) or Field(name.replace("_", " ").capitalize(), kind)


def _render(
    values: dict[str, Any], errors: dict[str, list[str]] | None = None, status: int = 200
) -> tuple[str, int]:
    fields = [(name, field(name, value), value) for name, value in values.items()]
    page = render_template(
        "dashboard/settings.html", fields=fields, errors=errors or {}, delivery_modes=DELIVERY_MODES
    )
    return page, status


@dashboard.get("/settings", endpoint="settings")
def settings_page() -> tuple[str, int]:
    return _render(store_settings.get_settings(store_id()))


@dashboard.post("/settings")
def save_settings() -> Response | tuple[str, int]:
    store = store_id()
    current = store_settings.get_settings(store)
    typed, errors = _read_form(current)
    if errors:
        return _render(typed, errors, 422)
    changes = {name: value for name, value in typed.items() if not _same(value, current[name])}
    if not changes:
        flash("Nothing to save: no setting was changed.", "info")
        return redirect(url_for("dashboard.settings"))
    try:
        store_settings.update_settings(store, **changes)
    except ValidationError as error:
        db.session.rollback()
        return _render(typed, error.errors, 422)
    except TransientDiscordError:
        db.session.rollback()
        flash(DISCORD_DOWN, "error")
        return _render(typed, status=503)
    names = ", ".join(field(name, value).label.lower() for name, value in changes.items())
    return saved(f"Saved: {names}.", "dashboard.settings")


def _read_form(current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every setting as the form has it now, and the ones that are not even the right kind of value."""
    typed: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in current.items():
        kind = field(name, value).kind
        raw = request.form.get(name, "")
        if kind == "checkbox":
            typed[name] = name in request.form  # a browser sends nothing for an unticked box
        elif kind == "number":
            typed[name] = raw.strip()
            try:
                typed[name] = int(typed[name])
            except ValueError:
                errors[name] = [NUMBER_ERROR]
        elif kind == "textarea":
            typed[name] = raw.replace("\r\n", "\n")  # browsers send CRLF; the saved text has LF
        elif name == "notification_channel_id":
            typed[name] = raw.strip() or None
        else:
            typed[name] = raw.strip()
    return typed, errors


def _same(typed: Any, saved_value: Any) -> bool:
    # An empty text box and a text that was never set mean the same: no text.
    return (typed or None) == (saved_value or None) if isinstance(typed, str) else typed == saved_value
