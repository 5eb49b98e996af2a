"""Blinker signals a host sends us.

Send them with your app as sender: ``order_completed.send(current_app._get_current_object(), ...)``.
Only the app the extension was initialised on listens to its own sends.
"""

from __future__ import annotations

from blinker import Namespace

__all__ = [
    "account_linked",
    "account_unlinked",
    "delivery_failed",
    "guild_linked",
    "guild_unlinked",
    "order_completed",
    "order_revoked",
    "role_delivered",
    "role_removed",
]

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

order_revoked = _signals.signal(
    "discord-roles.order-revoked",
    doc="""Send this when an order stops entitling its buyer: refund, chargeback, cancellation, ended
    subscription. Same keyword arguments as :data:`order_completed` (``package_ids`` may be omitted).

    Its roles are queued for removal in your current transaction, but a role is only removed if we
    granted it and no other active order of that customer still grants it. Deliveries of the order that
    had not happened yet are cancelled (status ``expired``, reason code ``order_revoked``).
    """,
)

role_delivered = _signals.signal(
    "discord-roles.role-delivered",
    doc="""Sent (with the app as sender) after a role was given and the delivery saved as ``completed``.

    Keyword argument: ``delivery``, a :class:`~flask_discord_roles.deliveries.DeliveryInfo`. Sent from the
    thread or process that ran the delivery, inside an app context; keep receivers quick.
    """,
)

role_removed = _signals.signal(
    "discord-roles.role-removed",
    doc="""Sent after a role was taken away (a revoked order, or the store owner by hand).

    Keyword argument: ``delivery``, a :class:`~flask_discord_roles.deliveries.DeliveryInfo`.
    """,
)

delivery_failed = _signals.signal(
    "discord-roles.delivery-failed",
    doc="""Sent when a delivery ends ``failed``: a permanent error, or transient ones past the last attempt.

    Keyword argument: ``delivery``, a :class:`~flask_discord_roles.deliveries.DeliveryInfo` whose
    ``reason_code`` and ``reason`` say what went wrong and what to do.
    """,
)

guild_linked = _signals.signal(
    "discord-roles.guild-linked",
    doc="""Sent (with the app as sender) after a server manager linked a Discord server to a store with
    ``/link`` and the link was committed.

    Keyword arguments: ``store_id``, ``guild_id``, and ``linked_by_user_id`` (the manager's Discord id).
    """,
)

guild_unlinked = _signals.signal(
    "discord-roles.guild-unlinked",
    doc="""Sent (with the app as sender) after a store unlinked a Discord server and that was committed.

    Keyword arguments: ``store_id``, ``guild_id``, ``mappings_deleted`` (the store's role mappings in
    that server, now gone) and ``deliveries_stopped`` (its pending deliveries there, now ``failed`` with
    reason code ``guild_unlinked``). Roles members already hold in the server were not removed.
    """,
)

account_linked = _signals.signal(
    "discord-roles.account-linked",
    doc="""Sent (with the app as sender) after a customer linked their Discord account and it was committed.

    Keyword arguments: ``store_id``, ``customer_id``, ``discord_user_id``, and ``previous_discord_user_id``
    (the account it replaced, or None).
    """,
)

account_unlinked = _signals.signal(
    "discord-roles.account-unlinked",
    doc="""Sent (with the app as sender) after a customer's Discord account was unlinked and committed.

    Keyword arguments: ``store_id``, ``customer_id``, ``discord_user_id``. Roles already delivered stay.
    """,
)
