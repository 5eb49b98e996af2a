"""A customer's Discord section in the store's dashboard: their link, their roles, changes by hand.

We never see the host's customer list: a customer is whatever id the host passes, and one we never heard
of simply has no link and no roles yet. A customer's roles are read from our own deliveries, the latest
one per role telling where that role stands; Discord is not asked, so the page costs no network call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from flask_discord_roles._core.queue import queue_manual_change
from flask_discord_roles._core.records import DeliveryInfo
from flask_discord_roles._runtime.dispatch import dispatch_after_commit
from flask_discord_roles._runtime.models import Delivery, DiscordAccount
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import ReasonCode
from flask_discord_roles.discord.snowflake import avatar_url, is_snowflake
from flask_discord_roles.errors import ValidationError

ROLE_STATUSES = ("held", "pending", "failed", "expired", "removed", "removal_pending")
"""Where a customer's role stands, in the words a dashboard shows (see :func:`role_status`)."""

COUNTED_STATUSES = ("pending", "completed", "failed", "expired")

NO_DISCORD_USER = "This customer has not linked Discord: link Discord or give the user id (discord_user_id)."


@dataclass(frozen=True)
class LinkedAccount:
    """The customer's linked Discord account, without its OAuth tokens."""

    discord_user_id: str
    username: str | None
    avatar_url: str
    linked_at: datetime


@dataclass(frozen=True)
class RoleStatus:
    """One role of one guild, as the customer's latest delivery of it leaves it."""

    guild_id: str
    role_id: str
    role_name: str | None
    status: str
    delivery_id: int
    reason_code: str | None
    updated_at: datetime


@dataclass(frozen=True)
class CustomerStatus:
    customer_id: str
    account: LinkedAccount | None
    roles: list[RoleStatus]
    counts: dict[str, int]


def customer_status(state: DiscordRolesState, store_id: str, customer_id: str) -> CustomerStatus:
    """The customer's link and where each role we ever queued for them stands, in this store."""
    _check_customer_id(customer_id)
    session = state.db.session
    model = state.models.Delivery
    mine = (model.store_id == store_id, model.customer_id == customer_id)
    # Ids only grow, so the highest id of each (guild, role) is its latest change.
    latest_ids = sa.select(sa.func.max(model.id)).where(*mine).group_by(model.guild_id, model.role_id)
    latest = list(session.scalars(sa.select(model).where(model.id.in_(latest_ids)).order_by(model.id.desc())))
    names = _mapped_role_names(
        state, store_id, {(row.guild_id, row.role_id) for row in latest if not row.role_name}
    )
    counts = dict.fromkeys(COUNTED_STATUSES, 0)
    for status, count in session.execute(
        sa.select(model.status, sa.func.count()).where(*mine).group_by(model.status)
    ):
        counts[status] = count
    roles = [
        RoleStatus(
            guild_id=row.guild_id,
            role_id=row.role_id,
            role_name=row.role_name or names.get((row.guild_id, row.role_id)),
            status=role_status(row),
            delivery_id=row.id,
            reason_code=row.reason_code,
            updated_at=row.updated_at,
        )
        for row in latest
    ]
    account = _account(state, store_id, customer_id)
    linked = (
        None
        if account is None
        else LinkedAccount(
            discord_user_id=account.discord_user_id,
            username=account.username,
            avatar_url=avatar_url(account.discord_user_id, account.avatar, state.settings.cdn_url),
            linked_at=account.linked_at,
        )
    )
    return CustomerStatus(customer_id, linked, roles, counts)


def role_status(row: Delivery) -> str:
    """What a role's latest delivery means for the customer, in one of :data:`ROLE_STATUSES`."""
    if row.action == "add":
        return "held" if row.status == "completed" else row.status
    if row.status == "completed":
        # A revocation that found another active purchase of the same role kept it in place.
        return "held" if row.reason_code == ReasonCode.STILL_GRANTED else "removed"
    return "removal_pending" if row.status == "pending" else row.status


def assign_role(
    state: DiscordRolesState,
    store_id: str,
    customer_id: str,
    *,
    guild_id: object,
    role_id: object,
    discord_user_id: object = None,
    role_name: object = None,
) -> DeliveryInfo:
    """Queue giving the customer a role by hand (source ``manual``); it runs once the caller commits."""
    return _change("add", state, store_id, customer_id, guild_id, role_id, discord_user_id, role_name)


