"""What ``/claim`` and ``/check`` do for one Discord user in one guild, knowing nothing of requests.

``/claim`` gathers everything the user is owed by the store in that guild and makes it due:

1. a claim code ties a guest order to this user (its rows had no Discord id yet);
2. purchases of customers who linked this Discord account are attached to it;
3. pending grants past their claim window are marked expired, and reported, never delivered;
4. pending grants (and ones that failed because the user was not in the server) come due;
5. grants of still-active purchases whose role the user no longer holds (they left and rejoined, a
   moderator took it) are run again, once per role.

Concurrent ``/claim``s by the same user (a double click, an impatient user) take turns on a lock, so
each finds what the previous one already queued and no role is queued twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

import sqlalchemy as sa

from flask_discord_roles._core.aliases import alias, table_alias
from flask_discord_roles._core.interaction_log import QueryRecorder
from flask_discord_roles._core.order_rows import of_order
from flask_discord_roles._core.queue import (
    claim_owed,
    claim_window_closed,
    due_on_claim,
    grants_to,
    unleased,
)
from flask_discord_roles._core.role_gate import allowed
from flask_discord_roles._core.settings import queue_settings
from flask_discord_roles._core.tiers import mapping_of, outranked
from flask_discord_roles._runtime.models import Delivery, Models, UTCDateTime
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import Action, DeliveryMode, GrantStatus, Source, Status

CHECK_LIMIT = 10
"""Rows ``/check`` lists: everything pending first, then the most recent others."""


@dataclass(frozen=True)
class Claimed:
    """What one ``/claim`` did: rows to run once the transaction commits, and what it can say already."""

    due_ids: list[int]
    notes: list[str]
    owns_anything: bool


def claim_for_member(
    state: DiscordRolesState,
    store_id: str,
    guild_id: str,
    discord_user_id: str,
    *,
    held_role_ids: Collection[str],
    roles_seen_at: datetime,
    code_order_id: str | None,
    now: datetime,
) -> Claimed:
    """Make everything ``discord_user_id`` is owed in ``guild_id`` due; runs in the request's session.

    ``held_role_ids`` are the roles Discord said the member holds at ``roles_seen_at`` (the
    interaction's own time): a grant completed after that is not run again on the strength of an
    older list.
    """
    connection = state.db.session.connection()
    _take_turns(connection, store_id, guild_id, discord_user_id)
    model = state.models.Delivery
    notes: list[str] = []
    tied: list[int] = []
    if code_order_id is not None:
        tied, refusal = _tie_order(connection, model, store_id, code_order_id, discord_user_id)
        notes.extend(refusal)
    _attach_linked_purchases(state, connection, store_id, discord_user_id)
    notes.extend(_expire_overdue(connection, state.models, store_id, guild_id, discord_user_id, now))
    due = claim_owed(state, store_id, guild_id, discord_user_id, now=now)
    if tied and queue_settings(state, store_id).delivery_mode == DeliveryMode.AUTOMATIC:
        # The order's grants in the store's other servers: now that we know who bought them, an
        # automatic store delivers them as it would have at checkout (claim mode waits for /claim there).
        due += _due_now(connection, model, [i for i in tied if i not in due], now)
    due += _reapply_missing(
        connection,
        state.models,
        store_id,
        guild_id,
        discord_user_id,
        held_role_ids=set(held_role_ids),
        roles_seen_at=roles_seen_at,
        already_due=due,
        now=now,
    )
    owns = bool(due) or _has_any(connection, state.models, store_id, guild_id, discord_user_id)
    return Claimed(sorted(set(due)), notes, owns)


def _take_turns(connection: sa.Connection, store_id: str, guild_id: str, user_id: str) -> None:
    """Serialise /claims of one user in one guild until this transaction ends (SQLite: writes already are)."""
    if connection.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"claim:{store_id}:{guild_id}:{user_id}".encode()).digest()
    connection.execute(_TAKE_TURNS, {"key": int.from_bytes(digest[:8], "big", signed=True)})


_TAKE_TURNS = sa.text("SELECT pg_advisory_xact_lock(:key)")


def _tie_order(
    connection: sa.Connection, model: type[Delivery], store_id: str, order_id: str, user_id: str
) -> tuple[list[int], list[str]]:
    """Give the order's unattached grants to ``user_id``: the ids tied now, and a note when the code
    cannot be used."""
    grants = of_order(model, store_id, order_id, connection.dialect, action=Action.ADD)
    tied = list(
        connection.scalars(
            sa.update(model)
            .where(*grants, model.discord_user_id.is_(None))
            .values(discord_user_id=user_id)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
    )
    holders = set(connection.scalars(sa.select(model.discord_user_id).where(*grants).distinct()))
    if not holders:
        return tied, [f"Order **{order_id}** has no Discord roles to give."]
    if user_id not in holders:
        return tied, [
            f"Order **{order_id}** was already claimed by another Discord account. "
            "If that was not you, contact the store."
        ]
    return tied, []


def _due_now(connection: sa.Connection, model: type[Delivery], ids: list[int], now: datetime) -> list[int]:
    """Make these rows due now if they are still waiting, keeping their source."""
    still_waiting = (model.status == Status.PENDING, model.revoked_at.is_(None))
    values = {"next_attempt_at": now, "reason_code": None, "reason": None, "updated_at": now}
    return _update_rows(connection, model, ids, still_waiting, values)


def _update_rows(
    connection: sa.Connection,
    model: type[Delivery],
    ids: list[int],
    still: tuple[Any, ...],
    values: dict[str, Any],
) -> list[int]:
    """Those of the rows ``ids`` that ``still`` hold take ``values``; their ids."""
    if not ids:
        return []
    return list(
        connection.scalars(
            sa.update(model)
            .where(model.id.in_(ids), *still)
            .values(values)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
    )


def _attach_linked_purchases(
    state: DiscordRolesState, connection: sa.Connection, store_id: str, user_id: str
) -> None:
    """Purchases of customers who linked this Discord account, still without a Discord id, become theirs."""
    connection.execute(_attach_statement(state.models), _member_values(store_id, user_id, None, None))


@cache
def _attach_statement(models: Models) -> sa.Update:
    # The statements of /claim are built once, with their values bound: building and keying them for
    # SQLAlchemy's cache cost more than running them.
    account, delivery = models.DiscordAccount, models.Delivery
    store_id, user_id, _, _ = _member_binds()
    customers = sa.select(account.customer_id).where(
        account.store_id == store_id, account.discord_user_id == user_id
    )
    return (
        sa.update(delivery)
        .where(
            delivery.store_id == store_id,
            delivery.customer_id.in_(customers.scalar_subquery()),
            delivery.discord_user_id.is_(None),
            delivery.action == Action.ADD,
        )
        .values(discord_user_id=user_id)
        .execution_options(synchronize_session=False)
    )


def _expire_overdue(
    connection: sa.Connection,
    models: Models,
    store_id: str,
    guild_id: str,
    user_id: str,
    now: datetime,
) -> list[str]:
    """Grants still waiting past their claim window expire now, as the worker would; one note per role."""
    expired = connection.execute(
        _expire_statement(models), _member_values(store_id, user_id, guild_id, now)
    ).all()
    return [
        f"{_role(name, role_id)} from order **{order_id}**: the time to claim it ran out "
        f"{_when(expires_at)}. Ask the store to give you another chance."
        for name, role_id, order_id, expires_at in expired
    ]


@cache
def _expire_statement(models: Models) -> sa.Update:
    model = models.Delivery
    store_id, user_id, guild_id, now = _member_binds()
    return (
        sa.update(model)
        .where(
            *grants_to(model, store_id, user_id, [guild_id]),
            model.status == Status.PENDING,
            # Only grants still waiting: one already scheduled is being delivered, late or not.
            model.next_attempt_at.is_(None),
            model.expires_at <= now,
            unleased(model, now),
        )
        .values(claim_window_closed(now))
        .returning(model.role_name, model.role_id, model.order_id, model.expires_at)
        .execution_options(synchronize_session=False)
    )


def _member_binds() -> tuple[Any, Any, Any, Any]:
    """The bind parameters of a statement about one member in one server: store, user, guild, now.

    Not named like a column: an UPDATE would take such a name for a new value of that column."""
    return (
        sa.bindparam("of_store"),
        sa.bindparam("of_user"),
        sa.bindparam("in_guild"),
        sa.bindparam("now", type_=UTCDateTime()),
    )


def _member_values(store_id: str, user_id: str, guild_id: str | None, now: datetime | None) -> dict[str, Any]:
    """The values of :func:`_member_binds`."""
    return {"of_store": store_id, "of_user": user_id, "in_guild": guild_id, "now": now}


def _when(moment: datetime | None) -> str:
    # Discord shows <t:…:R> as "3 hours ago" in the reader's own language and time zone.
    return f"<t:{int(moment.timestamp())}:R>" if moment is not None else "already"


def _reapply_missing(
    connection: sa.Connection,
    models: Models,
    store_id: str,
    guild_id: str,
    user_id: str,
    *,
    held_role_ids: set[str],
    roles_seen_at: datetime,
    already_due: Sequence[int],
    now: datetime,
) -> list[int]:
    """Run again one completed grant per still-owed role the member no longer holds, where the role
    gate allows it (a grant from before an unlink, or of a package no longer mapped, is not owed), and
    no higher tier of its group outranks it."""
    due_roles = set(
        connection.scalars(_roles_of_statement(models), {"ids": list(already_due)}) if already_due else ()
    )
    member = _member_values(store_id, user_id, guild_id, roles_seen_at)
    candidates = connection.execute(_missing_candidates_query(models), member).all()
    chosen: dict[str, int] = {}
    for delivery_id, role_id in candidates:
        if role_id not in held_role_ids and role_id not in due_roles:
            chosen.setdefault(role_id, delivery_id)
    return _run_again(connection, models, list(chosen.values()), now)


@cache
def _roles_of_statement(models: Models) -> sa.Select[str]:
    model = models.Delivery
    return sa.select(model.role_id).where(model.id.in_(sa.bindparam("ids", expanding=True)))


@cache
def _missing_candidates_query(models: Models) -> sa.Select[int, str]:
    """Completed grants of the member's that may be run again (bound: ``now`` is when Discord listed
    the member's roles)."""
    model = models.Delivery
    store_id, user_id, guild_id, roles_seen_at = _member_binds()
    mapping = alias(models.RoleMapping, "tier_mapping")
    return (
        sa.select(model.id, model.role_id)
        .outerjoin(mapping, mapping_of(mapping, model))
        .where(
            *grants_to(model, store_id, user_id, [guild_id]),
            model.status == Status.COMPLETED,
            model.revoked_at.is_(None),
            # Completed after Discord listed the member's roles: that list cannot show it yet.
            model.completed_at <= roles_seen_at,
            ~sa.exists(_later_manual_removal(model)),
            allowed(models),
            # A lower tier stepped aside for a higher one they hold: not missing, not owed.
            ~outranked(models, model, mapping),
        )
        .order_by(model.id)
    )


def _later_manual_removal(model: type[Delivery]) -> sa.Select[Any]:
    """The store owner took the grant's role from its member by hand after the grant: it is not owed."""
    removal = table_alias(model.__table__, "removal")  # type: ignore[attr-defined]
    return sa.select(removal.c.id).where(
        removal.c.store_id == model.store_id,
        removal.c.guild_id == model.guild_id,
        removal.c.role_id == model.role_id,
        removal.c.discord_user_id == model.discord_user_id,
        removal.c.action == Action.REMOVE,
        removal.c.source == Source.MANUAL,
        removal.c.id > model.id,
    )


def _run_again(connection: sa.Connection, models: Models, ids: list[int], now: datetime) -> list[int]:
    """Completed grants come due again, as a /claim makes them (:func:`.queue.due_on_claim`)."""
    if not ids:
        return []
    return list(connection.scalars(_run_again_statement(models), {"ids": ids, "now": now}))


@cache
def _run_again_statement(models: Models) -> sa.Update:
    model = models.Delivery
    now: Any = sa.bindparam("now", type_=UTCDateTime())
    # A paid, active purchase: running it again has no claim window.
    values = {**due_on_claim(now), "completed_at": None, "expires_at": None}
    return (
        sa.update(model)
        .where(model.id.in_(sa.bindparam("ids", expanding=True)), model.status == Status.COMPLETED)
        .values(values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )


def _has_any(connection: sa.Connection, models: Models, store_id: str, guild_id: str, user_id: str) -> bool:
    member = _member_values(store_id, user_id, guild_id, None)
    return connection.scalar(_any_grant_query(models), member) is not None


@cache
def _any_grant_query(models: Models) -> sa.Select[int]:
    model = models.Delivery
    store_id, user_id, guild_id, _ = _member_binds()
    return sa.select(model.id).where(*grants_to(model, store_id, user_id, [guild_id])).limit(1)


class Listed(NamedTuple):
    """One row of ``/check`` or of a claim's answer.

    A named tuple, not a frozen dataclass: /check builds one per delivery it lists, and a frozen
    dataclass sets each field through ``object.__setattr__`` (about three times the cost).
    """

    id: int
    status: str
    role: str
    order_id: str | None
    expires_at: datetime | None
    next_attempt_at: datetime | None
    reason: str | None
    # When the time-limited grant this role belongs to expires (an active one); None: no expiry.
    grant_expires_at: datetime | None = None


def member_deliveries(
    reader: QueryRecorder,
    models: Models,
    store_id: str,
    guild_id: str,
    user_id: str,
    *,
    limit: int = CHECK_LIMIT,
) -> list[Listed]:
    """``/check``: this user's grants in this guild, pending ones first, then the most recent.

    Includes purchases of customers who linked this Discord account and are not attached to it yet:
    they are the user's too, and ``/claim`` will attach them.
    """
    rows = reader.read(
        _member_deliveries_query(models),
        {"store_id": store_id, "guild_id": guild_id, "user_id": user_id, "limit": limit},
    )
    listed = [_listed(row) for row in rows]
    # The reader does not promise the query's order (it may run inside a larger statement).
    return sorted(listed, key=lambda row: (row.status != Status.PENDING, -row.id))


@cache
def _member_deliveries_query(models: Models) -> sa.Select[Any]:
    # Built once: /check is the command members run most, and building the expression costs more
    # than running it.
    model, account = models.Delivery, models.DiscordAccount
    store_id: Any = sa.bindparam("store_id")
    user_id: Any = sa.bindparam("user_id")
    guild_id: Any = sa.bindparam("guild_id")
    # One customer at most: a Discord account is linked to one customer of a store (a unique key).
    linked_customer = (
        sa.select(account.customer_id)
        .where(account.store_id == store_id, account.discord_user_id == user_id)
        .scalar_subquery()
    )
    # Two lookups, one per index, rather than one OR: under an OR, PostgreSQL cannot read the customer
    # index for the linked customer's rows, and reads all of the store's guest rows instead. The second
    # leaves the server out, or the claim index (server-blind statistics) looks as cheap to it.
    row = alias(model, "mine")
    by_user = sa.select(row.id).where(
        row.store_id == store_id, row.discord_user_id == user_id, row.guild_id == guild_id
    )
    by_account = sa.select(row.id).where(
        row.store_id == store_id, row.customer_id == linked_customer, row.discord_user_id.is_(None)
    )
    mine = model.id.in_(sa.union_all(by_user, by_account))
    # The grant the order started, if the order sold time: its expiry is shown beside the role.
    grant = models.Grant
    of_active_grant = sa.and_(
        grant.store_id == model.store_id,
        grant.order_id == model.order_id,
        grant.package_id == model.package_id,
        grant.status == GrantStatus.ACTIVE,
    )
    return (
        sa.select(*_listed_columns(model), grant.expires_at)
        .select_from(model)
        .outerjoin(grant, of_active_grant)
        .where(mine, model.guild_id == guild_id, model.action == Action.ADD)
        .order_by(sa.case((model.status == Status.PENDING, 0), else_=1), model.id.desc())
        .limit(sa.bindparam("limit"))
    )


def deliveries_by_id(connection: sa.Connection, model: type[Delivery], ids: Sequence[int]) -> list[Listed]:
    """The rows a claim made due, in id order, as its answer lists them."""
    if not ids:
        return []
    rows = connection.execute(
        sa.select(*_listed_columns(model)).where(model.id.in_(list(ids))).order_by(model.id)
    )
    return [_listed(row) for row in rows]


def _listed_columns(model: type[Delivery]) -> tuple[Any, ...]:
    return (
        model.id,
        model.status,
        model.role_name,
        model.role_id,
        model.order_id,
        model.expires_at,
        model.next_attempt_at,
        model.reason,
    )


def _listed(row: Sequence[Any]) -> Listed:
    # By position: rows come from SQLAlchemy or straight from the driver (see QueryRecorder).
    delivery_id, status, role_name, role_id, order_id, expires_at, next_attempt_at, reason = row[:8]
    return Listed(
        id=delivery_id,
        status=status,
        role=_role(role_name, role_id),
        order_id=order_id,
        expires_at=expires_at,
        next_attempt_at=next_attempt_at,
        reason=reason,
        grant_expires_at=row[8] if len(row) > 8 else None,
    )


def _role(name: str | None, role_id: str) -> str:
    # A role mention renders as the role's name in Discord; allowed_mentions keeps it from pinging.
    return f"**{name}**" if name else f"<@&{role_id}>"
