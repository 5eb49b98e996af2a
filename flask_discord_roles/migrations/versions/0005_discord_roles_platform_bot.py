"""flask-discord-roles: a store's bot row may stand for the platform's shared bot.

Revision ID: dr0005
Revises: dr0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dr0005"
down_revision = "dr0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("discord_roles_bots") as batch:
        batch.add_column(
            sa.Column("uses_platform_bot", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("discord_roles_bots") as batch:
        batch.drop_column("uses_platform_bot")
