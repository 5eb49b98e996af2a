"""A customer's Discord section in the store's dashboard: their link and their roles (changes by hand
are in :mod:`.manual_changes`).

We never see the host's customer list: a customer is whatever id the host passes, and one we never heard
of simply has no link and no roles yet. A customer's roles are read from our own deliveries, the latest
one per role telling where that role stands; Discord is not asked, so the page costs no network call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from flask_discord_roles._runtime.models import Delivery, DiscordAccount
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import Action, ReasonCode, Status
from flask_discord_roles.discord.snowflake import avatar_url
from flask_discord_roles.errors import ValidationError

ROLE_STATUSES: tuple[str, ...] = (
    "held",
    Status.PENDING.value,
    Status.FAILED.value,
    Status.EXPIRED.value,
    "removed",
    "removal_pending",
)
"""Where a customer's role stands, in the words a dashboard shows (see :func:`role_status`): a grant's
own status while it is not completed, else whether the role is held or removed."""

COUNTED_STATUSES: tuple[str, ...] = tuple(status.value for status in Status)
"""The statuses a customer's deliveries are counted by."""


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
    check_customer_id(customer_id)
    session = state.db.session
    model = state.models.Delivery
    mine = (model.store_id == store_id, model.customer_id == customer_id)
    # Ids only grow, so the highest id of each (guild, role) is its latest change.
    latest_ids = sa.select(sa.func.max(model.id)).where(*mine).group_by(model.guild_id, model.role_id)
    latest = list(session.scalars(sa.select(model).where(model.id.in_(latest_ids)).order_by(model.id.desc())))
    names = mapped_role_names(
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
    account = account_of(state, store_id, customer_id)
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
    if row.action == Action.ADD:
        return "held" if row.status == Status.COMPLETED else row.status
    if row.status == Status.COMPLETED:
        # A revocation that found another active purchase of the same role kept it in place.
        return "held" if row.reason_code == ReasonCode.STILL_GRANTED else "removed"
    return "removal_pending" if row.status == Status.PENDING else row.status


def check_customer_id(customer_id: object) -> str:
    """``customer_id`` if it can be one of the host's ids, else :class:`ValidationError`."""
    # The host's ids are at most 64 characters here, and PostgreSQL refuses NUL in text.
    if not isinstance(customer_id, str) or not 1 <= len(customer_id) <= 64 or "\x00" in customer_id:
        raise ValidationError({"customer_id": ["customer_id must be text of 1 to 64 characters."]})
    return customer_id


def account_of(state: DiscordRolesState, store_id: str, customer_id: str) -> DiscordAccount | None:
    model = state.models.DiscordAccount
    return state.db.session.scalar(
        sa.select(model).where(model.store_id == store_id, model.customer_id == customer_id)
    )


def mapped_role_names(
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
