"""flask-discord-roles: purchase notifications carry names and a mention, and are leased like deliveries.

Revision ID: dr0002
Revises: dr0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dr0002"
down_revision = "dr0001"
branch_labels = None
depends_on = None

SNOWFLAKE = sa.String(20)
TIMESTAMP = sa.DateTime(timezone=True)

_COLUMNS = (
    ("package_names", sa.JSON()),
    ("discord_user_id", SNOWFLAKE),
    ("leased_by", sa.String(64)),
    ("lease_expires_at", TIMESTAMP),
    ("reason", sa.Text()),
)


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add several columns in one ALTER, Alembic copies the table there.
    with op.batch_alter_table("discord_roles_notifications") as batch:
        for name, type_ in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("discord_roles_notifications") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
