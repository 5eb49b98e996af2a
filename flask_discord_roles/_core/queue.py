"""Putting deliveries on the queue: a few INSERTs in the host's transaction, never a network call.

Also the queue's row transitions that several paths share: what a removal row is, what a member is
owed when they turn up (:func:`owed`), what a grant becomes when its customer claims it or its claim
window closes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.delivery_rows import insert_new, kept_row, removal_row
from flask_discord_roles._core.enqueue import order_statements
from flask_discord_roles._core.enqueue.statements import NOTIFICATION, ROLE_CONNECTION, order_parameters
from flask_discord_roles._core.order_rows import of_order
from flask_discord_roles._core.order_rows import order_delivery_key as order_delivery_key
from flask_discord_roles._core.order_rows import order_removal_key as order_removal_key
from flask_discord_roles._core.provenance import why_kept
from flask_discord_roles._core.role_gate import allowed
from flask_discord_roles._core.settings import QueueSettings, claim_window_end, queue_settings
from flask_discord_roles._core.tier_changes import settle_tiers, we_hold
from flask_discord_roles._runtime.models import PENDING, Delivery, Models, RoleMapping, UTCDateTime, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import Action, DeliveryMode, ReasonCode, Source, Status
from flask_discord_roles.discord.snowflake import is_snowflake
from flask_discord_roles.errors import ValidationError
from flask_discord_roles.orders import OrderEvent

REVOKED_BEFORE_DELIVERY = "The order was revoked before the role was delivered."
"""Why a grant ends ``expired`` (:attr:`ReasonCode.ORDER_REVOKED`) when its order is revoked first."""

ENDED_BEFORE_DELIVERY = "The subscription or fixed-term purchase ended before the role was delivered."
"""Why a grant ends ``expired`` (:attr:`ReasonCode.GRANT_EXPIRED`) when its time runs out first."""

_NOT_DELIVERED = {
    ReasonCode.ORDER_REVOKED: REVOKED_BEFORE_DELIVERY,
    ReasonCode.GRANT_EXPIRED: ENDED_BEFORE_DELIVERY,
}


@dataclass
class Queued:
    """What one call put on the queue: rows created, those to run as soon as the host commits."""

    created: list[int] = field(default_factory=list)
    due: list[int] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)
    # The store keeps Linked Roles for this order's (linked) customer: queue their role connection.
    role_connection: bool = False


# -- an order paid, an order revoked ------------------------------------------------------------------


def enqueue_order(state: DiscordRolesState, event: OrderEvent, *, now: datetime | None = None) -> Queued:
    """Queue an ``add`` delivery for every role mapped to every package of a completed order.

    Runs in the host's session and transaction; the host commits. Rows created by an earlier signal of
    the same order are left alone. Rows whose Discord user is known and whose store delivers
    automatically are due at once; the others wait (``next_attempt_at`` NULL) for the customer to link
    Discord or run ``/claim``. Also queues the store's purchase notification when it has them on.
    Raises :class:`~flask_discord_roles.errors.ConfigurationError` on a database we do not support.
    """
    now = now or utcnow()
    connection = state.db.session.connection()
    statements = order_statements(state.models, connection.dialect)
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
        if kind == ROLE_CONNECTION:
            queued.role_connection = True
            continue
        queued.created.append(row_id)
        if due:
            queued.due.append(row_id)
    return queued


def order_grant_row(
    mapping: RoleMapping | sa.Row[Any],
    *,
    order_id: str,
    customer_id: str | None,
    discord_user_id: str | None,
    settings: QueueSettings,
    now: datetime,
) -> dict[str, Any]:
    """The ``add`` row a paid order queues for one ``mapping``, built in Python (a backfill's rows).

    The same row, key and rules as the enqueue statements' (:mod:`._core.enqueue`): due now when we know
    who to give the role to and the store delivers without a /claim; otherwise waiting for the customer
    until the claim window closes (``tests/engine/test_backfills.py`` compares the two).
    """
    automatic = settings.delivery_mode == DeliveryMode.AUTOMATIC
    return {
        "store_id": mapping.store_id,
        "idempotency_key": order_delivery_key(
            order_id, mapping.package_id, mapping.guild_id, mapping.role_id
        ),
        "action": Action.ADD,
        "status": Status.PENDING,
        "source": Source.AUTO,
        "guild_id": mapping.guild_id,
        "role_id": mapping.role_id,
        "role_name": mapping.role_name,
        "discord_user_id": discord_user_id,
        "customer_id": customer_id,
        "order_id": order_id,
        "package_id": mapping.package_id,
        "attempts": 0,
        "next_attempt_at": now if discord_user_id is not None and automatic else None,
        "expires_at": claim_window_end(settings, now),
        "created_at": now,
        "updated_at": now,
    }


def revoke_order(
    state: DiscordRolesState,
    event: OrderEvent,
    *,
    now: datetime | None = None,
    reason_code: ReasonCode = ReasonCode.ORDER_REVOKED,
) -> Queued:
    """An order no longer entitles its buyer: cancel what was not delivered, queue safe removals.

    ``reason_code`` is what undelivered grants end with: :attr:`ReasonCode.ORDER_REVOKED`, or
    :attr:`ReasonCode.GRANT_EXPIRED` when a time-limited grant ran out.

    In the host's session. ``event.package_ids`` narrows the revocation to those packages (one item of
    an order); empty means the whole order. A role is queued for removal only if this order's delivery
    granted it (the member did not hold it before, and it was not taken back since) and
    :func:`.provenance.why_kept` finds no reason to keep it: another active grant, not outranked by a
    higher tier, still gives it (nothing is queued), or its mapping keeps it on end (a completed
    ``kept_on_end`` row records that). The runner asks the rule again just before removing. Then the
    tier groups of each member are settled (:func:`.tier_changes.settle_tiers`): the next active tier
    comes back. Revoking twice queues nothing new.
    """
    queued = Queued()
    now = now or utcnow()
    session = state.db.session
    delivery = state.models.Delivery
    query = sa.select(delivery).where(
        *of_order(delivery, event.store_id, event.order_id, session.get_bind().dialect, action=Action.ADD),
        delivery.revoked_at.is_(None),
    )
    if event.package_ids:
        query = query.where(delivery.package_id.in_(event.package_ids))
    grants = list(session.scalars(query.order_by(delivery.id).with_for_update()))
    granted_by_this_order: dict[tuple[str, str, str], Delivery] = {}
    for grant in grants:
        grant.revoked_at = now
        in_flight = grant.lease_expires_at is not None and grant.lease_expires_at > now
        if grant.status == Status.PENDING and in_flight:
            # A runner is delivering it right now: it sees revoked_at when it records the outcome and
            # queues the removal itself if the role did go out.
            continue
        if grant.status == Status.PENDING:
            grant.status = Status.EXPIRED
            grant.next_attempt_at = None
            grant.reason_code = reason_code
            grant.reason = _NOT_DELIVERED[reason_code]
        elif grant.status == Status.COMPLETED and grant.role_was_present is False and grant.discord_user_id:
            granted_by_this_order.setdefault((grant.guild_id, grant.role_id, grant.discord_user_id), grant)
    session.flush()
    connection = session.connection()
    removals, kept = [], []
    for grant in granted_by_this_order.values():
        why = why_kept(connection, state.models, grant)
        if why == ReasonCode.KEPT_ON_END:
            kept.append(kept_row(grant, event.order_id, now))
        elif why is None and we_hold(connection, state.models, grant):
            removals.append(removal_row(grant, event.order_id, now))
    queued.due = insert_new(connection, delivery, removals)
    queued.created = queued.due + insert_new(connection, delivery, kept)
    # The order's grants have ended: in a tier group, the next active grant's role may come back.
    for guild_id, user_id in sorted({(g.guild_id, g.discord_user_id) for g in grants if g.discord_user_id}):
        restored = settle_tiers(connection, state.models, event.store_id, guild_id, user_id, now)
        queued.created += restored
        queued.due += restored
    return queued


# -- the store owner's hand ---------------------------------------------------------------------------


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
) -> tuple[Delivery, list[int]]:
    """The store owner gives or takes a role by hand (source ``manual``), in the host's session.

    A manual removal is always carried out, whoever granted the role; it also ends our grants of that
    role to that person, so a later ``/claim`` does not hand it back. Returns the row, and the ids of
    rows that giving back a lower tier queued (due now, to run with it).
    """
    _check_manual_change(action, guild_id=guild_id, role_id=role_id, discord_user_id=discord_user_id)
    now = now or utcnow()
    session = state.db.session
    model = state.models.Delivery
    restored: list[int] = []
    if action == Action.REMOVE:
        restored = _end_grants(state, store_id, guild_id, role_id, discord_user_id, customer_id, now)
    row = model(
        store_id=store_id,
        idempotency_key=f"manual:{uuid.uuid4().hex}",
        action=action,
        status=Status.PENDING,
        source=Source.MANUAL,
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
    return row, restored


def _check_manual_change(action: str, **ids: str) -> None:
    """Refuse an action other than add or remove, and ids that are not Discord ids, naming each field."""
    errors: dict[str, list[str]] = {}
    if action not in (Action.ADD, Action.REMOVE):
        errors["action"] = ["Action must be add or remove."]
    for name, value in ids.items():
        if not isinstance(value, str) or not is_snowflake(value):
            errors[name] = [f"{name} must be a Discord id (a snowflake)."]
    if errors:
        raise ValidationError(errors)


def _end_grants(
    state: DiscordRolesState,
    store_id: str,
    guild_id: str,
    role_id: str,
    discord_user_id: str,
    customer_id: str | None,
    now: datetime,
) -> list[int]:
    """Our grants of the role to this person end (``revoked_at``): the owner took it back by hand.

    In a tier group the next active grant's role comes back; the ids of the rows that queued.
    """
    model = state.models.Delivery
    person = [model.discord_user_id == discord_user_id]
    if customer_id is not None:
        person.append(model.customer_id == customer_id)
    state.db.session.execute(
        sa.update(model)
        .where(
            model.store_id == store_id,
            model.guild_id == guild_id,
            model.role_id == role_id,
            model.action == Action.ADD,
            model.revoked_at.is_(None),
            sa.or_(*person),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    connection = state.db.session.connection()
    return settle_tiers(connection, state.models, store_id, guild_id, discord_user_id, now)


# -- the customer turns up: linked, joined, or ran /claim ---------------------------------------------


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
                model.status == Status.PENDING,
                model.discord_user_id.is_(None),
            )
        )
    )
    automatic = queue_settings(state, store_id).delivery_mode == DeliveryMode.AUTOMATIC
    for row in waiting:
        row.discord_user_id = discord_user_id
        if automatic:
            row.next_attempt_at = now
            row.reason_code = row.reason = None
    session.flush()
    return [row.id for row in waiting] if automatic else []


def grants_to(
    model: type[Delivery],
    store_id: str,
    discord_user_id: str,
    guild_ids: Collection[str] | sa.BindParameter[Any],
) -> list[Any]:
    """WHERE conditions: the store's ``add`` rows for this Discord user in these servers (``guild_ids``
    may be an expanding bind parameter, for a statement built once)."""
    in_guilds: sa.ColumnElement[bool]
    if isinstance(guild_ids, sa.BindParameter):
        in_guilds = model.guild_id.in_(guild_ids)
    elif len(guild_ids) == 1:
        (guild_id,) = guild_ids
        in_guilds = model.guild_id == guild_id
    else:
        in_guilds = model.guild_id.in_(guild_ids)
    return [
        model.store_id == store_id,
        model.discord_user_id == discord_user_id,
        in_guilds,
        model.action == Action.ADD,
    ]


def unleased(model: type[Delivery], now: datetime) -> sa.ColumnElement[bool]:
    """No runner holds the row: never leased, or its lease has run out."""
    return sa.or_(model.lease_expires_at.is_(None), model.lease_expires_at <= now)


def owed(models: Models, now: datetime) -> sa.ColumnElement[bool]:
    """A grant that comes due when its member turns up in its server (by /claim, or by joining it):
    pending and not being run right now, or failed only because the member was not in the server.

    A pending one the role gate refuses fails at the runner's gate, saying why; a failure from before
    an unlink (or of a package no longer mapped) stays a failure.
    """
    model = models.Delivery
    return sa.or_(
        sa.and_(model.status == PENDING, unleased(model, now)),
        sa.and_(
            model.status == Status.FAILED,
            model.reason_code == ReasonCode.MEMBER_NOT_IN_GUILD,
            allowed(models),
        ),
    )


OwedChange = Callable[[Models, Any], Mapping[str, Any]]
"""What owed grants become: ``change(models, now)`` gives the values to set (``now`` is a bind parameter)."""


def make_owed_due(
    state: DiscordRolesState,
    store_id: str,
    discord_user_id: str,
    guild_ids: Collection[str],
    change: OwedChange,
    now: datetime,
) -> list[int]:
    """The member's unrevoked grants in these servers that are :func:`owed` take ``change``; their ids."""
    statement = _owed_due_statement(state.models, change, one_guild=len(guild_ids) == 1)
    values = {"of_store": store_id, "of_user": discord_user_id, "now": now}
    if len(guild_ids) == 1:
        (values["in_guild"],) = guild_ids
    else:
        values["in_guilds"] = list(guild_ids)
    session = state.db.session()
    # On the session's connection, after the session's own pending changes: the ORM's bulk UPDATE
    # machinery would cost more than the statement, and there is nothing of the session's to update.
    session.flush()
    return list(session.connection().scalars(statement, values))


