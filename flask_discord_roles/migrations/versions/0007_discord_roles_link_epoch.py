"""flask-discord-roles: a link remembers the first delivery made under it.

Unlinking a server is destructive: what was queued, failed or delivered there before belongs to the old
link, and relinking must not revive it (a retry, a /claim or its re-sync). ``deliveries_from_id`` is the
first delivery id of the current link; rows below it are refused by the role gate. Links made before
this revision keep NULL, which counts every row as theirs, as before.

Revision ID: dr0007
Revises: dr0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dr0007"
down_revision = "dr0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("discord_roles_guilds") as batch:
        batch.add_column(
            sa.Column(
                "deliveries_from_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("discord_roles_guilds") as batch:
        batch.drop_column("deliveries_from_id")
