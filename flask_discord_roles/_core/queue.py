"""Putting deliveries on the queue: a few INSERTs in the host's transaction, never a network call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flask_discord_roles._core.notifications import queue_notification
from flask_discord_roles._core.order_rows import of_order, order_key_prefix
from flask_discord_roles._core.order_statements import NOTIFICATION, order_parameters, order_statements
from flask_discord_roles._core.provenance import active_grant_exists
from flask_discord_roles._core.role_gate import allowed
from flask_discord_roles._core.settings import QueueSettings, queue_settings, settings_columns
from flask_discord_roles._runtime.models import Delivery, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import ReasonCode
from flask_discord_roles.discord.snowflake import is_snowflake
from flask_discord_roles.errors import ValidationError
from flask_discord_roles.orders import OrderEvent


@dataclass
class Queued:
    """What one call put on the queue: rows created, those to run as soon as the host commits."""

    created: list[int] = field(default_factory=list)
    due: list[int] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)


def order_delivery_key(order_id: str, package_id: str, guild_id: str, role_id: str) -> str:
    """What makes one order's delivery of one role unique: the same order signalled again matches it."""
    return f"{order_key_prefix(order_id, 'add')}{package_id}:{guild_id}:{role_id}"


def order_removal_key(order_id: str, guild_id: str, role_id: str) -> str:
    """What makes a revoked order's removal of one role unique: revoking twice queues it once."""
    return f"{order_key_prefix(order_id, 'remove')}{guild_id}:{role_id}"


def enqueue_order(state: DiscordRolesState, event: OrderEvent, *, now: datetime | None = None) -> Queued:
    """Queue an ``add`` delivery for every role mapped to every package of a completed order.

    Runs in the host's session and transaction; the host commits. Rows created by an earlier signal of
    the same order are left alone. Rows whose Discord user is known and whose store delivers
    automatically are due at once; the others wait (``next_attempt_at`` NULL) for the customer to link
    Discord or run ``/claim``. Also queues the store's purchase notification when it has them on.
    """
    now = now or utcnow()
    connection = state.db.session.connection()
    statements = order_statements(state.models, connection.dialect)
    if statements is None:
        return _enqueue_row_by_row(state, connection, event, now)
    queued = Queued()
    parameters = order_parameters(
        store_id=event.store_id,
        order_id=event.order_id,
        customer_id=event.customer_id,
        discord_user_id=event.discord_user_id,
        package_ids=list(event.package_ids),
        package_names=[event.package_names.get(package, package) for package in event.package_ids],
        now=now,
    )
    for kind, row_id, due in statements.run(connection, parameters):
        if kind == NOTIFICATION:
            queued.notifications.append(row_id)
            continue
        queued.created.append(row_id)
        if due:
            queued.due.append(row_id)
    return queued


def _enqueue_row_by_row(
    state: DiscordRolesState, connection: sa.Connection, event: OrderEvent, now: datetime
) -> Queued:
    """:func:`enqueue_order` for databases without :func:`order_statements`: read, then INSERT rows."""
    queued = Queued()
    mappings: list[Any] = []
    settings = None
    if event.package_ids:
        mapping, store = state.models.RoleMapping, state.models.StoreSettings
        found = connection.execute(
            sa.select(
                mapping.package_id,
                mapping.guild_id,
                mapping.role_id,
                mapping.role_name,
                *settings_columns(store),
            )
            .select_from(mapping)
            .outerjoin(store, store.store_id == mapping.store_id)
            .where(mapping.store_id == event.store_id, mapping.package_id.in_(event.package_ids))
            .order_by(mapping.id)
        ).all()
        mappings = [row[:4] for row in found]
        if found and found[0][4] is not None:
            settings = QueueSettings(*found[0][4:])
        elif found:
            settings = QueueSettings()
    if settings is None:
        settings = queue_settings(state, event.store_id)
    discord_user_id = event.discord_user_id or _linked_discord_user(state, event)
    notification = queue_notification(state, connection, event, settings, discord_user_id, now)
    if notification is not None:
        queued.notifications.append(notification)
    if not mappings:
        return queued
    due = now if (discord_user_id and settings.delivery_mode == "automatic") else None
    expires_at = now + timedelta(hours=settings.claim_expiry_hours) if settings.claims_expire else None
    rows: list[dict[str, Any]] = [
        {
            "store_id": event.store_id,
            "idempotency_key": order_delivery_key(event.order_id, package_id, guild_id, role_id),
            "action": "add",
            "status": "pending",
            "source": "auto",
            "guild_id": guild_id,
            "role_id": role_id,
            "role_name": role_name,
            "discord_user_id": discord_user_id,
            "customer_id": event.customer_id,
            "order_id": event.order_id,
            "package_id": package_id,
            "attempts": 0,
            "next_attempt_at": due,
            "expires_at": expires_at,
            "created_at": now,
            "updated_at": now,
        }
        for package_id, guild_id, role_id, role_name in mappings
    ]
    queued.created = _insert_new(state, rows)
    if due is not None:
        queued.due = list(queued.created)
    return queued


