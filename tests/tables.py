"""Our tables in a test's database, without paying ``db.create_all()`` in every test.

``create_all`` costs 0.1 to 0.4 s a test (reflection of every table first, then one DDL statement at a time,
each a commit on SQLite): across some 1,400 tests that was a fifth of the suite. The tables are the same for
every test, so they are made once per process: on SQLite into a template file that each test's database is
copied from, on PostgreSQL as one compiled DDL script sent in a single round trip into the test's schema.
``tests/test_migrations.py`` checks, separately, that the migrations build the same schema as the models.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url


class OurTables:
    """Installs the models' schema into an empty database named by its URL."""

    def __init__(self, db: SQLAlchemy, directory: Path) -> None:
        self._metadata = db.metadata
        self._sqlite_template = directory / "template.sqlite"
        self._postgresql_script: str | None = None

    def install(self, database_url: str) -> None:
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            self._install_sqlite(Path(url.database or ""))
        elif url.get_backend_name() == "postgresql":
            self._install_postgresql(database_url)
        else:
            raise AssertionError(f"no way to install our tables into {url.get_backend_name()}")

    def _install_sqlite(self, path: Path) -> None:
        assert not path.exists(), f"{path} should be a new database"
        if not self._sqlite_template.exists():
            engine = sa.create_engine(f"sqlite:///{self._sqlite_template}", poolclass=sa.pool.NullPool)
            self._metadata.create_all(engine)
            engine.dispose()
        shutil.copyfile(self._sqlite_template, path)

    def _install_postgresql(self, database_url: str) -> None:
        engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as connection:
                # The driver's own cursor: the script holds PL/pgSQL, whose '%' is not a placeholder.
                connection.connection.driver_connection.execute(self._postgresql_ddl())  # type: ignore[union-attr]
        finally:
            engine.dispose()

    def _postgresql_ddl(self) -> str:
        if self._postgresql_script is None:
            dialect = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
            statements: list[str] = []

            def collect(sql: sa.schema.ExecutableDDLElement, *_args: object, **_kwargs: object) -> None:
                statements.append(str(sql.compile(dialect=dialect)).strip())

            # A mock engine runs create_all's DDL events too (our enqueue function is one).
            mock = sa.create_mock_engine("postgresql+psycopg://", collect)  # type: ignore[arg-type]
            self._metadata.create_all(mock, checkfirst=False)  # type: ignore[arg-type]
            self._postgresql_script = ";\n".join(statements) + ";"
        return self._postgresql_script
