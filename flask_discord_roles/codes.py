"""The domain's vocabulary: delivery statuses, sources and actions, and every reason code the engine can
write, each with the fix a store owner reads: the one catalogue.

:class:`Status`, :class:`Source`, :class:`Action`, :class:`SendStatus` and :class:`DeliveryMode` are
``StrEnum`` classes whose values are the strings stored in the database and sent by the tenant API, so they
compare equal to those strings (``Status.PENDING == "pending"``).

A delivery, a purchase notification, a claim reply, a diagnostics check or a server role that cannot be
given carries a ``reason_code`` from :class:`ReasonCode` (a ``StrEnum``: its values are the strings
stored in the database and sent by the tenant API). The docs' table (troubleshooting), the OpenAPI enums and
the example dashboard's words are generated from, or checked against, this module::

    from flask_discord_roles.codes import ReasonCode

    ReasonCode("role_above_bot").fix   # "Move the bot's role above the role ..."

Run ``python -m flask_discord_roles.codes`` to print the table in docs/troubleshooting.md.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

__all__ = [
    "CHECK_CODES",
    "CONNECTION_CODES",
    "DELIVERY_CODES",
    "NOTIFICATION_CODES",
    "RECONCILE_CODES",
    "REMINDER_CODES",
    "ROLE_CODES",
    "Action",
    "BackfillStatus",
    "DeliveryMode",
    "DriftKind",
    "GrantEnd",
    "GrantStatus",
    "ReasonCode",
    "ReconcileMode",
    "ReconcileStatus",
    "SendStatus",
    "Source",
    "Status",
    "markdown_table",
]


class Status(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    """Queued: due now, scheduled for a retry, or waiting for its customer (to link, or to /claim)."""
    COMPLETED = "completed"
    """Discord made the role change (or it was already so)."""
    FAILED = "failed"
    """It stopped: ``reason_code`` says why and what fixes it; a retry queues it again."""
    EXPIRED = "expired"
    """Nobody claimed it before the store's claim window closed."""


class Source(StrEnum):
    """What queued a delivery."""

    INTERACTION = "interaction"
    """The customer's ``/claim`` in the server."""
    AUTO = "auto"
    """An order, for a customer whose Discord account is linked (at checkout, or later)."""
    MANUAL = "manual"
    """The store owner, from the dashboard or the Python API."""


class Action(StrEnum):
    """What a delivery does to the member."""

    ADD = "add"
    REMOVE = "remove"


class SendStatus(StrEnum):
    """Where a purchase notification or a deferred /claim answer stands."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class DeliveryMode(StrEnum):
    """A store's ``delivery_mode`` setting."""

    AUTOMATIC = "automatic"
    """Roles go to a customer who linked Discord as soon as the order is paid."""
    CLAIM = "claim"
    """Every customer runs ``/claim`` in the server to receive their roles."""


class GrantStatus(StrEnum):
    """Where a time-limited grant (a subscription's or a fixed-term order's package) stands."""

    ACTIVE = "active"
    """It entitles its customer: not yet past ``expires_at`` plus the store's grace period."""
    ENDED = "ended"
    """It no longer entitles anyone: ``end_reason`` says why; its roles went by the usual removal rules."""


class GrantEnd(StrEnum):
    """Why a time-limited grant ended."""

    EXPIRED = "expired"
    """``expires_at`` plus the store's ``grace_hours`` passed without a renewal."""
    REVOKED = "revoked"
    """The host sent ``order_revoked`` (a refund, a chargeback, an immediate cancellation)."""


class BackfillStatus(StrEnum):
    """Where a backfill (granting a new or edited mapping to existing customers) stands."""

    RUNNING = "running"
    """Queueing deliveries a batch at a time, or waiting for the queued ones to settle."""
    COMPLETED = "completed"
    """Every customer it found has a delivery and the runners have settled all they could run; ones
    still waiting for their customer (to link Discord or /claim) go out like any order's, later."""
    CANCELLED = "cancelled"
    """Stopped by the store owner: nothing more is queued, its deliveries not yet run are cancelled."""


class ReconcileMode(StrEnum):
    """A store's ``reconcile_mode`` setting: what the reconciler does about drift."""

    OFF = "off"
    """Scheduled runs skip the store (a run asked for on demand still reports)."""
    REPORT = "report"
    """Record drift and change nothing."""
    REPAIR = "repair"
    """Give back roles a paying member lost; take back roles we granted whose grant has ended."""


