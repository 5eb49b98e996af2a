"""Diagnostics, for the host's own dashboard (inside an app context)::

    from flask_discord_roles import diagnostics

    diagnosis = diagnostics.run_diagnostics(store.id)
    for check in diagnosis.checks:
        if not check.ok:
            show(check.check, check.reason_code, check.fix)

Every check says ``ok``, and when not, a reason code and the fix in words. The tenant API's
``/diagnostics`` runs the same checks.
"""

from __future__ import annotations

from flask_discord_roles._core import diagnostics as _service
from flask_discord_roles._core.diagnostics import Check, Diagnosis
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.bots import interactions_url as _interactions_url

__all__ = ["Check", "Diagnosis", "run_diagnostics"]


def run_diagnostics(store_id: object, *, interactions_url: str | None = None) -> Diagnosis:
    """Check everything the store's role deliveries depend on, against Discord. Reads only, and never
    raises because of Discord: a check Discord did not answer says ``discord_unavailable``.

    ``interactions_url`` goes into the fix when no interactions arrive; by default it is
    :func:`flask_discord_roles.bots.interactions_url` when that can be worked out (in a request, or
    with ``DISCORD_ROLES_PUBLIC_BASE_URL``), else the fix names the setting instead.
    """
    if interactions_url is None:
        try:
            interactions_url = _interactions_url(store_id)
        except RuntimeError:  # outside a request, without a public base URL: there is no address to give
            interactions_url = None
    return _service.run_diagnostics(get_state(), str(store_id), interactions_url=interactions_url)
