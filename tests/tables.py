"""Our tables in a test's database, without paying ``db.create_all()`` in every test.

``create_all`` costs 0.1 to 0.4 s a test (reflection of every table first, then one DDL statement at a time,
each a commit on SQLite): across some 1,400 tests that was a fifth of the suite. The tables are the same for
every test, so they are made once per process: on SQLite into a template file that each test's database is
copied from, on PostgreSQL as one compiled DDL script sent in a single round trip into the test's schema.
``tests/test_migrations.py`` checks, separately, that the migrations build the same schema as the models.

Even as one script, building the tables costs PostgreSQL ~0.2 s, and dropping them again as much (and
``TRUNCATE`` as much: it gives every table and index a new file). So a test's schema is not thrown away
when it ends with exactly the tables it was given: its rows are deleted, its sequences restarted, and it
waits, renamed, to become the next test's schema (a rename is one catalog row). A test that changed the
schema itself (a table renamed, another added, migrations run) gets its schema dropped as before.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

SEARCH_PATH_OPTION = "-csearch_path="
KEPT_SCHEMAS = 2
"""How many emptied schemas a process keeps ready (a test uses one at a time)."""

# Everything a test could change about a schema besides its rows, one line per object, so a schema is only
# handed on if it is still exactly what the DDL script built. Read with the schema as the search_path,
# so the schema's own name appears in none of the lines (a reused schema is renamed for each test).
_SHAPE = sa.text(
    """
    SELECT 'relation ' || c.relname || ' ' || c.relkind::text
    FROM pg_class c WHERE c.relnamespace = CAST(:schema AS regnamespace)
    UNION ALL
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
        || ' ' || a.attnotnull::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = CAST(:schema AS regnamespace) AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = CAST(:schema AS regnamespace)
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relnamespace = CAST(:schema AS regnamespace)
    UNION ALL
    SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
        || md5(p.prosrc)
    FROM pg_proc p WHERE p.pronamespace = CAST(:schema AS regnamespace)
    UNION ALL
    SELECT 'trigger ' || t.tgname
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = CAST(:schema AS regnamespace)
    UNION ALL
    SELECT 'type ' || typname FROM pg_type
    WHERE typnamespace = CAST(:schema AS regnamespace) AND typrelid = 0 AND typelem = 0
    """
)

# Each sequence back to its first value, as in a new schema (the script's SERIAL columns own them all).
_RESTART_SEQUENCES = (
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false)"
    " FROM pg_sequences WHERE schemaname = '{schema}'"
)


def schema_url(postgres_url: str, schema: str) -> str:
    """The URL of ``schema`` in the suite's PostgreSQL: search_path makes every unqualified table land
    in it."""
    return f"{postgres_url}?options={SEARCH_PATH_OPTION.replace('=', '%3D')}{schema}"


def schema_of(database_url: str) -> str:
    options = make_url(database_url).query.get("options", "")
    assert isinstance(options, str), database_url
    assert options.startswith(SEARCH_PATH_OPTION), database_url
    return options.removeprefix(SEARCH_PATH_OPTION)


def new_schema_name() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


class OurTables:
    """Installs the models' schema into an empty database named by its URL."""

    def __init__(self, db: SQLAlchemy, directory: Path, postgres_url: str) -> None:
        self._metadata = db.metadata
        self._sqlite_template = directory / "template.sqlite"
        self._postgresql_script: str | None = None
        self._postgres_url = postgres_url
        self._admin: sa.Engine | None = None
        self._shape: list[str] | None = None  # what the DDL script builds, as _SHAPE reads it
        self._kept: list[str] = []  # emptied schemas holding exactly our tables, ready to hand on

    @property
    def kept(self) -> tuple[str, ...]:
        """The emptied schemas waiting for a test, next one last."""
        return tuple(self._kept)

    def install(self, database_url: str) -> None:
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            self._install_sqlite(Path(url.database or ""))
        elif url.get_backend_name() == "postgresql":
            self._install_postgresql(schema_of(database_url))
        else:
            raise AssertionError(f"no way to install our tables into {url.get_backend_name()}")

    def _install_sqlite(self, path: Path) -> None:
        assert not path.exists(), f"{path} should be a new database"
        if not self._sqlite_template.exists():
            engine = sa.create_engine(f"sqlite:///{self._sqlite_template}", poolclass=sa.pool.NullPool)
            self._metadata.create_all(engine)
            engine.dispose()
        shutil.copyfile(self._sqlite_template, path)

    @property
    def admin(self) -> sa.Engine:
        if self._admin is None:
            # One connection kept open: three connects a test (create, install, release) cost more
            # than the statements they carry.
            self._admin = sa.create_engine(
                self._postgres_url, poolclass=sa.pool.QueuePool, pool_size=1, pool_pre_ping=True
            )
        return self._admin

    def _install_postgresql(self, schema: str) -> None:
        if self._kept:
            kept = self._kept.pop()
            with self.admin.begin() as connection:
                # DROP without CASCADE: the test's schema must still be empty, as a new one would be.
                connection.execute(sa.text(f"DROP SCHEMA {schema}"))
                connection.execute(sa.text(f"ALTER SCHEMA {kept} RENAME TO {schema}"))
            return
        with self.admin.begin() as connection:
            connection.execute(sa.text(f"SET LOCAL search_path TO {schema}"))
            # The driver's own cursor: the script holds PL/pgSQL, whose '%' is not a placeholder.
            connection.connection.driver_connection.execute(self._postgresql_ddl())  # type: ignore[union-attr]
            if self._shape is None:
                self._shape = self._read_shape(connection, schema)

    def release(self, schema: str) -> None:
        """The test using ``schema`` has ended: keep it, emptied, for the next test if it still holds
        exactly the tables the script built; otherwise drop it."""
        try:
            if self._shape is not None and len(self._kept) < KEPT_SCHEMAS and self._empty(schema):
                return
        except sa.exc.DBAPIError:
            pass  # a lock still held, a schema half-gone: drop it the ordinary way
        with self.admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))

    def _empty(self, schema: str) -> bool:
        kept = new_schema_name()
        with self.admin.begin() as connection:
            connection.execute(sa.text(f"SET LOCAL search_path TO {schema}"))
            if self._read_shape(connection, schema) != self._shape:
                return False
            tables = reversed(self._metadata.sorted_tables)  # children before their parents
            deletes = [f"DELETE FROM {table.name}" for table in tables]  # noqa: S608  (our own names)
            script = [
                # A connection a test leaked would hold its locks forever: give up and drop instead.
                "SET LOCAL lock_timeout = '2s'",
                *deletes,
                _RESTART_SEQUENCES.format(schema=schema),
                f"ALTER SCHEMA {schema} RENAME TO {kept}",
            ]
            # One round trip; the driver's own cursor, as the script's '%' is no placeholder.
            connection.connection.driver_connection.execute(";\n".join(script))  # type: ignore[union-attr]
        self._kept.append(kept)
        return True

    def _read_shape(self, connection: sa.Connection, schema: str) -> list[str]:
        # A few hundred catalog rows: starting parallel workers for them costs more than the scan.
        connection.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
        lines = connection.execute(_SHAPE, {"schema": schema}).scalars()
        return sorted(line.replace(f"{schema}.", "") for line in lines)

    def close(self) -> None:
        """Drop the schemas kept for tests that never came."""
        if self._admin is None:
            return
        with self._admin.begin() as connection:
            for schema in self._kept:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        self._kept.clear()
        self._admin.dispose()

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