class ReconcileStatus(StrEnum):
    """Where one reconciliation run of one server stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    """Discord refused to list the server's members: ``reason_code`` says why and what fixes it."""


class DriftKind(StrEnum):
    """A difference the reconciler found between what members bought and what they hold."""

    ROLE_MISSING = "role_missing"
    """An active grant's role, which we had given, is no longer on the member (removed by hand, or they
    left and rejoined)."""
    ROLE_NOT_ENDED = "role_not_ended"
    """A role we granted is still on the member although nothing active grants it any more."""
    MEMBER_ABSENT = "member_absent"
    """A member with an active grant is not in the server."""


class ReasonCode(StrEnum):
    """Why something failed or waits. ``.fix`` says in plain words what to do about it."""

    # -- Discord refused a role change: a person must fix something -------------------------------------
    ROLE_ABOVE_BOT = "role_above_bot"
    MISSING_MANAGE_ROLES = "missing_manage_roles"
    MANAGED_ROLE = "managed_role"
    EVERYONE_ROLE = "everyone_role"
    MISSING_PERMISSIONS = "missing_permissions"
    PERMISSIONS_UNDIAGNOSED = "permissions_undiagnosed"
    ROLE_DELETED = "role_deleted"
    MEMBER_NOT_IN_GUILD = "member_not_in_guild"
    BOT_NOT_IN_GUILD = "bot_not_in_guild"
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 (a reason, not a secret)
    DISCORD_REJECTED = "discord_rejected"
    DISCORD_REFUSED = "discord_refused"
    # -- waiting, or Discord busy -----------------------------------------------------------------------
    RATE_LIMITED = "rate_limited"
    PACED = "paced"
    DISCORD_UNAVAILABLE = "discord_unavailable"
    PLATFORM_TOKEN_REVOKED = "platform_token_revoked"  # noqa: S105
    WAITING_FOR_CUSTOMER = "waiting_for_customer"
    NO_BOT = "no_bot"
    BOT_DISABLED = "bot_disabled"
    TOKEN_UNREADABLE = "token_unreadable"  # noqa: S105
    # -- ended without a role change --------------------------------------------------------------------
    ORDER_REVOKED = "order_revoked"
    CLAIM_EXPIRED = "claim_expired"
    STILL_GRANTED = "still_granted"
    GUILD_UNLINKED = "guild_unlinked"
    MAPPING_REMOVED = "mapping_removed"
    GRANT_EXPIRED = "grant_expired"
    OUTRANKED = "outranked"
    TIER_REPLACED = "tier_replaced"
    KEPT_ON_END = "kept_on_end"
    BACKFILL_CANCELLED = "backfill_cancelled"
    # -- expiry reminders -------------------------------------------------------------------------------
    DMS_CLOSED = "dms_closed"
    # -- purchase notifications -------------------------------------------------------------------------
    MISSING_CHANNEL_PERMISSIONS = "missing_channel_permissions"
    CHANNEL_DELETED = "channel_deleted"
    CHANNEL_NOT_FOUND = "channel_not_found"
    NOT_TEXT_CHANNEL = "not_text_channel"
    NO_NOTIFICATION_CHANNEL = "no_notification_channel"
    # -- Linked Roles (role connections) ----------------------------------------------------------------
    SCOPE_MISSING = "scope_missing"
    AUTHORIZATION_REVOKED = "authorization_revoked"
    ACCOUNT_UNLINKED = "account_unlinked"
    # -- diagnostics only -------------------------------------------------------------------------------
    PLATFORM_BOT_UNAVAILABLE = "platform_bot_unavailable"
    COMMANDS_MISSING = "commands_missing"
    NO_INTERACTIONS = "no_interactions"
    NO_RECENT_INTERACTIONS = "no_recent_interactions"
    NO_GUILD_LINKED = "no_guild_linked"
    MISSING_CREATE_INVITE = "missing_create_invite"
    # -- reconciliation runs ----------------------------------------------------------------------------
    MEMBERS_INTENT_MISSING = "members_intent_missing"

    @property
    def fix(self) -> str:
        """What to do, in words for the store owner (the row's own ``reason`` may name the role too)."""
        return FIXES[self]


