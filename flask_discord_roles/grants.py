"""Time-limited grants: what each customer holds for a time, and the sweeps that end and remind.

An order sent with ``expires_at`` or ``subscription_id`` (see
:data:`~flask_discord_roles.signals.order_completed`) starts a grant of each of its packages; a later
order of the same subscription with a later ``expires_at`` renews it (no role changes); at
``expires_at`` plus the store's ``grace_hours`` it ends and its roles are removed under the same rules
as a refund. Reading works on the current app, in your database session::

    from flask_discord_roles import grants

    for grant in grants.list_grants("store-1", customer_id="42", status="active"):
        print(grant.package_id, grant.expires_at, grant.ends_at)

The worker (``flask discord-roles worker``, the thread executor, or Celery's ``process_due``) runs the
sweeps on every pass. A host that runs none of those calls :func:`end_due_grants` and
:func:`send_due_reminders` from its own scheduler, every minute or so.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from flask_discord_roles._core import grant_records as _records
from flask_discord_roles._core import grant_sweeps as _sweeps
from flask_discord_roles._core.grant_records import GRANT_STATUSES, GrantInfo, GrantNotFound
from flask_discord_roles._runtime.executor import Work
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.errors import ValidationError

__all__ = [
    "GRANT_STATUSES",
    "GrantInfo",
    "GrantNotFound",
    "ValidationError",
    "end_due_grants",
    "get_grant",
    "list_grants",
    "send_due_reminders",
]


def list_grants(
    store_id: str,
    *,
    customer_id: str | int | None = None,
    discord_user_id: str | None = None,
    status: str | None = None,
) -> list[GrantInfo]:
    """The store's grants, newest first, narrowed to one customer, one Discord user, or a status
    (``active`` or ``ended``; :class:`ValidationError` for another)."""
    return _records.list_grants(
        get_state(),
        str(store_id),
        customer_id=None if customer_id is None else str(customer_id),
        discord_user_id=discord_user_id,
        status=status,
    )


def get_grant(store_id: str, grant_id: int) -> GrantInfo:
    """One grant of the store; :class:`GrantNotFound` if the store has none with this id."""
    return _records.get_grant(get_state(), str(store_id), grant_id)


def end_due_grants(now: datetime | None = None) -> list[GrantInfo]:
    """End every grant past its end (``expires_at`` plus grace) and queue the removal of its roles.

    For hosts that run their own scheduler instead of our worker. Unlike the other functions of the
    Python API it **commits**, one transaction per batch of grants, so call it from a job, not in the
    middle of a request's own changes. The removals are handed to the executor after each commit;
    :data:`~flask_discord_roles.signals.grant_ended` is sent for each grant. Returns the grants ended.
    """
    state = get_state()
    ended = _sweeps.end_due_grants(state, now=now or utcnow())
    if ended.due:
        # Committed already: hand the removals straight to the executor (a worker's poll finds them too).
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        state.executor.submit(app, Work(delivery_ids=set(ended.due)))
    return ended.grants


def send_due_reminders(now: datetime | None = None) -> int:
    """Send the expiry reminders that are due (signal, and DM where the store wants one); how many.

    For hosts that run their own scheduler. Commits, like :func:`end_due_grants`. Each reminder goes
    at most once, even when two schedulers run at the same moment.
    """
    return _sweeps.send_due_reminders(get_state(), now=now or utcnow())
