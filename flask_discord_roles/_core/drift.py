"""Drift: where the roles members hold in one server differ from what their purchases say.

The desired state is decided by the same rule every removal obeys (:mod:`.provenance`, :mod:`.tiers`):
an ``add`` delivery that is pending or completed, not revoked and not outranked by a higher tier,
entitles its member to its role. Only roles *we* gave count, by what our completed rows say
(:func:`.tier_changes.given_by_us`: the last change of the role was our ``add`` that found it missing):

- :attr:`~flask_discord_roles.codes.DriftKind.ROLE_MISSING`: an entitling grant's role, which we gave,
  is not on the member (a moderator removed it, or they left and rejoined);
- :attr:`~flask_discord_roles.codes.DriftKind.ROLE_NOT_ENDED`: a role we gave is still on the member
  although :func:`.provenance.why_kept` finds no reason to keep it (the removal never ran);
- :attr:`~flask_discord_roles.codes.DriftKind.MEMBER_ABSENT`: someone with an entitling grant is not in
  the server (reported only: nobody to give a role to).

A role the member held before us, or one a moderator gave by hand, has no ``add`` of ours as its last
change, so it is never drift and never removed. A role with a pending row is on its way and is not drift.
Everything is read for a page of members at a time (a few queries per page, not per member); the few
candidates are then confirmed one by one with the one rule itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.aliases import alias
from flask_discord_roles._core.delivery_rows import follow_up_row
from flask_discord_roles._core.order_rows import order_delivery_key
from flask_discord_roles._core.provenance import still_entitled, why_kept
from flask_discord_roles._core.tier_changes import RoleOf, given_by_us
from flask_discord_roles._core.tiers import mapping_of, outranked
from flask_discord_roles._runtime.models import Models
from flask_discord_roles.codes import Action, DriftKind, Status

RECONCILE_KEY_PREFIX = "reconcile:"
"""How the idempotency keys of the removals a reconciliation queues begin."""


@dataclass(frozen=True)
class Drift:
    """One difference: ``grant`` is the row a repair copies (the entitling grant, or the add that gave
    the role); None for an absent member's grants."""

    kind: DriftKind
    discord_user_id: str
    role_id: str
    grant: Any = None


@dataclass(frozen=True)
class Page:
    """One page of List Guild Members: each member's id and role ids, and the range of user ids it
    covers, ``(after, last]`` (``last`` None: to the end of the list)."""

    roles: Mapping[str, frozenset[str]]
    after: int
    last: int | None

    def covers(self, user_id: str) -> bool:
        value = int(user_id)
        return value > self.after and (self.last is None or value <= self.last)


def page_of(members: Iterable[Mapping[str, Any]], after: str | None, *, full: bool) -> Page:
    """A :class:`Page` from Discord's member objects; ``full``: the list may go on after it."""
    roles = {str(m["user"]["id"]): frozenset(str(r) for r in m.get("roles", ())) for m in members}
    last = max((int(user_id) for user_id in roles), default=None) if full else None
    return Page(roles, int(after or 0), last)


def find_drift(
    connection: sa.Connection, models: Models, store_id: str, guild_id: str, page: Page
) -> list[Drift]:
    """The drift of the page's members, and of the members the page's range should hold but does not."""
    found: list[Drift] = []
    user_ids = sorted(page.roles)
    entitling = _entitling(connection, models, store_id, guild_id, user_ids) if user_ids else {}
    history = _history(connection, models, store_id, guild_id, user_ids) if user_ids else {}
    pending = _pending(connection, models, store_id, guild_id, user_ids) if user_ids else set()
    for user_id in user_ids:
        held = page.roles[user_id]
        wanted = entitling.get(user_id, {})
        for role_id, grant in sorted(wanted.items()):
            if role_id in held or (user_id, role_id) in pending:
                continue
            if given_by_us(history.get((user_id, role_id), [])) is None:
                continue  # not ours to give back: they held it before us, or the store owner took it
            if still_entitled(connection, models, _key(grant)):
                found.append(Drift(DriftKind.ROLE_MISSING, user_id, role_id, grant))
        for (owner, role_id), rows in sorted(history.items()):
            if owner != user_id or role_id not in held or role_id in wanted or (user_id, role_id) in pending:
                continue
            given = given_by_us(rows)
            if given is not None and why_kept(connection, models, _key(given)) is None:
                found.append(Drift(DriftKind.ROLE_NOT_ENDED, user_id, role_id, given))
    for user_id, role_id in _absent(connection, models, store_id, guild_id, page):
        found.append(Drift(DriftKind.MEMBER_ABSENT, user_id, role_id))
    return found


