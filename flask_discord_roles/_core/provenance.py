"""Which roles we granted, and which purchases still grant them: the rules that make removal safe.

A role is removed only if we granted it (the member did not hold it before our first grant) and no other
active grant of the same role to the same person remains: another order, a renewal, a repurchase, a manual
assignment. An "active grant" is an ``add`` delivery that is pending or completed and not revoked.
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from flask_discord_roles._runtime.models import Delivery
from flask_discord_roles.codes import Action, Status


class GrantKey(Protocol):
    """What identifies "this role for this person in this store": a delivery or a job built from one."""

    @property
    def id(self) -> int | None: ...
    @property
    def store_id(self) -> str: ...
    @property
    def guild_id(self) -> str: ...
    @property
    def role_id(self) -> str: ...
    @property
    def discord_user_id(self) -> str | None: ...
    @property
    def customer_id(self) -> str | None: ...


def _same_grant(model: type[Delivery], key: GrantKey) -> list[Any]:
    """Rows for the same role, guild and store, for the same person.

    The person is their Discord id; the customer id only stands in for rows that do not know the
    Discord id yet (a purchase waiting for its buyer to link). One customer may buy for several Discord
    users (gifts), so a customer match alone never keeps someone else's role.
    """
    person = []
    if key.discord_user_id is not None:
        person.append(model.discord_user_id == key.discord_user_id)
    if key.customer_id is not None:
        person.append(sa.and_(model.discord_user_id.is_(None), model.customer_id == key.customer_id))
    conditions = [
        model.store_id == key.store_id,
        model.guild_id == key.guild_id,
        model.role_id == key.role_id,
        model.action == Action.ADD,
        sa.or_(*person) if person else sa.false(),
    ]
    if key.id is not None:
        conditions.append(model.id != key.id)
    return conditions


def active_grant_exists(
    session: Session | sa.Connection,
    model: type[Delivery],
    key: GrantKey,
    *,
    excluding_order: str | None = None,
) -> bool:
    """Does another pending or completed, unrevoked ``add`` still give this person this role?"""
    conditions = _same_grant(model, key)
    conditions += [model.status.in_((Status.PENDING, Status.COMPLETED)), model.revoked_at.is_(None)]
    if excluding_order is not None:
        conditions.append(sa.or_(model.order_id.is_(None), model.order_id != excluding_order))
    return bool(session.scalar(sa.select(sa.exists().where(*conditions))))


def granted_by_us_elsewhere(session: Session | sa.Connection, model: type[Delivery], key: GrantKey) -> bool:
    """Is a role the member already holds there because of another active grant of ours?

    Decides ``role_was_present`` when an ``add`` finds the role in place: if one of our unrevoked grants
    put it there, it is still ours to remove later; otherwise the member had it before us and it is
    never removed on their behalf.
    """
    conditions = _same_grant(model, key)
    conditions += [
        model.status == Status.COMPLETED,
        model.role_was_present.is_(False),
        model.revoked_at.is_(None),
    ]
    return bool(session.scalar(sa.select(sa.exists().where(*conditions))))
