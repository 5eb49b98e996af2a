"""flask-discord-roles: on PostgreSQL, a checkout queues its deliveries through one cached-plan function.

Revision ID: dr0003
Revises: dr0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Versioned and never edited (see sql_functions), so replaying this revision always installs V1.
from flask_discord_roles._runtime.sql_functions import DROP_ENQUEUE_ORDER, ENQUEUE_ORDER_V1

revision = "dr0003"
down_revision = "dr0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite has no stored functions; flask-discord-roles uses plain INSERT … SELECT statements there.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.DDL(ENQUEUE_ORDER_V1))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.DDL(DROP_ENQUEUE_ORDER))
