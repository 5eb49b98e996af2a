"""Handing new work to the executor only once the host's transaction has committed.

Queueing happens in the host's session; if the host rolls back, the rows never existed and nothing may
be sent. So the ids are parked in ``session.info`` and handed over from SQLAlchemy's ``after_commit``
event, or dropped on rollback. The database stays the source of truth either way: a dispatch that is lost
(a crash right after commit) only delays the rows until a runner polls.

Some work must also wait for the request's own answer to be sent (:func:`run_after_response`): a
deferred /claim answer may only be edited once Discord has the deferral.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from blinker import Signal
from flask import Flask, Response, after_this_request, current_app, has_app_context, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from flask_discord_roles._runtime.executor import Work
from flask_discord_roles._runtime.state import get_state

logger = logging.getLogger("flask_discord_roles.dispatch")

_PENDING = "flask_discord_roles.pending_dispatch"
_SIGNALS = "flask_discord_roles.pending_signals"
_AFTER_RESPONSE = "flask_discord_roles.after_response"


def dispatch_after_commit(
    session: Session,
    app: Flask,
    *,
    delivery_ids: Iterable[int] = (),
    notification_ids: Iterable[int] = (),
) -> None:
    """Run these rows once ``session`` commits (never if it rolls back).

    Deferred /claim answers are not handed over here: they wait for the response, see
    :func:`~flask_discord_roles._core.claim_replies.queue_claim_reply`.
    """
    pending: dict[Flask, Work] = session.info.setdefault(_PENDING, {})
    work = pending.setdefault(app, Work())
    work.delivery_ids.update(delivery_ids)
    work.notification_ids.update(notification_ids)


def run_after_response(session: Session, callback: Callable[[], None]) -> None:
    """Call ``callback`` once ``session`` commits and the current request's response has been sent.

    Never if the session rolls back. The callback runs from Werkzeug's ``call_on_close``, which a WSGI
    server calls after it has written the whole body (Flask's test client: when the response is closed),
    outside the request and app contexts: it pushes its own. Outside a request there is no response to
    wait for, and it runs right after the commit. If the commit comes too late in the request for its
    response hooks (a host committing in ``teardown_request``), it never runs: whatever it would have
    started must also happen without it.
    """
    session.info.setdefault(_AFTER_RESPONSE, []).append(callback)


def send_after_commit(session: Session, app: Flask, signal: Signal, **payload: Any) -> None:
    """Send ``signal`` (with ``app`` as sender) once ``session`` commits; never if it rolls back.

    A receiver then sees what the signal announces in the database, and never hears of a change that
    did not happen.
    """
    session.info.setdefault(_SIGNALS, []).append((app, signal, payload))


@event.listens_for(Session, "after_commit")
def _send_signals(session: Session) -> None:
    for app, signal, payload in session.info.pop(_SIGNALS, ()):
        try:
            signal.send(app, **payload)
        except Exception:  # the commit has happened: a receiver's bug must not turn it into an error
            logger.exception("a receiver of %s raised", signal.name)


@event.listens_for(Session, "after_commit")
def _hand_over(session: Session) -> None:
    pending: dict[Flask, Work] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    for app, work in pending.items():
        if not work:
            continue
        try:
            get_state(app).executor.submit(app, work)
        except Exception:
            # The host's commit has happened; failing it now would lie. The rows wait for the next poll.
            logger.exception("could not hand %s to the executor; a runner will pick them up", work)


@event.listens_for(Session, "after_commit")
def _hold_until_response(session: Session) -> None:
    callbacks: list[Callable[[], None]] = session.info.pop(_AFTER_RESPONSE, [])
    if not callbacks:
        return
    if not has_request_context():
        for callback in callbacks:
            _call_quietly(callback)
        return

    @after_this_request
    def after_sending(response: Response) -> Response:
        for callback in callbacks:
            response.call_on_close(partial(_call_quietly, callback))
        return response


def _call_quietly(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # the response is out; the rows it would have started wait for the next poll
        logger.exception("work after the response failed; a runner will pick its rows up")


@event.listens_for(Session, "after_rollback")
def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_SIGNALS, None)
    session.info.pop(_AFTER_RESPONSE, None)


def current_app_or_none() -> Flask | None:
    """The app to send after-commit work as; None outside an app context (nothing to send to)."""
    if not has_app_context():
        return None
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app
