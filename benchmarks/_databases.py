"""Throwaway databases for the benchmarks: PostgreSQL schemas or SQLite files that live for one run.

PostgreSQL is reached at ``DISCORD_ROLES_TEST_POSTGRES_URL`` (the test suite's variable), by default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``. A run gets schemas of its own, named
``bench_<random>``: the ``search_path`` in each URL puts every unqualified table of the app there, and
they are dropped at the end whatever happened.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

POSTGRES_URL = os.environ.get(
    "DISCORD_ROLES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def schema_url(schema: str) -> str:
    """The URL whose connections find their tables in ``schema``."""
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def new_schema_name() -> str:
    return f"bench_{uuid.uuid4().hex[:12]}"


@contextmanager
def postgresql_schemas(count: int = 1) -> Iterator[list[str]]:
    """The URLs of ``count`` new, empty schemas, dropped on the way out."""
    schemas = [new_schema_name() for _ in range(count)]
    admin = sa.create_engine(POSTGRES_URL, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as connection:
            for schema in schemas:
                connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        yield [schema_url(schema) for schema in schemas]
    finally:
        with admin.begin() as connection:
            for schema in schemas:
                connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@contextmanager
def sqlite_files(*names: str, prefix: str = "bench-") -> Iterator[list[str]]:
    """The URLs of new SQLite files, one per name, in a directory removed on the way out."""
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        yield [f"sqlite:///{Path(directory) / name}" for name in names]
