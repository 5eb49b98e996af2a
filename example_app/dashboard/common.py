"""What every dashboard page shares: the store it manages, and saying in words how a change went."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, url_for
from werkzeug.wrappers import Response

from flask_discord_roles.codes import ReasonCode
from flask_discord_roles.deliveries import DeliveryInfo, ValidationError

from .. import db

DISCORD_DOWN = "Discord can't be reached right now, so nothing was changed. Try again in a minute."
DISCORD_DOWN_READING = "Discord can't be reached right now. Reload the page in a minute."


def why(delivery: DeliveryInfo) -> str:
    """Why a delivery failed or waits, in words: its own reason, else its code's fix from the catalogue."""
    if delivery.reason:
        return delivery.reason
    if delivery.reason_code in set(ReasonCode):
        return ReasonCode(delivery.reason_code).fix
    return delivery.reason_code or "no reason recorded"


def store_id() -> str:
    return str(current_app.config["STORE_ID"])


def flash_errors(error: ValidationError) -> None:
    """Each refused field's messages, which the extension words for the owner."""
    for messages in error.errors.values():
        for message in messages:
            flash(message, "error")


def saved(message: str, endpoint: str, **values: Any) -> Response:
    """Commit the change, say what it did, and go back to a page (POST, redirect, GET)."""
    db.session.commit()
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def refused(message: str | ValidationError, endpoint: str, **values: Any) -> Response:
    """Drop whatever the failed change put in the session, say why, and go back to a page."""
    db.session.rollback()
    if isinstance(message, ValidationError):
        flash_errors(message)
    else:
        flash(message, "error")
    return redirect(url_for(endpoint, **values))
