"""The tables, built on the host application's Flask-SQLAlchemy ``db``.

Columns are declared once on plain mixin classes, so services can be typed against them, and
:func:`define_models` maps them onto ``db.Model`` when the extension is initialised. Our tables then live in
the host's own metadata: the host's ``flask db migrate`` sees them as known and never proposes to drop them.

Conventions:
- every table is ``discord_roles_*`` and every constraint and index carries an explicit name wrapped in
  :func:`sqlalchemy.sql.elements.conv`, so the host's naming convention cannot rename it and the migration in
  ``flask_discord_roles/migrations`` matches whatever convention the host uses;
- the host's ids (store, customer, order, package) are strings, as are Discord snowflakes;
- times are stored in UTC and always come back timezone-aware, on SQLite too;
- no foreign keys to the host's tables: we cannot know them, and a host deleting its rows must not fail.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.sql.elements import conv

from flask_discord_roles._runtime.sql_functions import install_with
from flask_discord_roles.codes import (
    BackfillStatus,
    DeliveryMode,
    GrantStatus,
    ReconcileMode,
    ReconcileStatus,
    SendStatus,
    Status,
)

HOST_ID = sa.String(64)
"""Ids that belong to the host (store, customer, order, package): opaque strings."""

SNOWFLAKE = sa.String(20)
"""Discord ids: unsigned 64-bit integers, kept as decimal text exactly as Discord sends them."""

# Deliveries can outgrow a 32-bit id on a large platform; SQLite only auto-increments INTEGER keys.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Compared byte by byte, so that all keys starting "order:<id>:" sit together in the unique index and
# a range finds them (SQLite's default BINARY collation does this already; PostgreSQL's default may not).
IDEMPOTENCY_KEY = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")

SCHEDULED = "status = 'pending' AND next_attempt_at IS NOT NULL"
"""A delivery a runner will run when ``next_attempt_at`` comes: the rows of the ``due`` index."""

WAITING = "status = 'pending' AND next_attempt_at IS NULL AND expires_at IS NOT NULL"
"""A grant waiting for its customer (to link, or to /claim) that can expire: the ``expiry`` index."""

SETTLED = "status <> 'pending'"
"""A delivery that is done, one way or another: the ``store_status`` index."""

GRANT_ENDS = "status = 'active' AND ends_at IS NOT NULL"
"""An active time-limited grant that ends at ``ends_at``: the rows of the grants' ``ending`` index."""

GRANT_REMINDS = "status = 'active' AND remind_at IS NOT NULL AND reminded_at IS NULL"
"""An active grant whose expiry reminder is still to go: the rows of the grants' ``reminders`` index."""

PENDING: sa.ColumnClause[str] = sa.literal_column("'pending'", sa.String)
"""``'pending'`` written into a query, not bound: PostgreSQL's generic plan for a prepared statement
(psycopg prepares after a few runs) can only choose the partial indexes above if it sees the value."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC that is always read back timezone-aware.

    PostgreSQL keeps the zone (``timestamptz``); SQLite drops it, so values are normalised to UTC on the
    way in and re-labelled UTC on the way out. Naive datetimes are refused: they are a bug waiting to happen.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a flask-discord-roles column; use UTC-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class _Columns:
    """Typing help: the mapped subclasses get SQLAlchemy's keyword constructor."""

    if TYPE_CHECKING:

        def __init__(self, **columns: Any) -> None: ...


