"""flask-discord-roles: a store's deliveries newest first, from an index.

``ix_discord_roles_deliveries_store`` on ``(store_id, id)``: the first page of a store's deliveries
(the tenant API's and the dashboard's listing, without filters) reads its 51 newest entries. Without
it, PostgreSQL walks the whole table backwards by id, or reads and sorts all of the store's rows: on a
table of a million rows, a small store's first page cost as much as the table was large.

Building it holds off writes to the deliveries table while it runs (a second or two per million rows).

Revision ID: dr0011
Revises: dr0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "dr0011"
down_revision = "dr0010"
branch_labels = None
depends_on = None

TABLE = "discord_roles_deliveries"
INDEX = "ix_discord_roles_deliveries_store"


def upgrade() -> None:
    op.create_index(op.f(INDEX), TABLE, ["store_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f(INDEX), table_name=TABLE)