def revoke_order(state: DiscordRolesState, event: OrderEvent, *, now: datetime | None = None) -> Queued:
    """An order no longer entitles its buyer: cancel what was not delivered, queue safe removals.

    In the host's session. ``event.package_ids`` narrows the revocation to those packages (one item of
    an order); empty means the whole order. A role is queued for removal only if this order's delivery
    granted it (the member did not hold it before) and no other active grant of it remains; the runner
    checks the second rule again just before removing. Revoking twice queues nothing new.
    """
    queued = Queued()
    now = now or utcnow()
    session = state.db.session
    delivery = state.models.Delivery
    query = sa.select(delivery).where(
        *of_order(delivery, event.store_id, event.order_id, session.get_bind().dialect, action="add"),
        delivery.revoked_at.is_(None),
    )
    if event.package_ids:
        query = query.where(delivery.package_id.in_(event.package_ids))
    grants = list(session.scalars(query.order_by(delivery.id).with_for_update()))
    granted_by_this_order: dict[tuple[str, str, str], Delivery] = {}
    for grant in grants:
        grant.revoked_at = now
        if grant.status == "pending" and grant.lease_expires_at is not None and grant.lease_expires_at > now:
            # A runner is delivering it right now: it sees revoked_at when it records the outcome and
            # queues the removal itself if the role did go out.
            continue
        if grant.status == "pending":
            grant.status = "expired"
            grant.next_attempt_at = None
            grant.reason_code = ReasonCode.ORDER_REVOKED
            grant.reason = "The order was revoked before the role was delivered."
        elif grant.status == "completed" and grant.role_was_present is False and grant.discord_user_id:
            granted_by_this_order.setdefault((grant.guild_id, grant.role_id, grant.discord_user_id), grant)
    session.flush()
    removals = [
        _removal_row(grant, event.order_id, now)
        for grant in granted_by_this_order.values()
        if not active_grant_exists(session(), delivery, grant)
    ]
    if removals:
        queued.created = _insert_new(state, removals)
        queued.due = list(queued.created)
    return queued


