"""What every database's order statements share: the values they take and the rows they return."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import sqlalchemy as sa

from flask_discord_roles._core.order_rows import order_key_prefix
from flask_discord_roles._runtime.sql_functions import ROLE_CONNECTION as ROLE_CONNECTION
from flask_discord_roles.codes import Action

NOTIFICATION = "notification"
DELIVERY = "delivery"


Created = tuple[str, int, bool]
"""A row the statements created: kind (:data:`DELIVERY` or :data:`NOTIFICATION`), id, whether due; or
the :data:`ROLE_CONNECTION` mark (id 0)."""


class OrderStatements(Protocol):
    """What queues one order: run it on the host's connection, in the host's transaction."""

    def run(self, connection: sa.Connection, values: Mapping[str, Any]) -> list[Created]: ...


PARAMETER_NAMES = (
    "store_id",
    "order_id",
    "customer_id",
    "given_discord_user_id",
    "package_ids",
    "package_ids_json",
    "notified_package_ids",
    "notified_package_names",
    "key_prefix",
    "now",
)


def order_parameters(
    *,
    store_id: str,
    order_id: str,
    customer_id: str | None,
    discord_user_id: str | None,
    package_ids: list[str],
    package_names: list[str],
    now: Any,
) -> dict[str, Any]:
    """The bound values for :class:`OrderStatements`: all that differs from one checkout to the next."""
    return {
        "store_id": store_id,
        "order_id": order_id,
        "customer_id": customer_id,
        "given_discord_user_id": discord_user_id,
        "package_ids": package_ids,
        "package_ids_json": package_ids,
        "notified_package_ids": package_ids,
        "notified_package_names": package_names,
        # Must match queue.order_delivery_key: the same order signalled again finds its rows.
        "key_prefix": order_key_prefix(order_id, Action.ADD),
        "now": now,
    }