def remove_role(
    state: DiscordRolesState,
    store_id: str,
    customer_id: str,
    *,
    guild_id: object,
    role_id: object,
    discord_user_id: object = None,
) -> DeliveryInfo:
    """Queue taking a role from the customer by hand, whoever granted it; runs once the caller commits.

    Without a linked account or ``discord_user_id``, the role is taken from the Discord user the
    customer's latest delivery of it went to: that is who holds it.
    """
    return _change("remove", state, store_id, customer_id, guild_id, role_id, discord_user_id, None)


def _change(
    action: str,
    state: DiscordRolesState,
    store_id: str,
    customer_id: str,
    guild_id: object,
    role_id: object,
    discord_user_id: object,
    role_name: object,
) -> DeliveryInfo:
    _check_customer_id(customer_id)
    errors: dict[str, list[str]] = {}
    guild = _snowflake("guild_id", guild_id, errors)
    role = _snowflake("role_id", role_id, errors)
    given_user = None if discord_user_id is None else _snowflake("discord_user_id", discord_user_id, errors)
    if role_name is not None and (not isinstance(role_name, str) or not 1 <= len(role_name) <= 100):
        errors["role_name"] = ["role_name must be text of 1 to 100 characters."]
    if errors or guild is None or role is None:
        raise ValidationError(errors)
    if not _guild_is_linked(state, store_id, guild):
        raise ValidationError(
            {"guild_id": ["That server is not linked to this store. Link it with /link first."]}
        )
    user_id = given_user or _default_user(state, store_id, customer_id, guild, role, action)
    if user_id is None:
        raise ValidationError({"discord_user_id": [NO_DISCORD_USER]})
    name = role_name if isinstance(role_name, str) else _role_name(state, store_id, guild, role)
    row = queue_manual_change(
        state,
        store_id,
        action=action,
        guild_id=guild,
        role_id=role,
        discord_user_id=user_id,
        customer_id=customer_id,
        role_name=name,
    )
    dispatch_after_commit(
        state.db.session(),
        current_app._get_current_object(),  # type: ignore[attr-defined]
        delivery_ids=[row.id],
    )
    return DeliveryInfo.from_row(row)


def _snowflake(name: str, value: object, errors: dict[str, list[str]]) -> str | None:
    if isinstance(value, str) and is_snowflake(value):
        return value
    errors[name] = [f"{name} must be a Discord id (a snowflake)."]
    return None


def _check_customer_id(customer_id: object) -> None:
    # The host's ids are at most 64 characters here, and PostgreSQL refuses NUL in text.
    if not isinstance(customer_id, str) or not 1 <= len(customer_id) <= 64 or "\x00" in customer_id:
        raise ValidationError({"customer_id": ["customer_id must be text of 1 to 64 characters."]})


def _account(state: DiscordRolesState, store_id: str, customer_id: str) -> DiscordAccount | None:
    model = state.models.DiscordAccount
    return state.db.session.scalar(
        sa.select(model).where(model.store_id == store_id, model.customer_id == customer_id)
    )


def _guild_is_linked(state: DiscordRolesState, store_id: str, guild_id: str) -> bool:
    model = state.models.LinkedGuild
    found = state.db.session.scalar(
        sa.select(model.id).where(model.store_id == store_id, model.guild_id == guild_id)
    )
    return found is not None


def _default_user(
    state: DiscordRolesState, store_id: str, customer_id: str, guild_id: str, role_id: str, action: str
) -> str | None:
    account = _account(state, store_id, customer_id)
    if account is not None:
        return account.discord_user_id
    if action != "remove":
        return None
    model = state.models.Delivery
    return state.db.session.scalar(
        sa.select(model.discord_user_id)
        .where(
            model.store_id == store_id,
            model.customer_id == customer_id,
            model.guild_id == guild_id,
            model.role_id == role_id,
            model.discord_user_id.is_not(None),
        )
        .order_by(model.id.desc())
        .limit(1)
    )


def _role_name(state: DiscordRolesState, store_id: str, guild_id: str, role_id: str) -> str | None:
    return _mapped_role_names(state, store_id, {(guild_id, role_id)}).get((guild_id, role_id))


def _mapped_role_names(
    state: DiscordRolesState, store_id: str, roles: set[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The names the store's mappings cached for these roles, for rows queued without one."""
    if not roles:
        return {}
    model = state.models.RoleMapping
    rows = state.db.session.execute(
        sa.select(model.guild_id, model.role_id, model.role_name).where(
            model.store_id == store_id,
            model.role_id.in_({role_id for _, role_id in roles}),
            model.role_name.is_not(None),
        )
    )
    return {(g, r): name for g, r, name in rows if (g, r) in roles and name}