FIXES: dict[ReasonCode, str] = {
    ReasonCode.MEMBERS_INTENT_MISSING: "Reading the server's member list needs the Server Members Intent: "
    "switch it on for the bot in the Discord Developer Portal (Bot → Privileged Gateway Intents), then "
    "start the reconciliation again.",
    ReasonCode.ROLE_ABOVE_BOT: "Move the bot's role above the role in Server Settings → Roles, then retry.",
    ReasonCode.MISSING_MANAGE_ROLES: "Give the bot's role the Manage Roles permission, then retry.",
    ReasonCode.MANAGED_ROLE: "The role belongs to an integration (boosts, a bot); map another role.",
    ReasonCode.EVERYONE_ROLE: "@everyone belongs to every member; map another role.",
    ReasonCode.MISSING_PERMISSIONS: "Discord refused although the bot's roles look right: check Manage Roles "
    "and the role order in Server Settings → Roles, then retry.",
    ReasonCode.PERMISSIONS_UNDIAGNOSED: "Discord refused for missing permissions and the server's roles "
    "could not be read yet to tell why; it is looked at again by itself. If it ends failed: give the "
    "bot Manage Roles, move its role above the role, then retry.",
    ReasonCode.ROLE_DELETED: "Map the package to an existing role, then retry.",
    ReasonCode.MEMBER_NOT_IN_GUILD: "Ask the customer to join the server, then run /claim (or retry).",
    ReasonCode.BOT_NOT_IN_GUILD: "Invite the bot again, keeping Manage Roles, then retry.",
    ReasonCode.TOKEN_REVOKED: "Save a new bot token; the store's bot is off until then, its other "
    "deliveries wait (bot_disabled) and run once it is saved.",
    ReasonCode.DISCORD_REJECTED: "Discord refused; the reason quotes it. Fix what it names, then retry.",
    ReasonCode.DISCORD_REFUSED: "Discord refused to list the server's roles; the reason quotes it.",
    ReasonCode.RATE_LIMITED: "Nothing to do: Discord asked us to slow down, it goes out when Discord allows.",
    ReasonCode.PACED: "Nothing to do: our client spaces requests to stay within the limits Discord "
    "announced (Discord refused nothing); it goes out in a few seconds.",
    ReasonCode.DISCORD_UNAVAILABLE: "Discord kept failing; nothing is wrong with your setup. Retry later.",
    ReasonCode.PLATFORM_TOKEN_REVOKED: "The platform's shared bot token was refused; the platform's "
    "operator must set a new one. It is delivered once that works again.",
    ReasonCode.WAITING_FOR_CUSTOMER: "Nothing to do: waiting for the customer to link Discord or run /claim.",
    ReasonCode.NO_BOT: "Save the store's bot; waiting deliveries run once it is saved.",
    ReasonCode.BOT_DISABLED: "Switch the store's bot on (or save it again); waiting deliveries then run.",
    ReasonCode.TOKEN_UNREADABLE: "The saved bot token cannot be decrypted any more: save the bot token "
    "again.",
    ReasonCode.ORDER_REVOKED: "Nothing to do: the order was revoked before the role was delivered.",
    ReasonCode.CLAIM_EXPIRED: "The customer did not claim in time; retry it to give them another window.",
    ReasonCode.STILL_GRANTED: "Nothing to do: the role was kept because another purchase still grants it.",
    ReasonCode.GUILD_UNLINKED: "The server was unlinked after this was queued; relinking does not bring "
    "it back. Change the member's roles by hand if they should still change.",
    ReasonCode.MAPPING_REMOVED: "The package is no longer mapped to this role; map it again for new "
    "purchases, or give the role by hand.",
    ReasonCode.GRANT_EXPIRED: "Nothing to do: the subscription or fixed-term purchase ended (its expiry "
    "and grace period passed) before the role was delivered.",
    ReasonCode.OUTRANKED: "Nothing to do: the member holds a higher tier of the same group; this role "
    "is given back by itself if the higher one ends.",
    ReasonCode.TIER_REPLACED: "Nothing to do: the member moved to a higher tier of the same group, which "
    "replaces this role.",
    ReasonCode.KEPT_ON_END: "Nothing to do: the mapping keeps its role when a purchase ends (keep_on_end).",
    ReasonCode.BACKFILL_CANCELLED: "The backfill that queued it was cancelled; start the backfill again "
    "or give the role by hand.",
    ReasonCode.DMS_CLOSED: "The member does not accept direct messages from the bot (privacy settings, "
    "or no shared server); the host's grant_expiring signal still fired.",
    ReasonCode.MISSING_CHANNEL_PERMISSIONS: "Allow the bot's role View Channel, Send Messages and Embed "
    "Links in the notification channel, or choose another channel.",
    ReasonCode.CHANNEL_DELETED: "The notification channel no longer exists; choose another one.",
    ReasonCode.CHANNEL_NOT_FOUND: "Copy the id of a text channel in a server linked to this store.",
    ReasonCode.NOT_TEXT_CHANNEL: "Choose a text channel: categories and forums cannot hold messages.",
    ReasonCode.NO_NOTIFICATION_CHANNEL: "Choose the channel purchase notifications go to.",
    ReasonCode.SCOPE_MISSING: "The customer linked Discord before Linked Roles were on: they link Discord "
    "again (allowing role connections), and their connection is pushed then.",
    ReasonCode.AUTHORIZATION_REVOKED: "The customer removed the store's application in Discord (or the "
    "authorisation ran out): they link Discord again, and their connection is pushed then.",
    ReasonCode.ACCOUNT_UNLINKED: "Nothing to do: the customer unlinked Discord before their connection "
    "was pushed.",
    ReasonCode.PLATFORM_BOT_UNAVAILABLE: "The platform's shared bot is not configured any more; save a bot "
    "of your own.",
    ReasonCode.COMMANDS_MISSING: "Register the slash commands again.",
    ReasonCode.NO_INTERACTIONS: "Set the Interactions Endpoint URL in the Discord Developer Portal.",
    ReasonCode.NO_RECENT_INTERACTIONS: "Check the Interactions Endpoint URL in the Discord Developer Portal.",
    ReasonCode.NO_GUILD_LINKED: "Link your Discord server: run /link with a link code in the server.",
    ReasonCode.MISSING_CREATE_INVITE: "Give the bot's role Create Invite, so customers can be added as they "
    "link.",
}

