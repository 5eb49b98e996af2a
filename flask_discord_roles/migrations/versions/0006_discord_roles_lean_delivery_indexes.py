"""flask-discord-roles: fewer delivery index writes per checkout.

- The queue's indexes hold only the rows they serve: ``due`` the scheduled pending rows, ``expiry`` the
  pending grants still waiting for their customer, ``store_status`` the settled rows. A new row is
  written to one of them, not three.
- ``order`` goes: an order's rows are found by their idempotency key's ``order:<id>:`` prefix in the
  unique index, which on PostgreSQL needs the key compared byte by byte (``COLLATE "C"``).

Revision ID: dr0006
Revises: dr0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dr0006"
down_revision = "dr0005"
branch_labels = None
depends_on = None

TABLE = "discord_roles_deliveries"
# Written out, not imported from the models: a migration must keep meaning what it meant when written.
SCHEDULED = "status = 'pending' AND next_attempt_at IS NOT NULL"
WAITING = "status = 'pending' AND next_attempt_at IS NULL AND expires_at IS NOT NULL"
SETTLED = "status <> 'pending'"

LEAN = {
    "ix_discord_roles_deliveries_due": (["next_attempt_at", "id"], SCHEDULED),
    "ix_discord_roles_deliveries_expiry": (["expires_at"], WAITING),
    "ix_discord_roles_deliveries_store_status": (["store_id", "status", "id"], SETTLED),
}
FULL = {
    "ix_discord_roles_deliveries_due": ["status", "next_attempt_at"],
    "ix_discord_roles_deliveries_expiry": ["status", "expires_at"],
    "ix_discord_roles_deliveries_store_status": ["store_id", "status", "id"],
}
ORDER_INDEX = ("ix_discord_roles_deliveries_order", ["store_id", "order_id"])


def upgrade() -> None:
    for name in LEAN:
        op.drop_index(op.f(name), table_name=TABLE)
    for name, (columns, where) in LEAN.items():
        op.create_index(
            op.f(name),
            TABLE,
            columns,
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )
    op.drop_index(op.f(ORDER_INDEX[0]), table_name=TABLE)
    if op.get_bind().dialect.name == "postgresql":
        # Rebuilds the unique index in the new order; existing keys are unchanged.
        op.alter_column(
            TABLE,
            "idempotency_key",
            type_=sa.String(255, collation="C"),
            existing_type=sa.String(255),
            existing_nullable=False,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # A new type without a collation takes the database's default again.
        op.alter_column(
            TABLE,
            "idempotency_key",
            type_=sa.String(255),
            existing_type=sa.String(255, collation="C"),
            existing_nullable=False,
        )
    op.create_index(op.f(ORDER_INDEX[0]), TABLE, ORDER_INDEX[1])
    for name in FULL:
        op.drop_index(op.f(name), table_name=TABLE)
    for name, columns in FULL.items():
        op.create_index(op.f(name), TABLE, columns)
