"""The databases flask-discord-roles runs on, PostgreSQL and SQLite, and the one way to refuse any other.

Every statement that must skip a duplicate (``ON CONFLICT``) takes its INSERT from :func:`supported_insert`,
so a new database would be added here, once, or refused here, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from flask_discord_roles.errors import ConfigurationError

__all__ = ["supported_insert", "unsupported"]

_INSERTS: dict[str, Callable[..., Any]] = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}
"""The supported databases, each with its INSERT that can skip or update a duplicate (ON CONFLICT)."""


def supported_insert(dialect_name: str) -> Callable[..., Any]:
    """The INSERT of the database called ``dialect_name``, with ``on_conflict_do_nothing`` / ``…_update``.

    Raises :class:`~flask_discord_roles.errors.ConfigurationError` for a database we do not run on.
    """
    try:
        return _INSERTS[dialect_name]
    except KeyError:
        raise unsupported(dialect_name) from None


def unsupported(dialect_name: str) -> ConfigurationError:
    """The error for a database other than PostgreSQL and SQLite, naming it."""
    return ConfigurationError(
        f"flask-discord-roles runs on PostgreSQL or SQLite, and this app's database is {dialect_name!r}: "
        "point SQLALCHEMY_DATABASE_URI (or the bind our tables use) at one of them."
    )
