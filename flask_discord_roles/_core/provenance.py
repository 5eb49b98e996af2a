"""Which roles we granted, and which purchases still grant them: the rules that make removal safe.

A role is removed only if we granted it (the member did not hold it before our first grant) and no other
active grant of the same role to the same person remains: another order, a renewal, a repurchase, a manual
assignment. An "active grant" is an ``add`` delivery that is pending or completed and not revoked; in a
tier group it entitles only while no higher tier of the group has been given (:mod:`.tiers`). A role we
gave through a ``keep_on_end`` mapping is never taken back automatically. :func:`why_kept` is the one
rule every automatic removal asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from flask_discord_roles._core.tiers import mapping_of, outranked
from flask_discord_roles._runtime.models import Delivery, Models
from flask_discord_roles.codes import Action, ReasonCode, Status


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


@dataclass(frozen=True)
class _Placeholders:
    """A :class:`GrantKey` of bound parameters: the rule's statements are built once per shape of key
    (which of its ids are known) and run with the key's values, because building and hashing a
    statement of this size costs several times more than running it."""

    id: Any
    store_id: Any
    guild_id: Any
    role_id: Any
    discord_user_id: Any
    customer_id: Any

    @classmethod
    def shaped_like(cls, has_id: bool, has_user: bool, has_customer: bool) -> _Placeholders:
        return cls(
            id=sa.bindparam("key_id") if has_id else None,
            store_id=sa.bindparam("key_store_id"),
            guild_id=sa.bindparam("key_guild_id"),
            role_id=sa.bindparam("key_role_id"),
            discord_user_id=sa.bindparam("key_discord_user_id") if has_user else None,
            customer_id=sa.bindparam("key_customer_id") if has_customer else None,
        )


def _shape(key: GrantKey) -> tuple[bool, bool, bool]:
    return (key.id is not None, key.discord_user_id is not None, key.customer_id is not None)


def _values(key: GrantKey) -> dict[str, Any]:
    """The parameters of a statement built from :class:`_Placeholders` of ``key``'s shape."""
    values: dict[str, Any] = {
        "key_store_id": key.store_id,
        "key_guild_id": key.guild_id,
        "key_role_id": key.role_id,
    }
    if key.id is not None:
        values["key_id"] = key.id
    if key.discord_user_id is not None:
        values["key_discord_user_id"] = key.discord_user_id
    if key.customer_id is not None:
        values["key_customer_id"] = key.customer_id
    return values


def _same_person_and_role(model: Any, key: GrantKey) -> list[Any]:
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
    return [
        model.store_id == key.store_id,
        model.guild_id == key.guild_id,
        model.role_id == key.role_id,
        model.action == Action.ADD,
        sa.or_(*person) if person else sa.false(),
    ]


def _same_grant(model: Any, key: GrantKey) -> list[Any]:
    """:func:`_same_person_and_role`, other than the row ``key`` itself."""
    conditions = _same_person_and_role(model, key)
    if key.id is not None:
        conditions.append(model.id != key.id)
    return conditions


def why_kept(connection: Session | sa.Connection, models: Models, key: GrantKey) -> ReasonCode | None:
    """The one rule every automatic removal obeys: why the role of ``key`` stays, or None to remove it.

    - :attr:`ReasonCode.STILL_GRANTED`: another active grant still entitles the person to it
      (:func:`still_entitled`);
    - :attr:`ReasonCode.KEPT_ON_END`: we gave it through a ``keep_on_end`` mapping (sticky), so no
      refund, expiry or tier change takes it back.

    Whether we granted the role at all is the caller's question (``role_was_present``); a removal by
    the store owner's hand is always carried out and never asks.
    """
    if still_entitled(connection, models, key):
        return ReasonCode.STILL_GRANTED
    if sticky(connection, models, key):
        return ReasonCode.KEPT_ON_END
    return None


def still_entitled(connection: Session | sa.Connection, models: Models, key: GrantKey) -> bool:
    """Does another pending or completed, unrevoked ``add`` still give this person this role?

    Not one that is outranked (:func:`.tiers.outranked`): a higher tier of its group has been given.
    """
    query = _still_entitled_query(models, *_shape(key))
    return connection.execute(query, _values(key)).first() is not None


@lru_cache(maxsize=64)
def _still_entitled_query(models: Models, *shape: bool) -> sa.Select[Any]:
    key = _Placeholders.shaped_like(*shape)
    grant = aliased(models.Delivery, name="other_grant")
    mapping = aliased(models.RoleMapping, name="other_grant_mapping")
    return (
        sa.select(grant.id)
        .outerjoin(mapping, mapping_of(mapping, grant))
        .where(
            *_same_grant(grant, key),
            grant.status.in_((Status.PENDING, Status.COMPLETED)),
            grant.revoked_at.is_(None),
            ~outranked(models, grant, mapping),
        )
        .limit(1)
    )


def sticky(connection: Session | sa.Connection, models: Models, key: GrantKey) -> bool:
    """Did we give this person this role through a ``keep_on_end`` mapping (revoked since or not)?"""
    query = _sticky_query(models, *_shape(key))
    return connection.execute(query, _values(key)).first() is not None


@lru_cache(maxsize=64)
def _sticky_query(models: Models, *shape: bool) -> sa.Select[Any]:
    key = _Placeholders.shaped_like(*shape)
    grant, mapping = models.Delivery, models.RoleMapping
    return (
        sa.select(grant.id)
        .join(mapping, mapping_of(mapping, grant))
        .where(
            *_same_person_and_role(grant, key),
            grant.status == Status.COMPLETED,
            grant.role_was_present.is_(False),
            mapping.keep_on_end.is_(True),
        )
        .limit(1)
    )


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