_C = ReasonCode
DELIVERY_CODES: frozenset[ReasonCode] = frozenset(
    {
        _C.ROLE_ABOVE_BOT,
        _C.MISSING_MANAGE_ROLES,
        _C.MANAGED_ROLE,
        _C.EVERYONE_ROLE,
        _C.MISSING_PERMISSIONS,
        _C.PERMISSIONS_UNDIAGNOSED,
        _C.ROLE_DELETED,
        _C.MEMBER_NOT_IN_GUILD,
        _C.BOT_NOT_IN_GUILD,
        _C.TOKEN_REVOKED,
        _C.DISCORD_REJECTED,
        _C.RATE_LIMITED,
        _C.PACED,
        _C.DISCORD_UNAVAILABLE,
        _C.PLATFORM_TOKEN_REVOKED,
        _C.WAITING_FOR_CUSTOMER,
        _C.NO_BOT,
        _C.BOT_DISABLED,
        _C.TOKEN_UNREADABLE,
        _C.ORDER_REVOKED,
        _C.CLAIM_EXPIRED,
        _C.STILL_GRANTED,
        _C.GUILD_UNLINKED,
        _C.MAPPING_REMOVED,
        _C.GRANT_EXPIRED,
        _C.OUTRANKED,
        _C.TIER_REPLACED,
        _C.KEPT_ON_END,
        _C.BACKFILL_CANCELLED,
    }
)
"""Codes a delivery row can carry (the deliveries API's ``reason_code``)."""

NOTIFICATION_CODES: frozenset[ReasonCode] = frozenset(
    {
        _C.NO_BOT,
        _C.TOKEN_UNREADABLE,
        _C.TOKEN_REVOKED,
        _C.RATE_LIMITED,
        _C.PACED,
        _C.DISCORD_UNAVAILABLE,
        _C.MISSING_CHANNEL_PERMISSIONS,
        _C.CHANNEL_DELETED,
        _C.DISCORD_REJECTED,
        _C.GUILD_UNLINKED,
    }
)
"""Codes a purchase notification can carry."""

