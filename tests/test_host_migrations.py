"""A host's plain Flask-Migrate commands, run for real in a project of its own, beside ours.

Each test writes a small storefront (``host.py``: its own model, ``Migrate(app, db)``, ``DiscordRoles(app)``)
into a temporary folder and runs ``python -m flask --app host …`` there, as a developer would.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import alembic.command
import flask_migrate
import pytest
import sqlalchemy as sa

from flask_discord_roles.migrations import VERSION_TABLE, head
from flask_discord_roles.migrations import upgrade as upgrade_ours

ROOT = Path(__file__).resolve().parents[1]
OUR_MIGRATIONS = ROOT / "flask_discord_roles" / "migrations"

HOST_APP = textwrap.dedent(
    """
    import os

    from flask import Flask
    from flask_migrate import Migrate
    from flask_sqlalchemy import SQLAlchemy

    from flask_discord_roles import DiscordRoles

    app = Flask(__name__)
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=os.environ["HOST_DATABASE_URL"])
    db = SQLAlchemy(app)


    class Item(db.Model):
        __tablename__ = "shop_items"
        id = db.Column(db.Integer, primary_key=True)
        name = db.Column(db.String(100), nullable=False)


    Migrate(app, db)
    DiscordRoles(app)
    """
)


OLD_BRANCH_HOST_REVISION = textwrap.dedent(
    '''
    """shop

    Revision ID: shop0001
    Revises:
    """

    import sqlalchemy as sa
    from alembic import op

    revision = "shop0001"
    down_revision = None
    branch_labels = ("shop",)
    depends_on = None


    def upgrade():
        op.create_table(
            "shop_items",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )


    def downgrade():
        op.drop_table("shop_items")
    '''
)


class HostProject:
    """The storefront's folder, and its ``flask`` command."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder = folder
        self.database_url = database_url
        (folder / "host.py").write_text(HOST_APP)

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.start_flask(*args)
        stdout, stderr = done.communicate(timeout=120)
        assert done.returncode == 0, f"`flask {' '.join(args)}` failed:\n{stdout}\n{stderr}"
        return subprocess.CompletedProcess(done.args, done.returncode, stdout, stderr)

    def start_flask(self, *args: str) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "HOST_DATABASE_URL": self.database_url,
            "PYTHONPATH": str(ROOT),  # this checkout of flask-discord-roles, as if installed
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.pop("FLASK_APP", None)
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "host", *args],
            cwd=self.folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def on_the_old_branch(self, make_app: Any) -> None:
        """What `flask db upgrade heads` left before our revisions moved out: the host's migrations folder
        with its revision (made with the old recipe's ``--branch-label shop``), both tables' schemas, and
        ours beside the host's in ``alembic_version``, with no version table of our own."""
        migrations = self.folder / "migrations"
        config = flask_migrate.Config()
        config.config_file_name = str(migrations / "alembic.ini")
        alembic.command.init(config, str(migrations), template="flask")  # what `flask db init` does
        (migrations / "versions" / "shop0001_shop.py").write_text(OLD_BRANCH_HOST_REVISION)
        app, db, _ = make_app(self.database_url)
        with app.app_context():
            upgrade_ours()
            with db.engine.begin() as connection:
                connection.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
                connection.execute(
                    sa.text(
                        "CREATE TABLE shop_items "
                        "(id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(100) NOT NULL)"
                    )
                )
                connection.execute(
                    sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
                )
                connection.execute(
                    sa.text("INSERT INTO alembic_version VALUES ('shop0001'), (:ours)"), {"ours": head()}
                )
            db.engine.dispose()

    def revision_files(self) -> list[Path]:
        return sorted((self.folder / "migrations" / "versions").glob("*.py"))

    def version_rows(self, table: str) -> set[str]:
        engine = sa.create_engine(self.database_url, poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            rows = set(connection.scalars(sa.select(sa.column("version_num")).select_from(sa.table(table))))
        engine.dispose()
        return rows

    def tables(self) -> set[str]:
        engine = sa.create_engine(self.database_url, poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            names = set(sa.inspect(connection).get_table_names())
        engine.dispose()
        return names


@pytest.fixture
def host(tmp_path: Path, database_url: str) -> HostProject:
    folder = tmp_path / "shop"
    folder.mkdir()
    return HostProject(folder, database_url)


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` and its hash (bytecode caches aside: Python writes those as it pleases)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_plain_flask_db_commands_write_only_into_the_hosts_folder(host: HostProject) -> None:
    package_before = fingerprint(OUR_MIGRATIONS)

    host.flask("db", "init")
    host.flask("db", "migrate", "-m", "shop")
    host.flask("db", "upgrade")
    ours = host.flask("discord-roles", "db", "upgrade")

    revisions = host.revision_files()
    assert len(revisions) == 1, f"one revision in the host's migrations/versions, found {revisions}"
    revision = revisions[0].read_text()
    assert "shop_items" in revision, "the host's revision must create the host's table"
    assert "discord_roles" not in revision, f"the host's revision must leave our tables alone:\n{revision}"
    assert fingerprint(OUR_MIGRATIONS) == package_before, "a flask db command changed our package's files"

    assert f"to {head()} (head)" in ours.stdout, ours.stdout
    tables = host.tables()
    assert {"shop_items", "discord_roles_deliveries", "discord_roles_bots", VERSION_TABLE} <= tables
    assert host.version_rows(VERSION_TABLE) == {head()}
    assert host.version_rows("alembic_version") == {revisions[0].name.split("_")[0]}

    again = host.flask("db", "migrate", "-m", "nothing")
    assert "No changes in schema detected" in again.stderr, again.stderr
    assert host.revision_files() == revisions, "a migrate with nothing to do must write no revision"


def test_a_database_on_the_old_discord_roles_branch_keeps_working_with_flask_db(
    host: HostProject, make_app: Any
) -> None:
    host.on_the_old_branch(make_app)

    upgraded = host.flask("db", "upgrade")

    assert f"Moved flask-discord-roles' revision {head()} from alembic_version" in upgraded.stderr, (
        upgraded.stderr
    )
    assert host.version_rows("alembic_version") == {"shop0001"}, "the host's own revision must stay"
    assert host.version_rows(VERSION_TABLE) == {head()}
    migrated = host.flask("db", "migrate", "-m", "nothing")
    assert "No changes in schema detected" in migrated.stderr, migrated.stderr
    assert "Moved" not in migrated.stderr, "the move happens once"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_containers_that_all_migrate_as_they_start_take_turns(host: HostProject) -> None:
    started = [host.start_flask("discord-roles", "db", "upgrade") for _ in range(3)]
    outputs = []
    for process in started:
        stdout, stderr = process.communicate(timeout=120)
        outputs.append(stdout)
        assert process.returncode == 0, f"a concurrent upgrade failed:\n{stdout}\n{stderr}"
    assert sum("from nothing (no tables)" in output for output in outputs) == 1, outputs
    assert sum("already at" in output for output in outputs) == 2, outputs