def _removal_row(grant: Delivery, order_id: str, now: datetime) -> dict[str, Any]:
    return {
        "store_id": grant.store_id,
        "idempotency_key": order_removal_key(order_id, grant.guild_id, grant.role_id),
        "action": "remove",
        "status": "pending",
        "source": "auto",
        "guild_id": grant.guild_id,
        "role_id": grant.role_id,
        "role_name": grant.role_name,
        "discord_user_id": grant.discord_user_id,
        "customer_id": grant.customer_id,
        "order_id": order_id,
        "package_id": grant.package_id,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def queue_manual_change(
    state: DiscordRolesState,
    store_id: str,
    *,
    action: str,
    guild_id: str,
    role_id: str,
    discord_user_id: str,
    customer_id: str | None = None,
    role_name: str | None = None,
    now: datetime | None = None,
) -> Delivery:
    """The store owner gives or takes a role by hand (source ``manual``), in the host's session.

    A manual removal is always carried out, whoever granted the role; it also ends our grants of that
    role to that person, so a later ``/claim`` does not hand it back.
    """
    errors: dict[str, list[str]] = {}
    if action not in ("add", "remove"):
        errors["action"] = ["Action must be add or remove."]
    for name, value in (("guild_id", guild_id), ("role_id", role_id), ("discord_user_id", discord_user_id)):
        if not isinstance(value, str) or not is_snowflake(value):
            errors[name] = [f"{name} must be a Discord id (a snowflake)."]
    if errors:
        raise ValidationError(errors)
    now = now or utcnow()
    session = state.db.session
    model = state.models.Delivery
    if action == "remove":
        person = [model.discord_user_id == discord_user_id]
        if customer_id is not None:
            person.append(model.customer_id == customer_id)
        session.execute(
            sa.update(model)
            .where(
                model.store_id == store_id,
                model.guild_id == guild_id,
                model.role_id == role_id,
                model.action == "add",
                model.revoked_at.is_(None),
                sa.or_(*person),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    row = model(
        store_id=store_id,
        idempotency_key=f"manual:{uuid.uuid4().hex}",
        action=action,
        status="pending",
        source="manual",
        guild_id=guild_id,
        role_id=role_id,
        role_name=role_name,
        discord_user_id=discord_user_id,
        customer_id=customer_id,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def attach_discord_user(
    state: DiscordRolesState,
    store_id: str,
    customer_id: str,
    discord_user_id: str,
    *,
    now: datetime | None = None,
) -> list[int]:
    """A customer linked Discord: their queued rows get the Discord id; in automatic mode they come due.

    Returns the ids of rows now due (to run once the host commits).
    """
    now = now or utcnow()
    model = state.models.Delivery
    session = state.db.session
    waiting = list(
        session.scalars(
            sa.select(model).where(
                model.store_id == store_id,
                model.customer_id == customer_id,
                model.status == "pending",
                model.discord_user_id.is_(None),
            )
        )
    )
    automatic = queue_settings(state, store_id).delivery_mode == "automatic"
    for row in waiting:
        row.discord_user_id = discord_user_id
        if automatic:
            row.next_attempt_at = now
            row.reason_code = row.reason = None
    session.flush()
    return [row.id for row in waiting] if automatic else []


def claim_window_closed(now: datetime) -> dict[str, Any]:
    """What a pending grant becomes when its claim window has closed (the worker's sweep, or /claim)."""
    return {
        "status": "expired",
        "next_attempt_at": None,
        "leased_by": None,
        "lease_expires_at": None,
        "reason_code": ReasonCode.CLAIM_EXPIRED,
        "reason": "Not claimed within the store's claim window. Retry it to give the customer "
        "another window.",
        "updated_at": now,
    }


def due_on_claim(now: datetime) -> dict[str, Any]:
    """What a grant becomes when its customer runs /claim: due now, attempts and reason cleared."""
    return {
        "status": "pending",
        "source": "interaction",
        "next_attempt_at": now,
        "attempts": 0,
        "reason_code": None,
        "reason": None,
        "updated_at": now,
    }


def claim_owed(
    state: DiscordRolesState,
    store_id: str,
    guild_id: str,
    discord_user_id: str,
    *,
    now: datetime | None = None,
) -> list[int]:
    """The customer ran ``/claim`` in ``guild_id``: what they are owed there comes due now (source
    ``interaction``), in either delivery mode. Rows that failed because they were not in the server are
    tried again too: running /claim there shows they are now. Returns the ids to run after commit.
    """
    now = now or utcnow()
    model = state.models.Delivery
    owed = sa.or_(
        model.status == "pending",  # a refused one fails at the runner's gate, saying why
        sa.and_(
            model.status == "failed",
            model.reason_code == ReasonCode.MEMBER_NOT_IN_GUILD,
            allowed(state.models),  # a failure from before an unlink stays a failure
        ),
    )
    return list(
        state.db.session.scalars(
            sa.update(model)
            .where(
                model.store_id == store_id,
                model.guild_id == guild_id,
                model.discord_user_id == discord_user_id,
                model.action == "add",
                model.revoked_at.is_(None),
                owed,
            )
            .values(due_on_claim(now))
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
    )


def _linked_discord_user(state: DiscordRolesState, event: OrderEvent) -> str | None:
    if event.customer_id is None:
        return None
    account = state.models.DiscordAccount
    return state.db.session.connection().scalar(
        sa.select(account.discord_user_id).where(
            account.store_id == event.store_id, account.customer_id == event.customer_id
        )
    )


def _insert_new(state: DiscordRolesState, rows: list[dict[str, Any]]) -> list[int]:
    """INSERT the rows whose idempotency key is new, atomically even against a concurrent signal.

    ON CONFLICT DO NOTHING keeps a duplicate from raising inside the host's transaction (which would
    abort it on PostgreSQL); other databases fall back to looking the keys up first.
    """
    session = state.db.session
    delivery = state.models.Delivery
    table = delivery.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # Rows as parameters, not .values(rows): the statement is then compiled once and cached, and
        # SQLAlchemy still sends a single multi-row INSERT ("insertmanyvalues"). This is most of the
        # cost a checkout pays for us.
        statement = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["store_id", "idempotency_key"])
            .returning(table.c.id)
        )
        return [row_id for (row_id,) in session.connection().execute(statement, rows)]
    existing = set(
        session.scalars(
            sa.select(delivery.idempotency_key).where(
                delivery.store_id == rows[0]["store_id"],
                delivery.idempotency_key.in_([row["idempotency_key"] for row in rows]),
            )
        )
    )
    new_rows = [row for row in rows if row["idempotency_key"] not in existing]
    if not new_rows:
        return []
    return [row_id for (row_id,) in session.execute(sa.insert(table).returning(table.c.id), new_rows)]
