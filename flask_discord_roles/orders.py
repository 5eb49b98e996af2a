"""What we need to know about a host's order, whatever shape the host's own signal has."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask_discord_roles.discord.snowflake import is_snowflake
from flask_discord_roles.errors import DiscordRolesError

__all__ = ["InvalidOrderEvent", "OrderAdapter", "OrderEvent", "default_adapter"]


class InvalidOrderEvent(DiscordRolesError, ValueError):
    """An order signal carried something we cannot use; the message names the field."""


@dataclass(frozen=True)
class OrderEvent:
    """A completed (or revoked) order, in our terms. Ids are the host's, as text."""

    store_id: str
    order_id: str
    customer_id: str | None = None
    package_ids: tuple[str, ...] = ()
    discord_user_id: str | None = None
    # What the host calls each package, for purchase notifications; ids stand in for missing names.
    package_names: Mapping[str, str] = field(default_factory=dict, hash=False)
    # A time-limited order: its packages entitle the buyer until then (plus the store's grace period).
    expires_at: datetime | None = None
    # The host's id of the subscription the order pays for: a later order of it renews, not re-grants.
    subscription_id: str | None = None

    @property
    def is_time_limited(self) -> bool:
        """Does the order grant for a time (it expires, or it belongs to a subscription)?"""
        return self.expires_at is not None or self.subscription_id is not None

    @classmethod
    def build(
        cls,
        *,
        store_id: object,
        order_id: object,
        customer_id: object = None,
        package_ids: Iterable[object] = (),
        discord_user_id: object = None,
        package_names: Mapping[object, object] | None = None,
        expires_at: object = None,
        subscription_id: object = None,
    ) -> OrderEvent:
        """Normalise ids to text and check them, so a bad signal fails loudly in the host's request."""
        store = _host_id("store_id", store_id)
        order = _host_id("order_id", order_id)
        customer = None if customer_id is None else _host_id("customer_id", customer_id)
        if isinstance(package_ids, str | bytes):
            raise InvalidOrderEvent("package_ids must be a list of ids, not one string")
        packages = tuple(dict.fromkeys(_host_id("package_ids", package) for package in package_ids))
        discord_id = None
        if discord_user_id not in (None, ""):
            discord_id = str(discord_user_id)
            if not is_snowflake(discord_id):
                raise InvalidOrderEvent("discord_user_id must be a Discord user id (a snowflake)")
        names: dict[str, str] = {}
        if package_names is not None:
            if not isinstance(package_names, Mapping):
                raise InvalidOrderEvent("package_names must map package ids to names")
            for package, name in package_names.items():
                if not isinstance(name, str) or not name.strip() or len(name) > 100:
                    raise InvalidOrderEvent("each of package_names must be a name of 1 to 100 characters")
                names[_host_id("package_names", package)] = name.strip()
        expiry = _aware_time("expires_at", expires_at)
        subscription = None if subscription_id is None else _host_id("subscription_id", subscription_id)
        return cls(store, order, customer, packages, discord_id, names, expiry, subscription)


def _aware_time(field: str, value: object) -> datetime | None:
    """A timezone-aware datetime, in UTC; a naive one is ambiguous and refused."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidOrderEvent(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidOrderEvent(
            f"{field} must be timezone-aware (e.g. datetime.now(UTC) + timedelta(days=30))"
        )
    return value.astimezone(UTC)


def _host_id(field: str, value: object) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidOrderEvent(f"{field} must be a string or an integer id, got {type(value).__name__}")
    text = str(value).strip()
    if not text or len(text) > 64:
        raise InvalidOrderEvent(f"{field} must be 1 to 64 characters")
    return text


OrderAdapter = Callable[[Any, Mapping[str, Any]], OrderEvent]
"""Turns a host signal's ``(sender, kwargs)`` into an :class:`OrderEvent`."""


def default_adapter(sender: Any, payload: Mapping[str, Any]) -> OrderEvent:
    """The adapter for our own signals: the keyword arguments are the order's fields."""
    known = {
        "store_id",
        "order_id",
        "customer_id",
        "package_ids",
        "discord_user_id",
        "package_names",
        "expires_at",
        "subscription_id",
    }
    unknown = set(payload) - known
    if unknown:
        raise InvalidOrderEvent(f"unexpected order field(s): {', '.join(sorted(unknown))}")
    return OrderEvent.build(**payload)