@lru_cache(maxsize=64)
def _owed_due_statement(models: Models, change: OwedChange, *, one_guild: bool) -> sa.Update:
    # Built once per change: the role gate's and the tier rule's subqueries cost far more to build (and
    # to key for SQLAlchemy's cache) than the UPDATE costs to run. Every /claim runs it.
    # Bound values are not named like a column: the UPDATE would take such a name for a new value.
    model = models.Delivery
    store_id: Any = sa.bindparam("of_store")
    user_id: Any = sa.bindparam("of_user")
    now: Any = sa.bindparam("now", type_=UTCDateTime())
    guilds: Any = [sa.bindparam("in_guild")] if one_guild else sa.bindparam("in_guilds", expanding=True)
    return (
        sa.update(model)
        .where(*grants_to(model, store_id, user_id, guilds), model.revoked_at.is_(None), owed(models, now))
        .values(change(models, now))
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )


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
    return make_owed_due(state, store_id, discord_user_id, [guild_id], _claimed, now)


def _claimed(models: Models, now: Any) -> dict[str, Any]:
    return due_on_claim(now)


def due_on_claim(now: datetime) -> dict[str, Any]:
    """What a grant becomes when its customer runs /claim: due now, attempts and reason cleared."""
    return {
        "status": Status.PENDING,
        "source": Source.INTERACTION,
        "next_attempt_at": now,
        "attempts": 0,
        "reason_code": None,
        "reason": None,
        "updated_at": now,
    }


def claim_window_closed(now: datetime) -> dict[str, Any]:
    """What a pending grant becomes when its claim window has closed (the worker's sweep, or /claim)."""
    return {
        "status": Status.EXPIRED,
        "next_attempt_at": None,
        "leased_by": None,
        "lease_expires_at": None,
        "reason_code": ReasonCode.CLAIM_EXPIRED,
        "reason": "Not claimed within the store's claim window. Retry it to give the customer "
        "another window.",
        "updated_at": now,
    }
