"""Roles given or taken by hand by the store owner (source ``manual``): the one implementation.

:func:`flask_discord_roles.deliveries.assign_role` and ``remove_role``, their deprecated
``customers`` twins and the tenant API's ``/customers/<customer_id>/roles`` all come here, so the rules
live once: the ids are checked, the server must be linked to the store, the Discord user defaults to the
customer's linked account, the row is queued (a removal also ends our grants of that role to that
person, see :func:`~flask_discord_roles._core.queue.queue_manual_change`), and it is handed over to the
executor once the caller commits. The role gate still has the last word when the row runs.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from flask_discord_roles._core.customers import account_of, check_customer_id, mapped_role_names
from flask_discord_roles._core.queue import queue_manual_change
from flask_discord_roles._core.records import DeliveryInfo
from flask_discord_roles._runtime.dispatch import dispatch_after_commit
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import Action
from flask_discord_roles.discord.snowflake import is_snowflake
from flask_discord_roles.errors import ValidationError

NO_DISCORD_USER = "This customer has not linked Discord: link Discord or give the user id (discord_user_id)."
NO_CUSTOMER = (
    "Give the Discord user id (discord_user_id), or the customer_id of a customer who linked Discord."
)
NOT_LINKED = "That server is not linked to this store. Link it with /link first."


def assign_role(
    state: DiscordRolesState,
    store_id: str,
    *,
    guild_id: object,
    role_id: object,
    discord_user_id: object = None,
    customer_id: object = None,
    role_name: object = None,
) -> DeliveryInfo:
    """Queue giving a member a role by hand; it runs once the caller commits."""
    return _change(Action.ADD, state, store_id, guild_id, role_id, discord_user_id, customer_id, role_name)


def remove_role(
    state: DiscordRolesState,
    store_id: str,
    *,
    guild_id: object,
    role_id: object,
    discord_user_id: object = None,
    customer_id: object = None,
    role_name: object = None,
) -> DeliveryInfo:
    """Queue taking a role by hand, whoever granted it; it runs once the caller commits.

    Without ``discord_user_id`` or a linked account, the role is taken from the Discord user the
    customer's latest delivery of it went to: that is who holds it.
    """
    return _change(Action.REMOVE, state, store_id, guild_id, role_id, discord_user_id, customer_id, role_name)


def _change(
    action: Action,
    state: DiscordRolesState,
    store_id: str,
    guild_id: object,
    role_id: object,
    discord_user_id: object,
    customer_id: object,
    role_name: object,
) -> DeliveryInfo:
    customer = None if customer_id is None else check_customer_id(customer_id)
    errors: dict[str, list[str]] = {}
    guild = _snowflake("guild_id", guild_id, errors)
    role = _snowflake("role_id", role_id, errors)
    given_user = None if discord_user_id is None else _snowflake("discord_user_id", discord_user_id, errors)
    if discord_user_id is None and customer is None:
        errors["discord_user_id"] = [NO_CUSTOMER]
    if role_name is not None and (not isinstance(role_name, str) or not 1 <= len(role_name) <= 100):
        errors["role_name"] = ["role_name must be text of 1 to 100 characters."]
    if errors or guild is None or role is None:
        raise ValidationError(errors)
    if not _guild_is_linked(state, store_id, guild):
        raise ValidationError({"guild_id": [NOT_LINKED]})
    user_id = given_user or _default_user(state, store_id, customer, guild, role, action)
    if user_id is None:
        raise ValidationError({"discord_user_id": [NO_DISCORD_USER]})
    name = role_name if isinstance(role_name, str) else _role_name(state, store_id, guild, role)
    row, restored = queue_manual_change(
        state,
        store_id,
        action=action,
        guild_id=guild,
        role_id=role,
        discord_user_id=user_id,
        customer_id=customer,
        role_name=name,
    )
    dispatch_after_commit(
        state.db.session(),
        current_app._get_current_object(),  # type: ignore[attr-defined]
        delivery_ids=[row.id, *restored],
    )
    return DeliveryInfo.from_row(row)


def _snowflake(name: str, value: object, errors: dict[str, list[str]]) -> str | None:
    if isinstance(value, str) and is_snowflake(value):
        return value
    errors[name] = [f"{name} must be a Discord id (a snowflake)."]
    return None


def _guild_is_linked(state: DiscordRolesState, store_id: str, guild_id: str) -> bool:
    model = state.models.LinkedGuild
    found = state.db.session.scalar(
        sa.select(model.id).where(model.store_id == store_id, model.guild_id == guild_id)
    )
    return found is not None


def _default_user(
    state: DiscordRolesState,
    store_id: str,
    customer_id: str | None,
    guild_id: str,
    role_id: str,
    action: Action,
) -> str | None:
    """The customer's linked account; for a removal without one, whoever their latest delivery went to."""
    if customer_id is None:
        return None
    account = account_of(state, store_id, customer_id)
    if account is not None:
        return account.discord_user_id
    if action != Action.REMOVE:
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
    return mapped_role_names(state, store_id, {(guild_id, role_id)}).get((guild_id, role_id))