class StoreBot(_Columns):
    """A store's own Discord bot: credentials (token encrypted), state and the counters behind its stats."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    application_id: Mapped[str] = mapped_column(SNOWFLAKE)
    public_key: Mapped[str] = mapped_column(sa.String(64))
    token_ciphertext: Mapped[str] = mapped_column(sa.Text)
    # The application's OAuth2 client secret, when the store wants customers to link through its own app.
    client_secret_ciphertext: Mapped[str | None] = mapped_column(sa.Text)
    bot_user_id: Mapped[str | None] = mapped_column(SNOWFLAKE)
    bot_name: Mapped[str | None] = mapped_column(sa.String(100))
    bot_avatar: Mapped[str | None] = mapped_column(sa.String(64))
    is_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # Why the bot was switched off by us rather than by the owner, e.g. "token_revoked".
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(64))
    slash_commands_registered: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # The store uses the platform's shared bot: this row holds its counters and delivery switch, and
    # the runner uses DISCORD_ROLES_BOT_TOKEN rather than a token of the store's.
    uses_platform_bot: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    last_interaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total_interactions: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    total_roles_assigned: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    total_roles_removed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    total_errors: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_bots")),
            sa.UniqueConstraint("store_id", name=conv("uq_discord_roles_bots_store_id")),
            sa.Index(conv("ix_discord_roles_bots_application_id"), "application_id"),
        )

    def __repr__(self) -> str:
        return (
            f"<StoreBot store_id={self.store_id!r} application_id={self.application_id!r} "
            f"enabled={self.is_enabled!r}>"
        )


class LinkedGuild(_Columns):
    """A Discord server linked to a store with a one-time code."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    guild_id: Mapped[str] = mapped_column(SNOWFLAKE)
    name: Mapped[str | None] = mapped_column(sa.String(100))
    icon: Mapped[str | None] = mapped_column(sa.String(64))
    member_count: Mapped[int | None] = mapped_column(sa.Integer)
    details_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    linked_by_user_id: Mapped[str | None] = mapped_column(SNOWFLAKE)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The first delivery id made under this link: older rows belong to an earlier link of the server,
    # which the owner cut off by unlinking, and may never change roles there again (services.role_gate).
    # NULL for links made before the column existed: every row counts as theirs.
    deliveries_from_id: Mapped[int | None] = mapped_column(BIG_ID)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_guilds")),
            sa.UniqueConstraint("store_id", "guild_id", name=conv("uq_discord_roles_guilds_store_guild")),
            # The platform's shared bot finds the store from the guild an interaction comes from.
            sa.Index(conv("ix_discord_roles_guilds_guild_id"), "guild_id"),
        )

    def __repr__(self) -> str:
        return f"<LinkedGuild store_id={self.store_id!r} guild_id={self.guild_id!r}>"


class LinkCode(_Columns):
    """A one-time code a store owner types as ``/link code:…``. Only its hash is stored."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_in_guild_id: Mapped[str | None] = mapped_column(SNOWFLAKE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_link_codes")),
            sa.UniqueConstraint("code_hash", name=conv("uq_discord_roles_link_codes_code_hash")),
            sa.Index(conv("ix_discord_roles_link_codes_store_id"), "store_id"),
        )

    def __repr__(self) -> str:
        return f"<LinkCode store_id={self.store_id!r} expires_at={self.expires_at!r}>"


class RoleMapping(_Columns):
    """Buying ``package_id`` grants ``role_id`` in ``guild_id``; many-to-many by repeating rows."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    package_id: Mapped[str] = mapped_column(HOST_ID)
    guild_id: Mapped[str] = mapped_column(SNOWFLAKE)
    role_id: Mapped[str] = mapped_column(SNOWFLAKE)
    # Cached for listings; Discord stays the truth for the current name.
    role_name: Mapped[str | None] = mapped_column(sa.String(100))
    # Tier groups: within one group (in one server) a member holds only the role of their
    # highest-ranked active grant. NULL: not in a group.
    tier_group: Mapped[str | None] = mapped_column(sa.String(64))
    tier_rank: Mapped[int | None] = mapped_column(sa.Integer)
    # Sticky: the role stays when the purchase ends (expiry or refund).
    keep_on_end: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_role_mappings")),
            sa.CheckConstraint(
                "(tier_group IS NULL) = (tier_rank IS NULL)",
                name=conv("ck_discord_roles_role_mappings_tier"),
            ),
            sa.UniqueConstraint(
                "store_id",
                "package_id",
                "guild_id",
                "role_id",
                name=conv("uq_discord_roles_role_mappings_package_role"),
            ),
            # Unlinking a guild deletes its mappings; listing a guild's mappings.
            sa.Index(conv("ix_discord_roles_role_mappings_store_guild"), "store_id", "guild_id"),
        )

    def __repr__(self) -> str:
        return (
            f"<RoleMapping store_id={self.store_id!r} package_id={self.package_id!r} "
            f"guild_id={self.guild_id!r} role_id={self.role_id!r}>"
        )


