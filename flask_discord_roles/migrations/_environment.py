"""Our own Alembic environment: our revisions, our version table, run on a connection to the host's database.

Nothing here reads an ``env.py`` or an ``alembic.ini``, and nothing writes a file: the revisions are
loaded from ``versions/`` and run through a :class:`~alembic.runtime.migration.MigrationContext`
configured on the connection given. Each function works inside the caller's transaction, so a failure
leaves the database as it was.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from flask_discord_roles.errors import DiscordRolesError

__all__ = [
    "HOST_VERSION_TABLE",
    "MIGRATIONS_DIR",
    "TABLE_PREFIX",
    "VERSIONS_DIR",
    "VERSION_TABLE",
    "Migrated",
    "MigrationError",
    "current_heads",
    "downgrade",
    "head",
    "is_ours",
    "move_from_host_table",
    "our_revisions",
    "stamp",
    "upgrade",
]

MIGRATIONS_DIR = os.path.dirname(os.path.abspath(__file__))
VERSIONS_DIR = os.path.join(MIGRATIONS_DIR, "versions")
TABLE_PREFIX = "discord_roles_"
VERSION_TABLE = f"{TABLE_PREFIX}alembic_version"
HOST_VERSION_TABLE = "alembic_version"  # Alembic's default, and so Flask-Migrate's

logger = logging.getLogger("flask_discord_roles.migrations")

# Any fixed number: PostgreSQL's transaction-scoped advisory lock on it queues our migrations, so several
# containers that each migrate at start-up take turns instead of creating the same table twice.
_MIGRATION_LOCK = 0x6472_6F6C

_OUR_FILE = re.compile(r"\d{4}_discord_roles_\w+\.py")

Heads = tuple[str, ...]


class MigrationError(DiscordRolesError, RuntimeError):
    """Our tables cannot be migrated as asked (an unknown revision, or tables with no recorded revision);
    the message says what to run instead. Nothing was changed."""


def is_ours(table_name: str | None) -> bool:
    """Whether a table is one of ours: every table we make, our version table included, has our prefix."""
    return table_name is not None and table_name.startswith(TABLE_PREFIX)


@functools.cache
def _script() -> ScriptDirectory:
    # versions/ is ScriptDirectory's default version location; the revisions are read once per process.
    strangers = sorted(
        name for name in os.listdir(VERSIONS_DIR) if name.endswith(".py") and not _OUR_FILE.fullmatch(name)
    )
    if strangers:
        raise MigrationError(
            f"flask-discord-roles' versions folder ({VERSIONS_DIR}) holds revisions that are not ours: "
            f"{', '.join(strangers)}. An older `flask db migrate` wrote them there: move them into your own "
            "migrations/versions folder and take our revisions out of their down_revision and depends_on "
            "(see *Coming from the discord_roles branch* in the docs' Migrations page)."
        )
    return ScriptDirectory(MIGRATIONS_DIR)


def our_revisions() -> frozenset[str]:
    """Every revision id this release ships."""
    return frozenset(script.revision for script in _script().walk_revisions())


def head() -> str:
    """The newest revision this release ships."""
    heads = _script().get_heads()
    assert len(heads) == 1, f"our revisions must form one line, found heads {heads}"
    return heads[0]


def _context(connection: sa.Connection, fn: Callable[[Any, MigrationContext], Any] | None = None) -> Any:
    # ``fn`` gets the current heads as a tuple (as in alembic.command), whatever Alembic's hints say.
    opts: dict[str, Any] = {"version_table": VERSION_TABLE, "script": _script()}
    if fn is not None:
        opts["fn"] = fn
    return MigrationContext.configure(connection, opts=opts)


def _take_turns(connection: sa.Connection) -> None:
    """Wait until no other process is migrating our tables (PostgreSQL; SQLite locks the whole file)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


def current_heads(connection: sa.Connection, host_table: str = HOST_VERSION_TABLE) -> Heads:
    """Our revision in the database: in our version table, else still in the host's (the old layout)."""
    heads: Heads = _context(connection).get_current_heads()
    return heads or _ours_in_host_table(connection, host_table)


def _host_version_table(name: str) -> sa.TableClause:
    schema, _, table = name.rpartition(".")
    return sa.table(table, sa.column("version_num"), schema=schema or None)


def _ours_in_host_table(connection: sa.Connection, host_table: str) -> Heads:
    table = _host_version_table(host_table)
    if not sa.inspect(connection).has_table(table.name, schema=table.schema):
        return ()
    ours = our_revisions()
    return tuple(version for version in connection.scalars(sa.select(table.c.version_num)) if version in ours)


