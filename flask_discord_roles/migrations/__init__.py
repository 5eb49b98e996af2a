"""Our tables' migrations: our own Alembic revisions, in our own version table, apart from the host's.

Run them with ``flask discord-roles db upgrade`` (or :func:`upgrade` inside an app context), next to your own
``flask db upgrade``. Your Flask-Migrate never sees our revisions, and its ``flask db migrate`` skips our
tables (every one is named ``discord_roles_*``): ``init_app`` adds :func:`include_name` and
:func:`include_object` to Flask-Migrate's filters. See the *Migrations* page of the docs.

:func:`upgrade`, :func:`downgrade` and :func:`stamp` each run in one transaction on the current app's
database, one process at a time, and say what they did (:class:`Migrated`); they raise
:class:`MigrationError` (changing nothing) when they cannot do what was asked.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from flask_discord_roles._runtime.deprecation import MovedNames
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.migrations import _environment
from flask_discord_roles.migrations._environment import VERSION_TABLE, VERSIONS_DIR, Migrated, MigrationError
from flask_discord_roles.migrations._flask_migrate import host_version_table, include_name, include_object
from flask_discord_roles.migrations._flask_migrate import (
    register_with_flask_migrate as register_with_flask_migrate,  # for init_app, not public
)

__all__ = [
    "VERSIONS_DIR",
    "VERSION_TABLE",
    "Migrated",
    "MigrationError",
    "current",
    "downgrade",
    "head",
    "include_name",
    "include_object",
    "stamp",
    "upgrade",
]


def upgrade(revision: str = "head") -> Migrated:
    """Create or update our tables up to ``revision`` (default: the newest).

    The first time, a revision of ours still in your ``alembic_version`` (from the old ``discord_roles``
    branch) is moved into our version table. Tables with no recorded revision (made by ``db.create_all()``)
    are refused: record them once with :func:`stamp`.
    """
    return _in_one_transaction(_environment.upgrade, revision)


def downgrade(revision: str) -> Migrated:
    """Take our tables back to ``revision``; ``"base"`` drops them all."""
    return _in_one_transaction(_environment.downgrade, revision)


def stamp(revision: str) -> Migrated:
    """Record ``revision`` as the one our tables are at, changing no table (``"head"`` after
    ``db.create_all()``)."""
    return _in_one_transaction(_environment.stamp, revision)


def current() -> str | None:
    """The revision our tables are at; None if they were never migrated (or only made by ``create_all``)."""
    app = _current_app()
    with get_state(app).db.engine.connect() as connection:
        return ", ".join(_environment.current_heads(connection, host_version_table(app))) or None


def head() -> str:
    """The newest revision this release of flask-discord-roles ships."""
    return _environment.head()


def _in_one_transaction(command: Any, revision: str) -> Migrated:
    app = _current_app()
    with get_state(app).db.engine.begin() as connection:
        migrated: Migrated = command(connection, revision, host_version_table(app))
        return migrated


def _current_app() -> Any:
    return current_app._get_current_object()  # type: ignore[attr-defined]


def _no_longer_needed(config: Any) -> Any:
    """What ``include_versions`` does now: nothing. Flask-Migrate must not see our revisions."""
    return config


_MOVED = MovedNames(
    __name__,
    BRANCH_LABEL=(
        "discord_roles",
        "our revisions are no longer a branch of yours: run `flask discord-roles db upgrade`",
    ),
    include_versions=(
        _no_longer_needed,
        "remove migrate.configure(include_versions): our revisions have their own version table now, "
        "run by `flask discord-roles db upgrade`",
    ),
)


def __getattr__(name: str) -> Any:
    return _MOVED.get(name)