class DiscordAccount(_Columns):
    """A customer's linked Discord account in one store, with their OAuth tokens encrypted."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    customer_id: Mapped[str] = mapped_column(HOST_ID)
    discord_user_id: Mapped[str] = mapped_column(SNOWFLAKE)
    username: Mapped[str | None] = mapped_column(sa.String(100))
    global_name: Mapped[str | None] = mapped_column(sa.String(100))
    avatar: Mapped[str | None] = mapped_column(sa.String(64))
    access_token_ciphertext: Mapped[str | None] = mapped_column(sa.Text)
    refresh_token_ciphertext: Mapped[str | None] = mapped_column(sa.Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scopes: Mapped[str | None] = mapped_column(sa.String(255))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_accounts")),
            sa.UniqueConstraint("store_id", "customer_id", name=conv("uq_discord_roles_accounts_customer")),
            sa.UniqueConstraint(
                "store_id", "discord_user_id", name=conv("uq_discord_roles_accounts_discord_user")
            ),
        )

    def __repr__(self) -> str:
        return (
            f"<DiscordAccount store_id={self.store_id!r} customer_id={self.customer_id!r} "
            f"discord_user_id={self.discord_user_id!r}>"
        )


def _partial_index(name: str, where: str, *columns: str, unique: bool = False) -> sa.Index:
    """An index of only the rows ``where`` holds for, on PostgreSQL and SQLite (elsewhere, of all rows)."""
    return sa.Index(
        conv(name), *columns, unique=unique, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
    )


class Delivery(_Columns):
    """One role change for one customer in one guild: the unit of the delivery queue.

    ``status`` is ``pending``, ``completed``, ``failed`` or ``expired``; a pending row that a worker is
    running carries a lease (``leased_by`` / ``lease_expires_at``) so a killed worker's rows come back.
    ``idempotency_key`` is unique per store, which is what makes signalling the same order twice harmless.
    """

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    idempotency_key: Mapped[str] = mapped_column(IDEMPOTENCY_KEY)
    action: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16), default=Status.PENDING)
    source: Mapped[str] = mapped_column(sa.String(16))
    guild_id: Mapped[str] = mapped_column(SNOWFLAKE)
    role_id: Mapped[str] = mapped_column(SNOWFLAKE)
    discord_user_id: Mapped[str | None] = mapped_column(SNOWFLAKE)
    customer_id: Mapped[str | None] = mapped_column(HOST_ID)
    order_id: Mapped[str | None] = mapped_column(HOST_ID)
    package_id: Mapped[str | None] = mapped_column(HOST_ID)
    # The role's name when the row was queued, so listings and /check read well without asking Discord.
    role_name: Mapped[str | None] = mapped_column(sa.String(100))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    # When a worker may run it; NULL while it waits for the customer (to link Discord, or to /claim).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(sa.String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Removal provenance: did the member already hold the role before we added it, and has the order
    # that granted it been revoked? A role is only ever removed when we granted it and nothing else does.
    role_was_present: Mapped[bool | None] = mapped_column(sa.Boolean)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_deliveries")),
            sa.UniqueConstraint(
                "store_id",
                "idempotency_key",
                name=conv("uq_discord_roles_deliveries_idempotency_key"),
            ),
            sa.CheckConstraint(
                "action IN ('add', 'remove')", name=conv("ck_discord_roles_deliveries_action")
            ),
            sa.CheckConstraint(
                "status IN ('pending', 'completed', 'failed', 'expired')",
                name=conv("ck_discord_roles_deliveries_status"),
            ),
            sa.CheckConstraint(
                "source IN ('interaction', 'auto', 'manual')",
                name=conv("ck_discord_roles_deliveries_source"),
            ),
            # Every index here costs each checkout a page or more to write (on SQLite, a page to journal
            # and fsync), so each one earns its place, and the queue's indexes hold only the rows they
            # serve: a pending row is in exactly one of the first two, a settled row only in the third.
            # Workers: scheduled work in order, and expired leases coming back.
            _partial_index("ix_discord_roles_deliveries_due", SCHEDULED, "next_attempt_at", "id"),
            # Expiry sweep of grants still waiting for their customer.
            _partial_index("ix_discord_roles_deliveries_expiry", WAITING, "expires_at"),
            # Dashboards and the tenant API: a store's settled deliveries by status, newest first.
            _partial_index("ix_discord_roles_deliveries_store_status", SETTLED, "store_id", "status", "id"),
            # ... and all of them, newest first: the first page of a store's deliveries reads 51 entries
            # here. Without it the pages of a small store among large ones walk the whole table's ids.
            sa.Index(conv("ix_discord_roles_deliveries_store"), "store_id", "id"),
            # /claim and /check: what one Discord user is owed in one guild.
            sa.Index(conv("ix_discord_roles_deliveries_claim"), "store_id", "discord_user_id", "guild_id"),
            # Linking an account hands over the customer's queued rows; a customer's Discord section.
            sa.Index(conv("ix_discord_roles_deliveries_customer"), "store_id", "customer_id"),
            # An order's rows are found through the idempotency key's unique index, by the key's
            # "order:<id>:" prefix (services.order_rows), so they need no index of their own.
        )

    def __repr__(self) -> str:
        return (
            f"<Delivery id={self.id!r} {self.action} role_id={self.role_id!r} "
            f"guild_id={self.guild_id!r} status={self.status!r}>"
        )


class Grant(_Columns):
    """A package one customer holds for a time: a subscription's, or a fixed-term order's.

    Orders without ``expires_at`` or ``subscription_id`` have no row here: their deliveries are the
    whole record. The roles are given by the ``add`` deliveries of ``order_id`` (the order that started
    the grant); renewals move ``expires_at`` and ``last_order_id`` and change no role. ``ends_at`` is
    ``expires_at`` plus the store's grace period, kept in the row so the expiry sweep reads one index.
    """

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    customer_id: Mapped[str | None] = mapped_column(HOST_ID)
    discord_user_id: Mapped[str | None] = mapped_column(SNOWFLAKE)
    package_id: Mapped[str] = mapped_column(HOST_ID)
    subscription_id: Mapped[str | None] = mapped_column(HOST_ID)
    order_id: Mapped[str] = mapped_column(HOST_ID)
    last_order_id: Mapped[str] = mapped_column(HOST_ID)
    status: Mapped[str] = mapped_column(sa.String(16), default=GrantStatus.ACTIVE)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    renewals: Mapped[int] = mapped_column(sa.Integer, default=0)
    # The expiry reminder: when it is due, when it went, and why a DM could not go (it is not retried).
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_grants")),
            sa.UniqueConstraint(
                "store_id", "order_id", "package_id", name=conv("uq_discord_roles_grants_order")
            ),
            # NULLs are distinct: fixed-term orders without a subscription never collide here.
            sa.UniqueConstraint(
                "store_id", "subscription_id", "package_id", name=conv("uq_discord_roles_grants_subscription")
            ),
            sa.CheckConstraint("status IN ('active', 'ended')", name=conv("ck_discord_roles_grants_status")),
            # The expiry sweep and the reminders read only what is due, never the whole table.
            _partial_index("ix_discord_roles_grants_ending", GRANT_ENDS, "ends_at"),
            _partial_index("ix_discord_roles_grants_reminders", GRANT_REMINDS, "remind_at"),
            # A customer's grants (tenant API), and a Discord user's (/check).
            sa.Index(conv("ix_discord_roles_grants_customer"), "store_id", "customer_id"),
            sa.Index(conv("ix_discord_roles_grants_discord_user"), "store_id", "discord_user_id"),
            # order_revoked of a renewal's order finds its grant (the first order's is the unique key).
            sa.Index(conv("ix_discord_roles_grants_last_order"), "store_id", "last_order_id"),
        )

    def __repr__(self) -> str:
        return (
            f"<Grant id={self.id!r} store_id={self.store_id!r} package_id={self.package_id!r} "
            f"status={self.status!r} expires_at={self.expires_at!r}>"
        )


class Backfill(_Columns):
    """Granting one mapping to every customer who already holds its package, a batch at a time.

    The job queues ordinary deliveries (with the same idempotency keys the orders' own would have), at
    most a window of them unsettled at once so new purchases are not stuck behind it; ``cursor`` is how
    far it has read, so a killed worker's successor carries on where it stopped.
    """

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    mapping_id: Mapped[int] = mapped_column(sa.Integer)
    package_id: Mapped[str] = mapped_column(HOST_ID)
    guild_id: Mapped[str] = mapped_column(SNOWFLAKE)
    role_id: Mapped[str] = mapped_column(SNOWFLAKE)
    status: Mapped[str] = mapped_column(sa.String(16), default=BackfillStatus.RUNNING)
    # Customers found; ``skipped`` of them already had the delivery (their order queued it): no item.
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    skipped: Mapped[int] = mapped_column(sa.Integer, default=0, server_default=sa.text("0"))
    cursor: Mapped[str | None] = mapped_column(sa.String(255))
    scan_done: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    leased_by: Mapped[str | None] = mapped_column(sa.String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_backfills")),
            sa.CheckConstraint(
                "status IN ('running', 'completed', 'cancelled')",
                name=conv("ck_discord_roles_backfills_status"),
            ),
            sa.Index(conv("ix_discord_roles_backfills_store"), "store_id", "id"),
            # One running backfill per mapping, even against two concurrent starts; the worker's list.
            _partial_index(
                "uq_discord_roles_backfills_running_mapping", "status = 'running'", "mapping_id", unique=True
            ),
        )

    def __repr__(self) -> str:
        return f"<Backfill id={self.id!r} store_id={self.store_id!r} mapping_id={self.mapping_id!r}>"


class BackfillItem(_Columns):
    """One customer a backfill found, and the delivery that gives (or gave) them the role."""

    backfill_id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint(
                "backfill_id", "delivery_id", name=conv("pk_discord_roles_backfill_items")
            ),
        )

    def __repr__(self) -> str:
        return f"<BackfillItem backfill_id={self.backfill_id!r} delivery_id={self.delivery_id!r}>"


class ReconcileRun(_Columns):
    """One pass of the reconciler over one server's members, a page at a time.

    ``cursor`` is the last member id read, so a run a crash interrupted carries on from there; ``drift``
    counts what was found by :class:`~flask_discord_roles.codes.DriftKind`, ``examples`` keeps a few of
    each, and ``repairs`` counts the deliveries queued to put things right (``repair`` mode).
    """

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    guild_id: Mapped[str] = mapped_column(SNOWFLAKE)
    mode: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default=ReconcileStatus.RUNNING)
    cursor: Mapped[str | None] = mapped_column(SNOWFLAKE)
    members_seen: Mapped[int] = mapped_column(sa.Integer, default=0)
    drift: Mapped[dict[str, int]] = mapped_column(sa.JSON, default=dict)
    examples: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    repairs: Mapped[int] = mapped_column(sa.Integer, default=0)
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    leased_by: Mapped[str | None] = mapped_column(sa.String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_reconcile_runs")),
            sa.CheckConstraint(
                "status IN ('running', 'completed', 'failed')",
                name=conv("ck_discord_roles_reconcile_runs_status"),
            ),
            sa.CheckConstraint(
                "mode IN ('off', 'report', 'repair')", name=conv("ck_discord_roles_reconcile_runs_mode")
            ),
            sa.Index(conv("ix_discord_roles_reconcile_runs_store"), "store_id", "id"),
            # One running pass per server at a time, even when two starts race.
            sa.Index(
                conv("uq_discord_roles_reconcile_runs_running"),
                "store_id",
                "guild_id",
                unique=True,
                postgresql_where=sa.text("status = 'running'"),
                sqlite_where=sa.text("status = 'running'"),
            ),
        )

    def __repr__(self) -> str:
        return f"<ReconcileRun id={self.id!r} store_id={self.store_id!r} guild_id={self.guild_id!r}>"


class RoleConnectionUpdate(_Columns):
    """A customer's Discord role connection (Linked Roles metadata) to push for a store's application.

    One row per store and Discord user, holding the latest values; leased and retried like a delivery.
    A newer change while one is pending just replaces ``metadata`` (only the latest state matters).
    """

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    discord_user_id: Mapped[str] = mapped_column(SNOWFLAKE)
    customer_id: Mapped[str | None] = mapped_column(HOST_ID)
    metadata_values: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default=SendStatus.PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(sa.String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_role_connections")),
            sa.UniqueConstraint(
                "store_id", "discord_user_id", name=conv("uq_discord_roles_role_connections_user")
            ),
            sa.CheckConstraint(
                "status IN ('pending', 'sent', 'failed')",
                name=conv("ck_discord_roles_role_connections_status"),
            ),
            sa.Index(conv("ix_discord_roles_role_connections_due"), "status", "next_attempt_at"),
        )

    def __repr__(self) -> str:
        return (
            f"<RoleConnectionUpdate store_id={self.store_id!r} discord_user_id={self.discord_user_id!r} "
            f"status={self.status!r}>"
        )


class StoreSettings(_Columns):
    """A store's Discord settings: the FluxStore list plus delivery mode and claim expiry."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    linking_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    require_link: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Add customers to the linked servers when they link (OAuth scope guilds.join).
    join_guilds_on_link: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    notifications_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    notification_channel_id: Mapped[str | None] = mapped_column(SNOWFLAKE)
    welcome_message: Mapped[str | None] = mapped_column(sa.Text)
    checkout_prompt: Mapped[str | None] = mapped_column(sa.Text)
    delivery_mode: Mapped[str] = mapped_column(sa.String(16), default=DeliveryMode.AUTOMATIC)
    # None means pending deliveries never expire.
    claims_expire: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    claim_expiry_hours: Mapped[int] = mapped_column(sa.Integer, default=72)
    # Time-limited grants keep their roles this long past expires_at (a failed renewal payment).
    grace_hours: Mapped[int] = mapped_column(sa.Integer, default=0, server_default=sa.text("0"))
    # Remind the member this many hours before a time-limited grant expires; None: no reminders.
    expiry_reminder_hours: Mapped[int | None] = mapped_column(sa.Integer)
    # Remind by direct message from the store's bot (the grant_expiring signal is sent either way).
    expiry_reminder_dm: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())
    # What the reconciler does about drift (codes.ReconcileMode).
    reconcile_mode: Mapped[str] = mapped_column(
        sa.String(16), default=ReconcileMode.OFF, server_default=sa.text("'off'")
    )
    # Keep each linked customer's Discord role connection (Linked Roles metadata) current.
    linked_roles_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_settings")),
            sa.UniqueConstraint("store_id", name=conv("uq_discord_roles_settings_store_id")),
            sa.CheckConstraint(
                "delivery_mode IN ('automatic', 'claim')",
                name=conv("ck_discord_roles_settings_delivery_mode"),
            ),
            sa.CheckConstraint(
                "claim_expiry_hours > 0",
                name=conv("ck_discord_roles_settings_claim_expiry_hours"),
            ),
            sa.CheckConstraint("grace_hours >= 0", name=conv("ck_discord_roles_settings_grace_hours")),
            sa.CheckConstraint(
                "reconcile_mode IN ('off', 'report', 'repair')",
                name=conv("ck_discord_roles_settings_reconcile_mode"),
            ),
            sa.CheckConstraint(
                "expiry_reminder_hours > 0",
                name=conv("ck_discord_roles_settings_expiry_reminder_hours"),
            ),
        )

    def __repr__(self) -> str:
        return f"<StoreSettings store_id={self.store_id!r} delivery_mode={self.delivery_mode!r}>"


