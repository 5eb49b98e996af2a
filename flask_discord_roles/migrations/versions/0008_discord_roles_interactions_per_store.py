"""flask-discord-roles: an interaction is remembered per store, not across every store.

Interaction ids are unique on Discord, but the id is all a redelivery is recognised by: keyed on the id
alone, one store's record made another store's delivery of the same id look "already handled". The key
becomes ``(interaction_id, store_id)``; a record without a store (none are written) cannot be keyed and
goes, which only forgets a redelivery window of at most a day.

Revision ID: dr0008
Revises: dr0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dr0008"
down_revision = "dr0007"
branch_labels = None
depends_on = None

TABLE = "discord_roles_interactions"
PRIMARY_KEY = "pk_discord_roles_interactions"
HOST_ID = sa.String(64)


def upgrade() -> None:
    table = sa.table(TABLE, sa.column("store_id"))
    op.execute(sa.delete(table).where(table.c.store_id.is_(None)))
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_constraint(op.f(PRIMARY_KEY), type_="primary")
        batch.alter_column("store_id", existing_type=HOST_ID, nullable=False)
        batch.create_primary_key(op.f(PRIMARY_KEY), ["interaction_id", "store_id"])


def downgrade() -> None:
    # Keyed on the id alone again: keep one store's record of an id that several stores received.
    table = sa.table(TABLE, sa.column("interaction_id"), sa.column("store_id"))
    other = table.alias("other")
    op.execute(
        sa.delete(table).where(
            sa.exists().where(
                other.c.interaction_id == table.c.interaction_id, other.c.store_id < table.c.store_id
            )
        )
    )
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_constraint(op.f(PRIMARY_KEY), type_="primary")
        batch.alter_column("store_id", existing_type=HOST_ID, nullable=True)
        batch.create_primary_key(op.f(PRIMARY_KEY), ["interaction_id"])
