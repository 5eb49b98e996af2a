"""Tier transitions: what one person's rows in one server say should change in each tier group.

:func:`settle_tiers` looks at the person's active grants of every group and queues what is missing:

- the lower tiers we gave them are taken back once a higher tier has been given (a ``remove`` row,
  reason :attr:`~flask_discord_roles.codes.ReasonCode.TIER_REPLACED`): the higher role first, then the
  removal, so the member is never without one;
- when the highest active grant of a group is one whose role they do not hold from us any more (it
  was replaced by a higher tier that has since ended, or it completed ``outranked``), its role is given
  back (a "restore" ``add`` row under its order's key prefix, so revoking that order finds it).

It derives everything from the rows and writes with idempotency keys made from them, so calling it
twice, or from two paths at once, queues each change once. Every path where the answer can change
calls it: an add completing (the runner), an order revoked or a grant ending (:func:`.queue.revoke_order`),
a role taken back by hand. Removals still obey :func:`.provenance.why_kept`, and a role is only taken
back if we gave it (the member did not hold it before us).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.delivery_rows import follow_up_row, insert_new
from flask_discord_roles._core.order_rows import order_delivery_key
from flask_discord_roles._core.provenance import why_kept
from flask_discord_roles._core.tiers import TIER_KEY_PREFIX, mapping_of
from flask_discord_roles._runtime.models import Models
from flask_discord_roles.codes import Action, ReasonCode, Status

TIER_REPLACED_REASON = "Replaced by a higher tier of the same group."
"""Why a tier removal took a role back (kept on the row once it completes)."""

OUTRANKED_REASON = (
    "Not given: the member holds a higher tier of the same group. It is given by itself if that one ends."
)
"""Why an ``add`` completed without a role change."""

_NO_CHANGE = (ReasonCode.STILL_GRANTED, ReasonCode.KEPT_ON_END, ReasonCode.OUTRANKED)
"""Completed rows that changed nothing at Discord: they say nothing about who holds the role."""


@dataclass(frozen=True)
class RoleOf:
    """A role of one person, as the removal rule reads it (not a row: every grant of it counts)."""

    store_id: str
    guild_id: str
    role_id: str
    discord_user_id: str | None
    customer_id: str | None
    id: int | None = None


def is_tier_removal(idempotency_key: str) -> bool:
    """Was the row queued by :func:`settle_tiers` to take back a lower tier?"""
    return idempotency_key.startswith(TIER_KEY_PREFIX)


def settle_tiers(
    connection: sa.Connection,
    models: Models,
    store_id: str,
    guild_id: str,
    discord_user_id: str | None,
    now: datetime,
) -> list[int]:
    """Queue the tier changes this person's rows call for in this server; the ids of rows queued (due now)."""
    if discord_user_id is None:
        return []  # tiers compare what a member holds: nobody to compare yet
    _take_turns(connection, store_id, guild_id, discord_user_id)
    grants = _active_grouped_grants(connection, models, store_id, guild_id, discord_user_id)
    if not grants:
        return []
    history = _history(connection, models, store_id, guild_id, discord_user_id, {g.role_id for g in grants})
    coming = {grant.role_id for grant in grants if grant.status == Status.PENDING}
    groups: dict[str, list[Any]] = defaultdict(list)
    for grant in grants:
        groups[grant.tier_group].append(grant)
    rows: list[dict[str, Any]] = []
    for members in groups.values():
        top = max(members, key=lambda grant: (grant.tier_rank, -grant.id))
        if top.status == Status.COMPLETED and top.role_id not in coming and not _holds(history[top.role_id]):
            rows.append(_restore_row(top, history[top.role_id][0].id, now))
        given_rank = max((g.tier_rank for g in members if g.status == Status.COMPLETED), default=None)
        if given_rank is None:
            continue
        for role_id in {g.role_id for g in members if g.tier_rank < given_rank}:
            given = given_by_us(history[role_id])
            if given is None or why_kept(connection, models, _role_of(given)) is not None:
                continue
            row = follow_up_row(
                given, action=Action.REMOVE, key=_tier_removal_key(given), order_id=None, now=now
            )
            rows.append({**row, "reason_code": ReasonCode.TIER_REPLACED, "reason": TIER_REPLACED_REASON})
    return insert_new(connection, models.Delivery, rows)


def _take_turns(connection: sa.Connection, store_id: str, guild_id: str, user_id: str) -> None:
    """Serialise settling one person's tiers in one server until this transaction ends.

    Two tiers completing at once in two workers would each see the other still pending and neither
    take the lower one back; in turns, the second sees the first's commit. (SQLite: writes already
    take turns.)
    """
    if connection.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"tiers:{store_id}:{guild_id}:{user_id}".encode()).digest()
    connection.execute(
        sa.text("SELECT pg_advisory_xact_lock(:key)"),
        {"key": int.from_bytes(digest[:8], "big", signed=True)},
    )


