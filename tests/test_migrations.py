"""Our Alembic branch, run the way a host runs it, creates exactly the models' schema."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import Migrate, downgrade, init, upgrade

from flask_discord_roles._runtime.sql_functions import ENQUEUE_ORDER_SIGNATURE as SIGNATURE
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.migrations import BRANCH_LABEL, VERSIONS_DIR


@pytest.fixture(autouse=True)
def _keep_logging_config() -> Iterator[None]:
    # Flask-Migrate's env.py calls logging.config.fileConfig, which disables every existing logger.
    before = {
        name: logger.disabled
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root_handlers, root_level = list(logging.root.handlers), logging.root.level
    yield
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.disabled = before.get(name, False)
    logging.root.handlers[:] = root_handlers
    logging.root.setLevel(root_level)


def test_flask_db_upgrade_heads_matches_the_models(database_url: str, tmp_path: Path, make_app: Any) -> None:
    app, db, _ = make_app(database_url)
    directory = str(tmp_path / "migrations")
    Migrate(app, db, directory=directory)
    # Flask-Migrate was set up after DiscordRoles here, so register the branch the documented way.
    from flask_discord_roles.migrations import register_with_flask_migrate

    assert register_with_flask_migrate(app)
    with app.app_context():
        init(directory=directory)
        upgrade(directory=directory, revision="heads")
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
            tables = set(sa.inspect(connection).get_table_names())
        assert differences == [], f"migration and models disagree: {differences}"
        with db.engine.connect() as connection:
            migrated = _what_compare_metadata_misses(connection)
        expected = {table.name for table in get_state(app).models.tables}
        assert expected <= tables
        if db.engine.dialect.name == "postgresql":
            assert _enqueue_function_exists(db), "upgrade heads must install discord_roles_enqueue_order"

        downgrade(directory=directory, revision=f"{BRANCH_LABEL}@base")
        with db.engine.connect() as connection:
            left = set(sa.inspect(connection).get_table_names()) & expected
        assert left == set(), f"downgrade left tables behind: {left}"
        db.create_all()
        with db.engine.connect() as connection:
            created = _what_compare_metadata_misses(connection)
        db.drop_all()
        assert migrated == created, "the migration's partial indexes or collations differ from the models'"
        if db.engine.dialect.name == "postgresql":
            assert not _enqueue_function_exists(db), "downgrade must drop discord_roles_enqueue_order"
        db.engine.dispose()


def test_create_all_and_drop_all_install_and_remove_the_postgresql_function(
    database_url: str, make_app: Any
) -> None:
    app, db, _ = make_app(database_url)
    with app.app_context():
        db.create_all()
        installed = db.engine.dialect.name != "postgresql" or _enqueue_function_exists(db)
        db.drop_all()
        removed = db.engine.dialect.name != "postgresql" or not _enqueue_function_exists(db)
        db.engine.dispose()
    assert installed, "db.create_all() must create discord_roles_enqueue_order on PostgreSQL"
    assert removed, "db.drop_all() must drop discord_roles_enqueue_order on PostgreSQL"


def _what_compare_metadata_misses(connection: sa.Connection) -> dict[str, Any]:
    """The deliveries table's index predicates and column collations, which Alembic does not compare."""
    inspector = sa.inspect(connection)
    table = "discord_roles_deliveries"
    indexes = {
        index["name"]: (
            tuple(index["column_names"]),
            str(index.get("dialect_options", {}).get(f"{connection.dialect.name}_where", "")),
        )
        for index in inspector.get_indexes(table)
    }
    collations: dict[str, Any] = {}
    if connection.dialect.name == "postgresql":  # SQLAlchemy does not reflect them there
        collations = dict(
            connection.execute(
                sa.text(
                    "SELECT column_name, collation_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = :table"
                ),
                {"table": table},
            ).all()
        )
        assert collations["idempotency_key"] == "C", "order lookups need the key compared byte by byte"
    return {"indexes": indexes, "collations": collations}


def _enqueue_function_exists(db: Any) -> bool:
    with db.engine.connect() as connection:
        found = connection.scalar(sa.text("SELECT to_regprocedure(:name) IS NOT NULL"), {"name": SIGNATURE})
    return bool(found)


def test_init_app_registers_the_branch_when_flask_migrate_comes_first(tmp_path: Path) -> None:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_discord_roles import DiscordRoles

    app = Flask("host")
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI="sqlite://")
    db = SQLAlchemy(app)
    migrate = Migrate(app, db, directory=str(tmp_path / "migrations"))
    DiscordRoles(app, db=db)
    DiscordRoles(app, db=db)
    with app.app_context():
        config = migrate.get_config(str(tmp_path / "migrations"))
        locations = config.get_version_locations_list()
    assert locations is not None
    assert locations.count(VERSIONS_DIR) == 1, f"our versions folder once, got {locations}"
    assert str(tmp_path / "migrations" / "versions") in locations, "the host's folder must stay"