def repair_row(drift: Drift, run_id: int, now: datetime) -> dict[str, Any] | None:
    """The delivery that puts ``drift`` right, queued through the normal queue; None if it is report-only.

    A role given back goes under its order's key prefix (as tier restores do), so revoking that order
    later finds it and takes it back; the run's id in the key queues it once per run however often the
    page is stepped. A removal is a plain ``auto`` row: the runner asks :func:`.provenance.why_kept`
    again just before removing.
    """
    grant = drift.grant
    if drift.kind == DriftKind.ROLE_MISSING:
        if grant.order_id is not None and grant.package_id is not None:
            base = order_delivery_key(grant.order_id, grant.package_id, grant.guild_id, grant.role_id)
            key = f"{base}:reconcile:{run_id}"
        else:
            key = _own_key(run_id, Action.ADD, drift)
        return follow_up_row(grant, action=Action.ADD, key=key, order_id=grant.order_id, now=now)
    if drift.kind == DriftKind.ROLE_NOT_ENDED:
        key = _own_key(run_id, Action.REMOVE, drift)
        return follow_up_row(grant, action=Action.REMOVE, key=key, order_id=None, now=now)
    return None


def _own_key(run_id: int, action: Action, drift: Drift) -> str:
    where = f"{drift.grant.guild_id}:{drift.role_id}:{drift.discord_user_id}"
    return f"{RECONCILE_KEY_PREFIX}{run_id}:{action}:{where}"


def _key(row: Any) -> RoleOf:
    return RoleOf(row.store_id, row.guild_id, row.role_id, row.discord_user_id, row.customer_id)


_GRANT_COLUMNS = ("id", "store_id", "guild_id", "role_id", "role_name", "discord_user_id", "customer_id")


def _active(models: Models, store_id: str, guild_id: str) -> tuple[Any, Any, list[Any]]:
    """The entitling grants of the server, as :func:`.provenance.still_entitled` reads them."""
    grant, mapping = models.Delivery, alias(models.RoleMapping, "drift_mapping")
    conditions = [
        grant.store_id == store_id,
        grant.guild_id == guild_id,
        grant.action == Action.ADD,
        grant.status.in_((Status.PENDING, Status.COMPLETED)),
        grant.revoked_at.is_(None),
        grant.discord_user_id.is_not(None),
        ~outranked(models, grant, mapping),
    ]
    return grant, mapping, conditions


def _entitling(
    connection: sa.Connection, models: Models, store_id: str, guild_id: str, user_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """Per member, per role, the entitling grant a repair copies (a completed one before a pending one)."""
    grant, mapping, conditions = _active(models, store_id, guild_id)
    query = (
        sa.select(
            *(getattr(grant, name) for name in _GRANT_COLUMNS), grant.order_id, grant.package_id, grant.status
        )
        .outerjoin(mapping, mapping_of(mapping, grant))
        .where(*conditions, grant.discord_user_id.in_(user_ids))
        .order_by(grant.id)
    )
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in connection.execute(query):
        current = found[row.discord_user_id].get(row.role_id)
        if current is None or (current.status != Status.COMPLETED and row.status == Status.COMPLETED):
            found[row.discord_user_id][row.role_id] = row
    return found


def _history(
    connection: sa.Connection, models: Models, store_id: str, guild_id: str, user_ids: list[str]
) -> dict[tuple[str, str], list[Any]]:
    """The completed rows of the page's members, newest first, per (member, role): what we changed."""
    model = models.Delivery
    query = (
        sa.select(
            *(getattr(model, name) for name in _GRANT_COLUMNS),
            model.package_id,
            model.action,
            model.role_was_present,
            model.reason_code,
        )
        .where(
            model.store_id == store_id,
            model.guild_id == guild_id,
            model.discord_user_id.in_(user_ids),
            model.status == Status.COMPLETED,
        )
        .order_by(model.completed_at.desc(), model.id.desc())
    )
    history: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in connection.execute(query):
        history[(row.discord_user_id, row.role_id)].append(row)
    return history


def _pending(
    connection: sa.Connection, models: Models, store_id: str, guild_id: str, user_ids: list[str]
) -> set[tuple[str, str]]:
    """(member, role) pairs with a row still to run: the role is already on its way in or out."""
    model = models.Delivery
    query = sa.select(model.discord_user_id, model.role_id).where(
        model.store_id == store_id,
        model.guild_id == guild_id,
        model.discord_user_id.in_(user_ids),
        model.status == Status.PENDING,
    )
    return {(row.discord_user_id, row.role_id) for row in connection.execute(query)}


def _absent(
    connection: sa.Connection, models: Models, store_id: str, guild_id: str, page: Page
) -> list[tuple[str, str]]:
    """Members with an entitling grant whose id falls in the page's range but who are not on it; one
    (member, role) each. Snowflakes are compared as numbers here: as text, lengths would mislead."""
    grant, mapping, conditions = _active(models, store_id, guild_id)
    query = (
        sa.select(grant.discord_user_id, sa.func.min(grant.role_id))
        .outerjoin(mapping, mapping_of(mapping, grant))
        .where(*conditions)
        .group_by(grant.discord_user_id)
    )
    return sorted(
        (
            (user_id, role_id)
            for user_id, role_id in connection.execute(query)
            if user_id not in page.roles and page.covers(user_id)
        ),
        key=lambda pair: int(pair[0]),
    )
