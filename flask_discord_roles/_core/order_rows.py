"""Finding one order's deliveries without an index of their own.

Every delivery an order causes has an idempotency key that starts ``order:<order id>:<action>:``, and
the keys are unique per store, so the unique index on (store_id, idempotency_key) already holds an
order's rows side by side. A range on that prefix finds them, and the checkout, which writes every
index of every row it queues, has one index less to write.

The range is only right where keys compare byte by byte: SQLite (BINARY) and PostgreSQL (the column is
declared ``COLLATE "C"`` there). Elsewhere a linguistic collation may sort ``;`` before ``:``, so only
the plain ``order_id`` condition is used. It is always included, which also keeps an order id that
contains ``:`` from matching another order's keys.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Dialect

from flask_discord_roles.codes import Action

BYTEWISE_KEY_DIALECTS = frozenset({"sqlite", "postgresql"})
"""Where the idempotency key compares byte by byte (see :data:`..models.IDEMPOTENCY_KEY`)."""


def order_key_prefix(order_id: str, action: str | None = None) -> str:
    """How the idempotency keys of ``order_id``'s rows (of ``action``, if given) begin."""
    return f"order:{order_id}:{action}:" if action else f"order:{order_id}:"


def of_order(
    model: Any, store_id: str, order_id: str, dialect: Dialect, *, action: str | None = None
) -> list[Any]:
    """WHERE conditions for the rows of one order (only its ``action`` rows, if given)."""
    conditions = [model.store_id == store_id, model.order_id == order_id]
    if action is not None:
        conditions.append(model.action == action)
    if dialect.name in BYTEWISE_KEY_DIALECTS:
        prefix = order_key_prefix(order_id, action)
        # The prefix ends with ":"; ";" is the next byte, so this range is exactly the keys it begins.
        conditions += [model.idempotency_key >= prefix, model.idempotency_key < prefix[:-1] + ";"]
    return conditions


def order_delivery_key(order_id: str, package_id: str, guild_id: str, role_id: str) -> str:
    """What makes one order's delivery of one role unique: the same order signalled again matches it.

    The statements of :mod:`._core.enqueue` build the same key in SQL.
    """
    return f"{order_key_prefix(order_id, Action.ADD)}{package_id}:{guild_id}:{role_id}"


def order_removal_key(order_id: str, guild_id: str, role_id: str) -> str:
    """What makes a revoked order's removal of one role unique: revoking twice queues it once."""
    return f"{order_key_prefix(order_id, Action.REMOVE)}{guild_id}:{role_id}"
