"""Our migrations: our own revisions in our own version table, and the host's Flask-Migrate kept apart.

The host's real ``flask db`` commands, run in a project of its own, are in ``test_host_migrations.py``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles, OrderEvent
from flask_discord_roles._core.queue import enqueue_order
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.sql_functions import ENQUEUE_ORDER_MARKS_LINKED_ROLES
from flask_discord_roles._runtime.sql_functions import ENQUEUE_ORDER_SIGNATURE as SIGNATURE
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.migrations import (
    VERSION_TABLE,
    VERSIONS_DIR,
    Migrated,
    MigrationError,
    current,
    downgrade,
    head,
    include_name,
    include_object,
    stamp,
    upgrade,
)
from tests.conftest import HOST_DB

OLDER = "dr0007"  # a revision before head, as a host that skipped a release has
BEFORE_V2 = "dr0011"  # the last revision whose PostgreSQL enqueue function is V1


def not_our_version_table(name: str | None, type_: str, _parents: Any) -> bool:
    return not (type_ == "table" and name == VERSION_TABLE)


def test_upgrade_creates_exactly_the_models_schema_and_downgrade_removes_it(
    database_url: str, make_app: Any
) -> None:
    app, db, _ = make_app(database_url)
    with app.app_context():
        assert current() is None
        assert upgrade() == Migrated(before=None, after=head())
        assert current() == head()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_name": not_our_version_table}
            )
            differences = compare_metadata(context, db.metadata)
            tables = set(sa.inspect(connection).get_table_names())
            migrated = _what_compare_metadata_misses(connection)
        assert differences == [], f"migration and models disagree: {differences}"
        expected = {table.name for table in get_state(app).models.tables}
        assert expected <= tables
        if db.engine.dialect.name == "postgresql":
            assert _enqueue_function_exists(db), "upgrade must install discord_roles_enqueue_order"

        assert downgrade("base") == Migrated(before=head(), after=None)
        with db.engine.connect() as connection:
            left = set(sa.inspect(connection).get_table_names()) & expected
        assert left == set(), f"downgrade left tables behind: {left}"
        if db.engine.dialect.name == "postgresql":
            assert not _enqueue_function_exists(db), "downgrade must drop discord_roles_enqueue_order"
        db.create_all()
        with db.engine.connect() as connection:
            created = _what_compare_metadata_misses(connection)
        db.drop_all()
        assert migrated == created, "the migration's partial indexes or collations differ from the models'"
        db.engine.dispose()


def test_upgrade_goes_step_by_step_from_an_older_revision(database_url: str, make_app: Any) -> None:
    app, db, _ = make_app(database_url)
    with app.app_context():
        assert upgrade(OLDER) == Migrated(None, OLDER)
        assert upgrade() == Migrated(OLDER, head())
        assert upgrade() == Migrated(head(), head()), "a second upgrade has nothing to do"
        assert downgrade(OLDER) == Migrated(head(), OLDER)
        db.engine.dispose()


def test_an_unknown_revision_is_refused_and_changes_nothing(database_url: str, make_app: Any) -> None:
    app, db, _ = make_app(database_url)
    with app.app_context():
        upgrade(OLDER)
        for command in (upgrade, downgrade, stamp):
            with pytest.raises(MigrationError, match=r"'dr9999'.*dr0001, dr0002"):
                command("dr9999")
        assert current() == OLDER
        db.engine.dispose()


def test_tables_made_by_create_all_are_refused_until_stamped(database_url: str, make_app: Any) -> None:
    app, db, _ = make_app(database_url)
    with app.app_context():
        db.create_all()
        with pytest.raises(MigrationError, match="`flask discord-roles db stamp head`"):
            upgrade()
        assert current() is None, "the refused upgrade must record nothing"
        assert stamp("head") == Migrated(None, head())
        assert upgrade() == Migrated(head(), head()), "after the stamp there is nothing to do"
        db.engine.dispose()


def _on_the_old_branch(db: SQLAlchemy, ours: str) -> None:
    """Our revision in the host's alembic_version, as the old ``discord_roles`` branch left it."""
    with db.engine.begin() as connection:
        connection.execute(sa.table(VERSION_TABLE).delete())
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(
            sa.text("INSERT INTO alembic_version VALUES ('shop0001'), (:ours)"), {"ours": ours}
        )


