"""A PostgreSQL schema handed from one test to the next (``tests.tables``) is as good as a new one: no rows
left, every id counting from 1 again, and a schema a test changed is dropped rather than handed on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import HOST_DB, POSTGRES_URL, build_host_app
from tests.tables import OurTables, new_schema_name, schema_url


@pytest.fixture
def tables(tmp_path: Path) -> Iterator[OurTables]:
    """Its own OurTables, so the schemas it keeps are not the session's."""
    build_host_app("sqlite://")  # maps our models onto HOST_DB's metadata, as every test's app does
    own = OurTables(HOST_DB, tmp_path, POSTGRES_URL)
    yield own
    own.close()


def new_schema(tables: OurTables) -> str:
    schema = new_schema_name()
    with tables.admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    tables.install(schema_url(POSTGRES_URL, schema))
    return schema


def schema_exists(tables: OurTables, name: str) -> bool:
    with tables.admin.connect() as connection:
        found = connection.scalar(
            sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :n"), {"n": name}
        )
    return bool(found)


def a_guild_and_a_backfill(schema: str) -> tuple[int, int]:
    """A row in each of two tables (one id a SERIAL, the other a BIGSERIAL); the ids they were given."""
    engine = sa.create_engine(schema_url(POSTGRES_URL, schema), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            guild = connection.scalar(
                sa.text(
                    "INSERT INTO discord_roles_guilds (store_id, guild_id, linked_at) "
                    "VALUES ('store-1', :guild, now()) RETURNING id"
                ),
                {"guild": str(rows_in_our_tables(schema) + 1)},
            )
            backfill = connection.scalar(
                sa.text(
                    "INSERT INTO discord_roles_backfills (store_id, mapping_id, package_id, guild_id, "
                    "role_id, status, total, scan_done, created_at, updated_at) VALUES ('store-1', 1, "
                    "'p1', '1', '2', 'completed', 0, true, now(), now()) RETURNING id"
                )
            )
            return int(guild), int(backfill)
    finally:
        engine.dispose()


def rows_in_our_tables(schema: str) -> int:
    engine = sa.create_engine(schema_url(POSTGRES_URL, schema), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return sum(
                int(connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
                for table in HOST_DB.metadata.sorted_tables
            )
    finally:
        engine.dispose()


def test_the_next_test_gets_the_schema_empty_with_ids_from_one(tables: OurTables) -> None:
    first = new_schema(tables)
    assert a_guild_and_a_backfill(first) == (1, 1)
    a_guild_and_a_backfill(first)
    tables.release(first)
    assert not schema_exists(tables, first), "a released schema keeps no test's name"
    assert len(tables.kept) == 1, "the first test's schema should be kept for the next"

    second = new_schema(tables)
    assert not tables.kept, "the next test should get the kept schema"
    try:
        assert rows_in_our_tables(second) == 0, "rows of the last test were handed on"
        assert a_guild_and_a_backfill(second) == (1, 1), "ids should count from 1 again, as in a new schema"
    finally:
        tables.release(second)


def test_a_schema_the_test_changed_is_dropped_not_handed_on(tables: OurTables) -> None:
    changed = new_schema(tables)
    engine = sa.create_engine(schema_url(POSTGRES_URL, changed), poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE discord_roles_deliveries ADD COLUMN note TEXT"))
    engine.dispose()
    tables.release(changed)
    assert not schema_exists(tables, changed)
    assert not tables.kept, "a changed schema was kept"

    fresh = new_schema(tables)
    try:
        engine = sa.create_engine(schema_url(POSTGRES_URL, fresh), poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            columns = sa.inspect(connection).get_columns("discord_roles_deliveries")
        engine.dispose()
        assert "note" not in {column["name"] for column in columns}, "a changed schema was handed on"
    finally:
        tables.release(fresh)
