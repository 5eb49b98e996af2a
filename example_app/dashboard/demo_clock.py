"""``/dashboard/demo-clock``: the demo's way to see a subscription lapse without waiting a month.

A real store lets the worker run the expiry sweep with the real clock. The demo (``DEMO_CLOCK`` on, as
``make demo`` starts it) offers one button more: run the same public sweeps now, *as if* it were a later
time. It ends every grant due by then, for every customer, exactly as the worker would at that moment;
it changes no clock anywhere else, so a grant that is not yet due stays as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, request
from werkzeug.wrappers import Response

from flask_discord_roles import grants

from . import dashboard
from .common import refused, saved


@dashboard.post("/demo-clock/sweep")
def demo_sweep() -> Response:
    if not current_app.config.get("DEMO_CLOCK"):
        abort(404)  # not part of a real dashboard
    back = request.form.get("customer_id", "")
    try:
        at = datetime.fromisoformat(request.form.get("at", ""))
    except ValueError:
        return refused("Give the time to run the sweep at.", "dashboard.customer", customer_id=back)
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    # In the worker's order: what is past its end ends, then what is still running is reminded.
    ended = grants.end_due_grants(now=at)
    reminded = grants.send_due_reminders(now=at)
    return saved(
        f"Demo clock: ran the expiry sweep as of {at:%Y-%m-%d %H:%M} UTC "
        f"({_count(ended)} ended, {_count(reminded)} reminded).",
        "dashboard.customer",
        customer_id=back,
    )


def _count(outcome: object) -> int:
    """How many the sweep handled, whether it answers a count or the grants themselves."""
    if isinstance(outcome, int):
        return outcome
    return len(outcome) if hasattr(outcome, "__len__") else 0