class ApiToken(_Columns):
    """A tenant-API token: bound to one store, scoped, stored as a SHA-256 hash (shown once)."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    name: Mapped[str] = mapped_column(sa.String(100))
    # The first characters, so an owner can tell tokens apart without the secret.
    token_prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_api_tokens")),
            sa.UniqueConstraint("token_hash", name=conv("uq_discord_roles_api_tokens_token_hash")),
            sa.Index(conv("ix_discord_roles_api_tokens_store_id"), "store_id"),
        )

    def __repr__(self) -> str:
        return f"<ApiToken store_id={self.store_id!r} prefix={self.token_prefix!r} scopes={self.scopes!r}>"


class ProcessedInteraction(_Columns):
    """An interaction id a store already answered: Discord may deliver the same one twice.

    Keyed per store: the record of one store never makes another store's interaction look handled.
    """

    interaction_id: Mapped[str] = mapped_column(SNOWFLAKE, primary_key=True)
    store_id: Mapped[str] = mapped_column(HOST_ID, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("interaction_id", "store_id", name=conv("pk_discord_roles_interactions")),
            # Old ids are pruned by age.
            sa.Index(conv("ix_discord_roles_interactions_received_at"), "received_at"),
        )

    def __repr__(self) -> str:
        return f"<ProcessedInteraction {self.interaction_id!r} store_id={self.store_id!r}>"


class PurchaseNotification(_Columns):
    """One purchase message to post in a store's channel, queued so checkout never waits on Discord."""

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    order_id: Mapped[str] = mapped_column(HOST_ID)
    customer_id: Mapped[str | None] = mapped_column(HOST_ID)
    package_ids: Mapped[list[str]] = mapped_column(sa.JSON)
    # What the host called the packages at checkout, in package_ids' order (ids when it gave none).
    package_names: Mapped[list[str] | None] = mapped_column(sa.JSON)
    # The buyer's Discord id when known at checkout, for a mention that does not ping.
    discord_user_id: Mapped[str | None] = mapped_column(SNOWFLAKE)
    channel_id: Mapped[str] = mapped_column(SNOWFLAKE)
    status: Mapped[str] = mapped_column(sa.String(16), default=SendStatus.PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    leased_by: Mapped[str | None] = mapped_column(sa.String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_notifications")),
            sa.UniqueConstraint("store_id", "order_id", name=conv("uq_discord_roles_notifications_order")),
            sa.CheckConstraint(
                "status IN ('pending', 'sent', 'failed')",
                name=conv("ck_discord_roles_notifications_status"),
            ),
            sa.Index(conv("ix_discord_roles_notifications_due"), "status", "next_attempt_at"),
        )

    def __repr__(self) -> str:
        return f"<PurchaseNotification store_id={self.store_id!r} order_id={self.order_id!r}>"


class ClaimReply(_Columns):
    """A deferred ``/claim`` answer: the interaction's @original message is edited once its roles settle.

    Leased and retried like a delivery. The interaction token lets anyone edit the message for 15
    minutes, so it is stored encrypted and never shown.
    """

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(HOST_ID)
    application_id: Mapped[str] = mapped_column(SNOWFLAKE)
    token_ciphertext: Mapped[str] = mapped_column(sa.Text)
    # The deliveries this /claim made due, and what it found it could not deliver (already explained).
    delivery_ids: Mapped[list[int]] = mapped_column(sa.JSON)
    notes: Mapped[list[str] | None] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default=SendStatus.PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    leased_by: Mapped[str | None] = mapped_column(sa.String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Past this the answer is sent even if some roles are still queued: the token dies at 15 minutes.
    answer_by: Mapped[datetime] = mapped_column(UTCDateTime)
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            sa.PrimaryKeyConstraint("id", name=conv("pk_discord_roles_claim_replies")),
            sa.CheckConstraint(
                "status IN ('pending', 'sent', 'failed')",
                name=conv("ck_discord_roles_claim_replies_status"),
            ),
            sa.Index(conv("ix_discord_roles_claim_replies_due"), "status", "next_attempt_at"),
        )

    def __repr__(self) -> str:
        return f"<ClaimReply id={self.id!r} store_id={self.store_id!r} status={self.status!r}>"


_TABLES: dict[str, tuple[type[Any], str]] = {
    "StoreBot": (StoreBot, "discord_roles_bots"),
    "LinkedGuild": (LinkedGuild, "discord_roles_guilds"),
    "LinkCode": (LinkCode, "discord_roles_link_codes"),
    "RoleMapping": (RoleMapping, "discord_roles_role_mappings"),
    "DiscordAccount": (DiscordAccount, "discord_roles_accounts"),
    "Delivery": (Delivery, "discord_roles_deliveries"),
    "StoreSettings": (StoreSettings, "discord_roles_settings"),
    "ApiToken": (ApiToken, "discord_roles_api_tokens"),
    "ProcessedInteraction": (ProcessedInteraction, "discord_roles_interactions"),
    "PurchaseNotification": (PurchaseNotification, "discord_roles_notifications"),
    "ClaimReply": (ClaimReply, "discord_roles_claim_replies"),
    "Grant": (Grant, "discord_roles_grants"),
    "Backfill": (Backfill, "discord_roles_backfills"),
    "BackfillItem": (BackfillItem, "discord_roles_backfill_items"),
    "ReconcileRun": (ReconcileRun, "discord_roles_reconcile_runs"),
    "RoleConnectionUpdate": (RoleConnectionUpdate, "discord_roles_role_connections"),
}


@dataclass(frozen=True)
class Models:
    """The mapped classes for one ``db``; each is a subclass of the column mixin it is typed as."""

    StoreBot: type[StoreBot]
    LinkedGuild: type[LinkedGuild]
    LinkCode: type[LinkCode]
    RoleMapping: type[RoleMapping]
    DiscordAccount: type[DiscordAccount]
    Delivery: type[Delivery]
    StoreSettings: type[StoreSettings]
    ApiToken: type[ApiToken]
    ProcessedInteraction: type[ProcessedInteraction]
    PurchaseNotification: type[PurchaseNotification]
    ClaimReply: type[ClaimReply]
    Grant: type[Grant]
    Backfill: type[Backfill]
    BackfillItem: type[BackfillItem]
    ReconcileRun: type[ReconcileRun]
    RoleConnectionUpdate: type[RoleConnectionUpdate]

    @property
    def tables(self) -> list[sa.Table]:
        """Our tables, in the host's metadata."""
        return [getattr(self, name).__table__ for name in _TABLES]


_models_by_db: weakref.WeakKeyDictionary[SQLAlchemy, Models] = weakref.WeakKeyDictionary()


def define_models(db: SQLAlchemy) -> Models:
    """Map our tables onto ``db.Model`` once per ``db`` and return the mapped classes.

    Calling it again with the same ``db`` (several apps sharing one ``db``) returns the same classes.
    Class names carry a ``DiscordRoles`` prefix so they cannot clash with the host's own models in the
    declarative registry.
    """
    existing = _models_by_db.get(db)
    if existing is not None:
        return existing
    mapped: dict[str, type[Any]] = {}
    for name, (mixin, table_name) in _TABLES.items():
        mapped[name] = type(
            f"DiscordRoles{name}",
            (mixin, db.Model),
            {"__tablename__": table_name, "__module__": __name__},
        )
    models = Models(**mapped)
    install_with(models.Delivery.__table__)  # type: ignore[attr-defined]
    _models_by_db[db] = models
    return models