REMINDER_CODES: frozenset[ReasonCode] = frozenset(
    {
        _C.DMS_CLOSED,
        _C.WAITING_FOR_CUSTOMER,
        _C.NO_BOT,
        _C.BOT_DISABLED,
        _C.TOKEN_UNREADABLE,
        _C.TOKEN_REVOKED,
        _C.DISCORD_UNAVAILABLE,
        _C.DISCORD_REJECTED,
    }
)
"""Codes a grant's expiry reminder can carry when its direct message was not sent."""

RECONCILE_CODES: frozenset[ReasonCode] = frozenset(
    {
        _C.MEMBERS_INTENT_MISSING,
        _C.BOT_NOT_IN_GUILD,
        _C.TOKEN_REVOKED,
        _C.TOKEN_UNREADABLE,
        _C.NO_BOT,
        _C.BOT_DISABLED,
        _C.DISCORD_REJECTED,
        _C.GUILD_UNLINKED,
    }
)
"""Why a reconciliation run failed (its ``reason_code``)."""

CONNECTION_CODES: frozenset[ReasonCode] = frozenset(
    {
        _C.SCOPE_MISSING,
        _C.AUTHORIZATION_REVOKED,
        _C.ACCOUNT_UNLINKED,
        _C.NO_BOT,
        _C.RATE_LIMITED,
        _C.PACED,
        _C.DISCORD_UNAVAILABLE,
        _C.DISCORD_REJECTED,
    }
)
"""Codes a customer's Linked Roles connection can carry when it was not pushed."""

CHECK_CODES: frozenset[ReasonCode] = frozenset(ReasonCode) - {
    _C.MEMBERS_INTENT_MISSING,
    _C.PERMISSIONS_UNDIAGNOSED,
    _C.RATE_LIMITED,
    _C.PACED,
    _C.PLATFORM_TOKEN_REVOKED,
    _C.WAITING_FOR_CUSTOMER,
    _C.ORDER_REVOKED,
    _C.CLAIM_EXPIRED,
    _C.STILL_GRANTED,
    _C.GUILD_UNLINKED,
    _C.MAPPING_REMOVED,
    _C.GRANT_EXPIRED,
    _C.OUTRANKED,
    _C.TIER_REPLACED,
    _C.KEPT_ON_END,
    _C.BACKFILL_CANCELLED,
    _C.DMS_CLOSED,
    _C.CHANNEL_DELETED,
    _C.MISSING_PERMISSIONS,
    _C.MEMBER_NOT_IN_GUILD,
    _C.SCOPE_MISSING,
    _C.AUTHORIZATION_REVOKED,
    _C.ACCOUNT_UNLINKED,
}
"""Codes a diagnostics check, a notification-channel check or a server role's ``assignable`` can carry."""


ROLE_CODES: frozenset[ReasonCode] = frozenset(
    {_C.EVERYONE_ROLE, _C.MANAGED_ROLE, _C.MISSING_MANAGE_ROLES, _C.ROLE_ABOVE_BOT}
)
"""Why the bot cannot give a server role, by the role order alone (a server role's ``reason_code``)."""


def schema_enum(codes: frozenset[ReasonCode]) -> list[str]:
    """``codes`` as an OpenAPI ``enum``, in catalogue order."""
    return [str(code) for code in ReasonCode if code in codes]


def enum_values(kind: type[StrEnum], *, leaving_out: Collection[StrEnum] = ()) -> list[str]:
    """A vocabulary as an OpenAPI ``enum``: its members' values in the order they are declared."""
    return [str(member) for member in kind if member not in leaving_out]


def scopes(code: ReasonCode) -> list[str]:
    """Where ``code`` can appear, in words for the docs' table."""
    return [
        name
        for name, members in (
            ("deliveries", DELIVERY_CODES),
            ("notifications", NOTIFICATION_CODES),
            ("reminders", REMINDER_CODES),
            ("role connections", CONNECTION_CODES),
            ("checks", CHECK_CODES),
            ("reconcile runs", RECONCILE_CODES),
        )
        if code in members
    ]


def markdown_table() -> str:
    """The reason-code table of docs/troubleshooting.md, one row per member, in catalogue order."""
    lines = ["| `reason_code` | Where | What to do |", "|---|---|---|"]
    lines += [f"| `{code}` | {', '.join(scopes(code))} | {code.fix} |" for code in ReasonCode]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