def we_hold(connection: sa.Connection, models: Models, key: Any) -> bool:
    """Does the person hold ``key``'s role because we gave it, by what our completed rows say?

    The latest row that changed the role at Discord decides: an ``add`` that found it missing, and no
    removal since.
    """
    if key.discord_user_id is None:
        return False
    history = _history(connection, models, key.store_id, key.guild_id, key.discord_user_id, {key.role_id})
    return given_by_us(history[key.role_id]) is not None


def _active_grouped_grants(
    connection: sa.Connection, models: Models, store_id: str, guild_id: str, user_id: str
) -> list[Any]:
    values = {"store_id": store_id, "guild_id": guild_id, "user_id": user_id}
    return list(connection.execute(_active_grouped_query(models), values))


# The two statements are built once per app's models and run with bound values: every revocation and
# every completed tier asks them, and building one costs more than running it.


@lru_cache(maxsize=16)
def _active_grouped_query(models: Models) -> sa.Select[*tuple[Any, ...]]:
    grant, mapping = models.Delivery, models.RoleMapping
    return (
        sa.select(
            grant.id,
            grant.store_id,
            grant.guild_id,
            grant.role_id,
            grant.role_name,
            grant.discord_user_id,
            grant.customer_id,
            grant.order_id,
            grant.package_id,
            grant.status,
            mapping.tier_group,
            mapping.tier_rank,
        )
        .join(mapping, mapping_of(mapping, grant))
        .where(
            grant.store_id == sa.bindparam("store_id"),
            grant.discord_user_id == sa.bindparam("user_id"),
            grant.guild_id == sa.bindparam("guild_id"),
            grant.action == Action.ADD,
            grant.status.in_((Status.PENDING, Status.COMPLETED)),
            grant.revoked_at.is_(None),
            mapping.tier_group.is_not(None),
        )
    )


def _history(
    connection: sa.Connection, models: Models, store_id: str, guild_id: str, user_id: str, role_ids: set[str]
) -> dict[str, list[Any]]:
    """The completed rows of these roles for this person, newest first, by role."""
    values = {"store_id": store_id, "guild_id": guild_id, "user_id": user_id, "role_ids": sorted(role_ids)}
    history: dict[str, list[Any]] = defaultdict(list)
    for row in connection.execute(_history_query(models), values):
        history[row.role_id].append(row)
    return history


@lru_cache(maxsize=16)
def _history_query(models: Models) -> sa.Select[*tuple[Any, ...]]:
    model = models.Delivery
    return (
        sa.select(
            model.id,
            model.store_id,
            model.guild_id,
            model.role_id,
            model.role_name,
            model.discord_user_id,
            model.customer_id,
            model.package_id,
            model.action,
            model.role_was_present,
            model.reason_code,
        )
        .where(
            model.store_id == sa.bindparam("store_id"),
            model.discord_user_id == sa.bindparam("user_id"),
            model.guild_id == sa.bindparam("guild_id"),
            model.role_id.in_(sa.bindparam("role_ids", expanding=True)),
            model.status == Status.COMPLETED,
        )
        .order_by(model.completed_at.desc(), model.id.desc())
    )


def _last_change(rows: list[Any]) -> Any | None:
    return next((row for row in rows if row.reason_code not in _NO_CHANGE), None)


def _holds(rows: list[Any]) -> bool:
    """They hold the role, by our rows: the last change was an add (ours or theirs from before us)."""
    last = _last_change(rows)
    return last is not None and last.action == Action.ADD


def given_by_us(rows: list[Any]) -> Any | None:
    """The add that gave them the role, if we gave it and have not taken it back since."""
    last = _last_change(rows)
    if last is not None and last.action == Action.ADD and last.role_was_present is False:
        return last
    return None


def _role_of(row: Any) -> RoleOf:
    return RoleOf(row.store_id, row.guild_id, row.role_id, row.discord_user_id, row.customer_id)


def _tier_removal_key(given: Any) -> str:
    # One removal per add that gave the role: given back and replaced again, it is a new add.
    return f"{TIER_KEY_PREFIX}{given.id}:{Action.REMOVE}:{given.guild_id}:{given.role_id}"


def _restore_row(top: Any, latest_id: int, now: datetime) -> dict[str, Any]:
    """Give back the role of the group's highest active grant; keyed by the last row of that role, so
    settling twice queues it once, and under its order's prefix, so revoking that order finds it."""
    if top.order_id is not None and top.package_id is not None:
        base = order_delivery_key(top.order_id, top.package_id, top.guild_id, top.role_id)
    else:
        base = f"{TIER_KEY_PREFIX}{top.id}:{Action.ADD}"
    key = f"{base}:restore:{latest_id}"
    return follow_up_row(top, action=Action.ADD, key=key, order_id=top.order_id, now=now)
