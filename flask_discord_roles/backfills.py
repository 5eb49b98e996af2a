"""Backfills: granting a new or edited role mapping to every customer who already holds its package.

For the host's dashboard, inside an app context; each function works in your session, so commit::

    from flask_discord_roles import backfills

    job = backfills.start_backfill("store-1", mapping_id)
    db.session.commit()
    ...
    job = backfills.get_backfill("store-1", job.id)
    print(f"{job.done}/{job.total} done, failures: {job.failures_by_reason}")

The workers (``flask discord-roles worker``, the thread executor, or Celery's ``process_due``) queue the
deliveries a window at a time (``DISCORD_ROLES_BACKFILL_WINDOW``), so new purchases never wait behind a
large backfill. Each delivery has the key the customer's own order would have given it: a customer who
already has the role from their order is skipped, and starting a backfill again queues nothing twice.
A killed worker loses nothing: the next one carries on where the last committed step stopped. With the
``inline`` executor nothing steps a backfill: run a worker, or call ``process_due`` from Celery beat.
"""

from __future__ import annotations

from flask_discord_roles._core import backfills as _service
from flask_discord_roles._core.backfills import (
    MAX_LISTED,
    BackfillFinished,
    BackfillInfo,
    BackfillNotFound,
    BackfillRunning,
)
from flask_discord_roles._core.mappings import MappingNotFound
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.codes import BackfillStatus
from flask_discord_roles.errors import ValidationError

__all__ = [
    "MAX_LISTED",
    "BackfillFinished",
    "BackfillInfo",
    "BackfillNotFound",
    "BackfillRunning",
    "BackfillStatus",
    "MappingNotFound",
    "backfill_mapping",
    "cancel_backfill",
    "get_backfill",
    "list_backfills",
    "start_backfill",
]


def start_backfill(store_id: object, mapping_id: int) -> BackfillInfo:
    """Start granting mapping ``mapping_id`` to every customer who holds its package; runs once you commit.

    Raises :class:`MappingNotFound` for a mapping the store does not have, and :class:`BackfillRunning`
    when the mapping has a running backfill already (its id is ``running_id``).
    """
    state = get_state()
    return _service.info_of(state, _service.start_backfill(state, str(store_id), mapping_id))


def backfill_mapping(store_id: object, mapping_id: int) -> BackfillInfo:
    """After creating or editing a mapping: start its backfill, or return the one running for it.

    A running backfill started before the mapping's role was changed is cancelled and a new one started.
    Raises :class:`MappingNotFound`.
    """
    state = get_state()
    return _service.info_of(state, _service.backfill_mapping(state, str(store_id), mapping_id))


def get_backfill(store_id: object, backfill_id: int) -> BackfillInfo:
    """One backfill and its progress; :class:`BackfillNotFound` for an unknown id or another store's."""
    return _service.get_backfill(get_state(), str(store_id), backfill_id)


def list_backfills(store_id: object, *, status: str | None = None) -> list[BackfillInfo]:
    """The store's backfills, newest first (at most :data:`MAX_LISTED`), optionally of one ``status``
    (``running``, ``completed`` or ``cancelled``; another raises :class:`ValidationError`)."""
    if status is not None and status not in tuple(BackfillStatus):
        choices = ", ".join(BackfillStatus)
        raise ValidationError({"status": [f"Must be one of {choices}."]})
    return _service.list_backfills(get_state(), str(store_id), status=status)


def cancel_backfill(store_id: object, backfill_id: int) -> BackfillInfo:
    """Stop a backfill once you commit: nothing more is queued and its deliveries not yet sent end
    ``expired`` (reason code ``backfill_cancelled``); a delivery being sent right now still goes out.

    Cancelling a cancelled backfill changes nothing; a completed one raises :class:`BackfillFinished`.
    Raises :class:`BackfillNotFound`.
    """
    return _service.cancel_backfill(get_state(), str(store_id), backfill_id)
