"""Blinker signals a host sends us.

Send them with your app as sender: ``order_completed.send(current_app._get_current_object(), ...)``.
Only the app the extension was initialised on listens to its own sends.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

order_completed = _signals.signal(
    "discord-roles.order-completed",
    doc="""Send this when an order is paid; its roles are queued in your current database transaction.

    Keyword arguments: ``store_id``, ``order_id``, ``customer_id`` (None for a guest), ``package_ids``
    and, when the buyer gave it at checkout, ``discord_user_id``. Queueing is a few INSERTs in your
    session: nothing is committed for you and nothing is sent to Discord in your request. Sending the
    same order again queues nothing new; a package with no role mapping is not an error.
    """,
)