def _versions(db: SQLAlchemy, table: str) -> set[str]:
    with db.engine.connect() as connection:
        query = sa.select(sa.column("version_num")).select_from(sa.table(table))
        return set(connection.scalars(query))


def test_upgrade_moves_our_revision_out_of_the_hosts_alembic_version_once(
    database_url: str, make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, db, _ = make_app(database_url)
    with app.app_context():
        upgrade(OLDER)
        _on_the_old_branch(db, OLDER)
        assert current() == OLDER, "current() must find our revision where the old branch left it"

        with caplog.at_level(logging.WARNING, logger="flask_discord_roles.migrations"):
            assert upgrade() == Migrated(OLDER, head()), "the moved revision is where the upgrade starts"
            assert upgrade() == Migrated(head(), head())
        moved = [record.getMessage() for record in caplog.records if "Moved" in record.getMessage()]
        assert len(moved) == 1, f"the move is logged once, got {moved}"
        assert f"revision {OLDER} from alembic_version" in moved[0]
        assert _versions(db, "alembic_version") == {"shop0001"}, "the host's revision must stay"
        assert _versions(db, VERSION_TABLE) == {head()}
        db.engine.dispose()


def test_a_failed_upgrade_after_the_move_leaves_the_old_layout(database_url: str, make_app: Any) -> None:
    app, db, _ = make_app(database_url)
    with app.app_context():
        upgrade(OLDER)
        _on_the_old_branch(db, OLDER)
        with pytest.raises(MigrationError):
            upgrade("dr9999")
        assert _versions(db, "alembic_version") == {"shop0001", OLDER}, "move and upgrade are one transaction"
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


def test_a_database_still_on_the_first_enqueue_function_still_queues_linked_roles(
    database_url: str, make_app: Any
) -> None:
    """A host that upgraded the package but not yet its tables (V1 of the PostgreSQL function, which
    does not return the Linked Roles mark) loses no connection; migrating installs the version that
    returns it, and the downgrade puts V1 back."""
    app, db, _ = make_app(database_url)
    with app.app_context():
        upgrade(BEFORE_V2)
        assert _function_marks_linked_roles(db) is not True, f"{BEFORE_V2} installs V1"
        assert _linked_customer_pays(app, db, "order-1"), "on V1 the checkout's statement finds the mark"
        db.engine.dispose()

    app, db, _ = make_app(database_url)  # a new process, after `flask discord-roles db upgrade`
    with app.app_context():
        upgrade()
        assert _function_marks_linked_roles(db) is not False, "head installs the version with the mark"
        assert _linked_customer_pays(app, db, "order-2"), "the function returns the mark itself"
        downgrade(BEFORE_V2)
        assert _function_marks_linked_roles(db) is not True, "the downgrade must put V1 back"
        db.engine.dispose()


def _linked_customer_pays(app: Flask, db: Any, order_id: str) -> bool:
    """A store with Linked Roles on; its linked customer pays: is their connection to be queued?"""
    state = get_state(app)
    models = state.models
    if not db.session.scalar(sa.select(sa.func.count()).select_from(models.StoreSettings)):
        db.session.add(models.StoreSettings(store_id="store-1", linked_roles_enabled=True))
        db.session.add(
            models.DiscordAccount(store_id="store-1", customer_id="c-1", discord_user_id="500000000000000001")
        )
        db.session.add(
            models.RoleMapping(
                store_id="store-1",
                package_id="vip",
                guild_id="400000000000000001",
                role_id="410000000000000001",
            )
        )
        db.session.commit()
    event = OrderEvent.build(store_id="store-1", order_id=order_id, customer_id="c-1", package_ids=["vip"])
    queued = enqueue_order(state, event)
    db.session.commit()
    assert len(queued.created) == 1, f"the order queued {queued.created}, not its one role"
    return queued.role_connection


def _function_marks_linked_roles(db: Any) -> bool | None:
    """On PostgreSQL, whether the installed function returns the Linked Roles mark; None on SQLite."""
    if db.engine.dialect.name != "postgresql":
        return None
    with db.engine.connect() as connection:
        return bool(connection.exec_driver_sql(ENQUEUE_ORDER_MARKS_LINKED_ROLES).scalar())


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


# The host's Flask-Migrate: set up before us, after us, or in a factory, it never sees our tables.


def host_filter(_obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
    """A host's own include_object: it keeps a legacy table out of its autogenerate."""
    return name != "legacy_reports"


def migrate_first(directory: Path) -> Flask:
    app = _bare_app()
    Migrate(app, HOST_DB, directory=str(directory), include_object=host_filter)
    DiscordRoles(app, db=HOST_DB)
    return app


def discord_roles_first(directory: Path) -> Flask:
    app = _bare_app()
    DiscordRoles(app, db=HOST_DB)
    Migrate(app, HOST_DB, directory=str(directory), include_object=host_filter)
    return app


def factory(directory: Path) -> Flask:
    migrate, discord_roles = Migrate(include_object=host_filter), DiscordRoles()
    app = _bare_app()
    discord_roles.init_app(app, db=HOST_DB)
    migrate.init_app(app, HOST_DB, directory=str(directory))
    return app


def _bare_app() -> Flask:
    app = Flask("host")
    app.config.update(
        TESTING=True, SQLALCHEMY_DATABASE_URI="sqlite://", DISCORD_ROLES_ENCRYPTION_KEYS=[generate_key()]
    )
    HOST_DB.init_app(app)
    return app


@pytest.mark.parametrize("build", [migrate_first, discord_roles_first, factory])
def test_the_hosts_autogenerate_skips_our_tables_whatever_the_order(
    build: Callable[[Path], Flask], tmp_path: Path
) -> None:
    app = build(tmp_path / "migrations")
    with app.app_context():  # as every `flask db` command runs
        args = app.extensions["migrate"].configure_args
        config = app.extensions["migrate"].migrate.get_config()
    include_object, include_name = args["include_object"], args["include_name"]
    for ours in ("discord_roles_deliveries", VERSION_TABLE):
        assert not include_object(None, ours, "table", False, None), f"{ours} must be skipped in the metadata"
        assert not include_name(ours, "table", {}), f"{ours} must be skipped in the database"
    assert include_object(None, "shop_items", "table", False, None), "the host's tables must stay"
    assert include_name("shop_items", "table", {})
    assert include_object(None, "discord_roles_x", "column", False, None), "only tables are filtered"
    assert not include_object(None, "legacy_reports", "table", False, None), (
        "the host's filter must still run"
    )
    locations = config.get_version_locations_list() or []
    assert VERSIONS_DIR not in locations, "our revisions must stay out of the host's Flask-Migrate"
    with app.app_context():
        assert app.extensions["migrate"].configure_args["include_object"] is include_object, (
            "a second app context must not wrap the filter again"
        )


def test_the_public_filters_for_a_custom_env_py_skip_our_tables_only() -> None:
    assert not include_name("discord_roles_bots", "table", {})
    assert not include_object(None, VERSION_TABLE, "table", True, None)
    assert include_name("shop_items", "table", {})
    assert include_object(None, "shop_items", "table", False, None)
    assert include_object(None, "ix_discord_roles_deliveries_status", "index", False, None), (
        "indexes go with their table: Alembic compares none of a skipped table's"
    )


def test_the_setting_turns_the_hook_off(tmp_path: Path) -> None:
    app = _bare_app()
    app.config["DISCORD_ROLES_REGISTER_MIGRATIONS"] = False
    Migrate(app, HOST_DB, directory=str(tmp_path / "migrations"))
    DiscordRoles(app, db=HOST_DB)
    with app.app_context():
        assert "include_object" not in app.extensions["migrate"].configure_args


def test_the_old_names_still_answer_with_a_warning() -> None:
    import flask_discord_roles.migrations as migrations

    with pytest.warns(DeprecationWarning, match="flask discord-roles db upgrade"):
        assert migrations.BRANCH_LABEL == "discord_roles"
    with pytest.warns(DeprecationWarning, match="remove migrate.configure"):
        include_versions = migrations.include_versions
    config = object()
    assert include_versions(config) is config, "include_versions no longer adds our revisions"


# `flask discord-roles db …`


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_db_commands(database_url: str, make_app: Any) -> None:
    app, db, _ = make_app(database_url)
    runner = app.test_cli_runner()

    def run(*args: str) -> Any:
        return runner.invoke(args=["discord-roles", "db", *args])

    assert "None: no flask-discord-roles tables yet" in run("current").output
    assert f"from nothing (no tables) to {OLDER}." in run("upgrade", OLDER).output
    assert f"{OLDER} (head is {head()}: run `flask discord-roles db upgrade`)" in run("current").output
    assert f"from {OLDER} to {head()} (head)" in run("upgrade").output
    assert "already at" in run("upgrade").output
    assert f"from {head()} (head) to nothing (no tables)" in run("downgrade", "base").output

    with app.app_context():
        db.create_all()
    refused = run("upgrade")
    assert refused.exit_code == 1
    assert "flask discord-roles db stamp head" in refused.output
    assert f"as at {head()} (head); no table was changed" in run("stamp", "head").output
    assert run("current").output.strip() == f"{head()} (head)"
    unknown = run("downgrade", "dr9999")
    assert unknown.exit_code == 1
    assert "'dr9999'" in unknown.output
    with app.app_context():
        db.engine.dispose()


HOST_REVISION_ON_OUR_BRANCH = """
revision = "shop0002"
down_revision = "shop0001"
branch_labels = None
depends_on = "dr0003"


def upgrade():
    pass


def downgrade():
    pass
"""


def test_a_host_revision_that_still_names_ours_gets_the_fix_spelled_out(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    (directory / "versions").mkdir(parents=True)
    (directory / "versions" / "shop0002_shop.py").write_text(HOST_REVISION_ON_OUR_BRANCH)
    app = migrate_first(directory)
    with (
        app.app_context(),
        pytest.raises(MigrationError, match=r"names flask-discord-roles' dr0003") as refused,
    ):
        app.extensions["migrate"].migrate.get_config()
    assert "depends_on = None" in str(refused.value)


def test_our_versions_folder_in_the_hosts_version_locations_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    (directory / "versions").mkdir(parents=True)
    (directory / "alembic.ini").write_text(
        f"[alembic]\npath_separator = os\nversion_locations = {VERSIONS_DIR}\n"
    )
    app = migrate_first(directory)
    with app.app_context(), pytest.raises(MigrationError, match="remove them"):
        app.extensions["migrate"].migrate.get_config()


def test_a_stray_revision_in_our_package_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_discord_roles.migrations import _environment

    versions = tmp_path / "versions"
    shutil.copytree(VERSIONS_DIR, versions)
    (versions / "3f2a1b_shop_tables.py").write_text(HOST_REVISION_ON_OUR_BRANCH)
    monkeypatch.setattr(_environment, "VERSIONS_DIR", str(versions))
    _environment._script.cache_clear()
    try:
        with pytest.raises(MigrationError, match=r"not ours: 3f2a1b_shop_tables\.py\. An older `flask db"):
            head()
    finally:
        _environment._script.cache_clear()