def move_from_host_table(connection: sa.Connection, host_table: str = HOST_VERSION_TABLE) -> Heads:
    """Move our revision out of the host's version table into ours; what was moved (usually nothing).

    Up to 0.1 our revisions were a branch of the host's own migrations, so the host's ``alembic_version``
    holds our revision id beside theirs. Left there, the host's Alembic, which no longer knows our
    revisions, stops with "Can't locate revision".
    """
    if not _ours_in_host_table(connection, host_table):
        return ()
    _take_turns(connection)
    found = _ours_in_host_table(connection, host_table)  # again: another process may have moved it
    if not found:
        return ()
    context = _context(connection)
    recorded = context.get_current_heads()
    if recorded:
        logger.warning(
            "Dropped flask-discord-roles' old revision %s from %s: %s already records %s.",
            ", ".join(found),
            host_table,
            VERSION_TABLE,
            ", ".join(recorded),
        )
    else:
        for revision in found:
            context.stamp(_script(), revision)
        logger.warning(
            "Moved flask-discord-roles' revision %s from %s to its own version table, %s. Our tables are "
            "now migrated by `flask discord-roles db upgrade`; your `flask db` commands no longer see them.",
            ", ".join(found),
            host_table,
            VERSION_TABLE,
        )
    table = _host_version_table(host_table)
    connection.execute(table.delete().where(table.c.version_num.in_(found)))
    return found


class Migrated(NamedTuple):
    """What a migration command did: the revision our tables were at, and the one they are at now
    (None: no tables, or none recorded)."""

    before: str | None
    after: str | None


def upgrade(connection: sa.Connection, revision: str, host_table: str = HOST_VERSION_TABLE) -> Migrated:
    """Bring our tables up to ``revision``."""
    context = _start(connection, host_table, lambda heads, _: _script()._upgrade_revs(revision, heads))
    if not context.get_current_heads():
        _refuse_unrecorded_tables(connection)
    return _run(context, revision)


def downgrade(connection: sa.Connection, revision: str, host_table: str = HOST_VERSION_TABLE) -> Migrated:
    """Take our tables back to ``revision`` (``base`` drops them all)."""
    context = _start(connection, host_table, lambda heads, _: _script()._downgrade_revs(revision, heads))
    return _run(context, revision)


def stamp(connection: sa.Connection, revision: str, host_table: str = HOST_VERSION_TABLE) -> Migrated:
    """Record ``revision`` as our tables' revision without changing a table."""
    context = _start(connection, host_table)
    before = _one(context.get_current_heads())
    with _plain_errors(revision):
        context.stamp(_script(), revision)
    return Migrated(before, _one(context.get_current_heads()))


def _start(
    connection: sa.Connection, host_table: str, fn: Callable[[Any, MigrationContext], Any] | None = None
) -> Any:
    """Our turn, with our revision in our own table: what every command does first."""
    _take_turns(connection)
    move_from_host_table(connection, host_table)
    return _context(connection, fn)


def _run(context: Any, revision: str) -> Migrated:
    # ScriptDirectory's _upgrade_revs/_downgrade_revs are what alembic.command.upgrade/downgrade hand to
    # the context; Operations.context makes `op` in the revision files work on this connection.
    before = _one(context.get_current_heads())
    with _plain_errors(revision), Operations.context(context):
        context.run_migrations()
    return Migrated(before, _one(context.get_current_heads()))


def _one(heads: Heads) -> str | None:
    # Our revisions form one line, so at most one is recorded.
    return ", ".join(heads) or None


@contextmanager
def _plain_errors(revision: str) -> Iterator[None]:
    """Alembic's errors about a revision, as a :class:`MigrationError` naming the revision asked for."""
    try:
        yield
    except (CommandError, RevisionError) as error:
        known = ", ".join(_known_revisions())
        raise MigrationError(
            f"Cannot migrate flask-discord-roles' tables to {revision!r}: {error}. "
            f"Our revisions are {known} (or head, base). Nothing was changed."
        ) from None


def _known_revisions() -> Iterable[str]:
    return reversed([script.revision for script in _script().walk_revisions()])


def _refuse_unrecorded_tables(connection: sa.Connection) -> None:
    """Stop before creating tables that exist already: made by ``db.create_all()``, no revision recorded."""
    found = sorted(name for name in sa.inspect(connection).get_table_names() if is_ours(name))
    found = [name for name in found if name != VERSION_TABLE]
    if found:
        raise MigrationError(
            f"The database already has flask-discord-roles tables ({', '.join(found[:3])}"
            f"{', …' if len(found) > 3 else ''}) but no record of the revision that made them, as after "
            "db.create_all(). If they were made by this release, record that once with "
            "`flask discord-roles db stamp head`; from then on `flask discord-roles db upgrade` keeps them "
            "current. Nothing was changed."
        )
