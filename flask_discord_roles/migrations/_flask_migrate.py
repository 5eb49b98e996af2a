"""Keep the host's Flask-Migrate and our tables apart.

Our tables are mapped on the host's ``db.Model``, so the host's ``flask db migrate`` would see them in its
metadata and write them into the host's revisions. Two hooks prevent that, on whatever Flask-Migrate the
app has, whether ``Migrate`` was set up before ``DiscordRoles`` or after it:

- an ``include_name``/``include_object`` filter in Flask-Migrate's ``configure_args`` (which its stock
  ``env.py`` hands to Alembic), so autogenerate skips every ``discord_roles_*`` table, in the database or
  in the metadata, wrapping any filter the host set;
- a configure callback that, before any ``flask db`` command, moves a revision of ours left in the host's
  ``alembic_version`` by the old ``discord_roles`` branch into our own version table.

Flask-Migrate may be set up after us: then the hooks are attached at the first app context pushed after
it is (every ``flask db`` command pushes one before it reads the configuration), and no later one pays.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
import weakref
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from flask import Flask, current_app, has_app_context
from flask.signals import appcontext_pushed

from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.migrations._environment import (
    HOST_VERSION_TABLE,
    VERSIONS_DIR,
    MigrationError,
    is_ours,
    move_from_host_table,
    our_revisions,
)

__all__ = [
    "host_version_table",
    "include_name",
    "include_object",
    "register_with_flask_migrate",
    "skip_our_tables",
]

logger = logging.getLogger("flask_discord_roles.migrations")

_hooked_apps: weakref.WeakSet[Flask] = weakref.WeakSet()


def register_with_flask_migrate(app: Flask) -> None:
    """Hook the app's Flask-Migrate now if it is set up, else as soon as it is; safe to call twice."""
    _hooked_apps.add(app)
    if not _attach(app):
        appcontext_pushed.connect(_on_app_context, sender=app)


def _on_app_context(app: Flask, **_: Any) -> None:
    # Every request pushes an app context: listen only until Flask-Migrate is there and hooked.
    if _attach(app):
        appcontext_pushed.disconnect(_on_app_context, sender=app)


def _attach(app: Flask) -> bool:
    """Hook the app's Flask-Migrate; False if it has none (yet)."""
    migrate_config = app.extensions.get("migrate")
    if migrate_config is None:
        return False
    skip_our_tables(migrate_config.configure_args)
    migrate = migrate_config.migrate
    if _move_our_revision not in migrate.configure_callbacks:
        migrate.configure(_move_our_revision)
    return True


def skip_our_tables(configure_args: dict[str, Any]) -> None:
    """Make Alembic's autogenerate skip our tables, keeping whatever filters are already there."""
    name_filter = configure_args.get("include_name")
    if not isinstance(name_filter, _SkipOurNames):
        configure_args["include_name"] = _SkipOurNames(name_filter)
    object_filter = configure_args.get("include_object")
    if not isinstance(object_filter, _SkipOurObjects):
        configure_args["include_object"] = _SkipOurObjects(object_filter)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's ``include_name`` hook: False for our tables as reflected from the database."""
    return not (type_ == "table" and is_ours(name))


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object`` hook: False for our tables in the metadata."""
    return not (type_ == "table" and is_ours(name))


class _SkipOurNames:
    """:func:`include_name`, then the host's own filter."""

    def __init__(self, host_filter: Any) -> None:
        self.host_filter = host_filter

    def __call__(self, name: str | None, type_: str, parent_names: Any) -> bool:
        if not include_name(name, type_, parent_names):
            return False
        return self.host_filter is None or bool(self.host_filter(name, type_, parent_names))


class _SkipOurObjects:
    """:func:`include_object`, then the host's own filter."""

    def __init__(self, host_filter: Any) -> None:
        self.host_filter = host_filter

    def __call__(self, obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if not include_object(obj, name, type_, reflected, compare_to):
            return False
        return self.host_filter is None or bool(self.host_filter(obj, name, type_, reflected, compare_to))


def host_version_table(app: Flask) -> str:
    """The host's Alembic version table: Flask-Migrate's ``version_table`` (and schema), else the default."""
    migrate_config = app.extensions.get("migrate")
    args = getattr(migrate_config, "configure_args", None) or {}
    table = args.get("version_table") or HOST_VERSION_TABLE
    schema = args.get("version_table_schema")
    return f"{schema}.{table}" if schema else str(table)


def _refuse_our_revisions_in_the_hosts_history(config: Any) -> None:
    """Name the fix when the host's Alembic still reaches for our revisions, which it no longer sees.

    Flask-Migrate reports a RuntimeError raised here as ``Error: <message>`` and exits 1.
    """
    locations = config.get_version_locations_list() or []
    if any(os.path.abspath(location) == VERSIONS_DIR for location in locations):
        raise MigrationError(
            f"Your Alembic version_locations still list flask-discord-roles' revisions ({VERSIONS_DIR}): "
            "remove them (and any migrate.configure(include_versions)). Our revisions now have their own "
            "version table and run with `flask discord-roles db upgrade`."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Alembic warns "… is not present", then raises KeyError
            ScriptDirectory.from_config(config).get_heads()
    except (RevisionError, CommandError, KeyError) as error:
        named = sorted(set(re.findall(r"\bdr\d{4}\b", str(error))) & our_revisions())
        if named:
            raise MigrationError(
                f"A revision in {config.get_main_option('script_location')} still names "
                f"flask-discord-roles' {', '.join(named)} in its down_revision or depends_on, from when our "
                "revisions were a branch of yours. They are not part of your history any more: take ours "
                "out (down_revision = your previous revision, or None for your first; depends_on = None). "
                "See *Coming from the discord_roles branch* in the docs' Migrations page."
            ) from None


def _move_our_revision(config: Any) -> Any:
    """Flask-Migrate's configure callback: runs before every ``flask db`` command, in its app context."""
    if not has_app_context():
        return config
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app not in _hooked_apps:  # one Migrate object may serve apps without us
        return config
    _attach(app)  # Flask-Migrate may have been set up again inside this very app context
    script_location = config.get_main_option("script_location")
    if script_location and not os.path.isdir(script_location):
        return config  # `flask db init`: it writes files and leaves the database alone, and so do we
    _refuse_our_revisions_in_the_hosts_history(config)
    try:
        with get_state(app).db.engine.begin() as connection:
            move_from_host_table(connection, host_version_table(app))
    except sa.exc.OperationalError as error:
        # Commands such as `flask db heads` need no database; those that do report this themselves.
        logger.debug("Could not look for an old flask-discord-roles revision: %s", error)
    return config
