"""Our Alembic branch (label ``discord_roles``) and how a host's Flask-Migrate finds it.

The revisions live in ``versions/`` inside the package, so they ship with it. A host adds this folder to its
Alembic ``version_locations`` (``init_app`` does it when Flask-Migrate was set up first) and runs
``flask db upgrade heads``: *heads*, because the host's own revisions and ours are separate branches.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

__all__ = ["BRANCH_LABEL", "VERSIONS_DIR", "include_versions"]

BRANCH_LABEL = "discord_roles"
VERSIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "versions")


def include_versions(config: Any) -> Any:
    """Add our versions folder to an Alembic ``Config``'s version locations; safe to call twice.

    Setting ``version_locations`` replaces Alembic's default (``<script_location>/versions``), so the
    host's own folder is listed explicitly. A separator is chosen when the host set none, because Alembic
    deprecates guessing one.
    """
    raw = config.get_main_option("version_locations")
    separator_name = config.get_main_option("path_separator") or config.get_main_option(
        "version_path_separator"
    )
    if separator_name is None:
        config.set_main_option("path_separator", "os")
        separator_name = "os"
    separator = {"space": " ", "newline": "\n", "os": os.pathsep, ":": ":", ";": ";"}.get(
        separator_name, os.pathsep
    )
    if raw:
        locations = [part.strip() for part in raw.split(separator) if part.strip()]
    else:
        script_location = config.get_main_option("script_location")
        locations = [os.path.join(script_location, "versions")] if script_location else []
    if not any(os.path.abspath(location) == VERSIONS_DIR for location in locations):
        locations.append(VERSIONS_DIR)
    # ConfigParser interpolates '%'; escape it in paths.
    config.set_main_option("version_locations", separator.join(locations).replace("%", "%%"))
    return config


def register_with_flask_migrate(app: Flask) -> bool:
    """Hook :func:`include_versions` into the app's Flask-Migrate, if it is set up; True if it was."""
    migrate_config = app.extensions.get("migrate")
    migrate = getattr(migrate_config, "migrate", None)
    if migrate is None:
        return False
    if include_versions not in migrate.configure_callbacks:
        migrate.configure(include_versions)
    return True
