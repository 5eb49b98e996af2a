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
    "grant_ended",
    "grant_expiring",
    "grant_renewed",
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
    and, when the buyer gave it at checkout, ``discord_user_id``. For time you sell, add ``expires_at``
    (an aware datetime: the roles end then, plus the store's ``grace_hours``) and, for a subscription,
    ``subscription_id``: a later order with the same ``subscription_id`` and a later ``expires_at``
    renews (extends) the grant and changes no role. Queueing is a few INSERTs in your
    session: nothing is committed for you and nothing is sent to Discord in your request. Sending the
    same order again queues nothing new; a package with no role mapping is not an error.
    """,
)

order_revoked = _signals.signal(
    "discord-roles.order-revoked",
    doc="""Send this when an order stops entitling its buyer: refund, chargeback, cancellation, ended
    subscription. Same keyword arguments as :data:`order_completed` (``package_ids`` may be omitted).
    A subscription's grants end at once when you revoke any of its orders (or pass ``subscription_id``);
    a cancellation "at period end" needs no signal: the grant simply lapses unless renewed.

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

grant_renewed = _signals.signal(
    "discord-roles.grant-renewed",
    doc="""Sent (with the app as sender) when an ``order_completed`` with a known ``subscription_id`` and a
    later ``expires_at`` extended a time-limited grant, once the host committed. No role changed.

    Keyword argument: ``grant``, a :class:`~flask_discord_roles.grants.GrantInfo` with the new expiry.
    """,
)

grant_expiring = _signals.signal(
    "discord-roles.grant-expiring",
    doc="""Sent (with the app as sender) once per grant and period, ``expiry_reminder_hours`` before a
    time-limited grant expires (the store's setting), from the worker, inside an app context. Never sent
    twice for the same expiry, and never for an expiry a renewal already moved.

    Keyword argument: ``grant``, a :class:`~flask_discord_roles.grants.GrantInfo`. Use it to email the
    customer; we also send them a direct message when the store has ``expiry_reminder_dm`` on.
    """,
)

grant_ended = _signals.signal(
    "discord-roles.grant-ended",
    doc="""Sent (with the app as sender) when a time-limited grant ended and that was committed: it
    expired (``expires_at`` plus the store's ``grace_hours`` passed) or its order was revoked.

    Keyword argument: ``grant``, a :class:`~flask_discord_roles.grants.GrantInfo` whose ``end_reason``
    says which. Its roles are queued for removal by the usual rules (only roles we granted, that no
    other active purchase still grants, and never a mapping's ``keep_on_end`` role).
    """,
)
