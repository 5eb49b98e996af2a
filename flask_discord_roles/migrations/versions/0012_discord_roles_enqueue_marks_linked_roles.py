"""flask-discord-roles: on PostgreSQL, the checkout's function also returns the Linked Roles mark.

V2 of ``discord_roles_enqueue_order`` finds whether the customer's Linked Roles connection must be
queued inside the call, so the checkout no longer plans a UNION with a join beside it on every order.
Same signature and result columns as V1, so ``CREATE OR REPLACE`` swaps it in place; the downgrade puts
V1 back.

Revision ID: dr0012
Revises: dr0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Versioned and never edited (see sql_functions), so replaying this revision always installs V2.
from flask_discord_roles._runtime.sql_functions import ENQUEUE_ORDER_V1, ENQUEUE_ORDER_V2

revision = "dr0012"
down_revision = "dr0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite has no stored functions: its INSERT … SELECT already returns the mark with each delivery.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.DDL(ENQUEUE_ORDER_V2))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.DDL(ENQUEUE_ORDER_V1))
