"""flask-discord-roles: deferred /claim answers, queued so any executor can edit the message later.

Revision ID: dr0004
Revises: dr0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dr0004"
down_revision = "dr0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "discord_roles_claim_replies",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("application_id", sa.String(20), nullable=False),
        sa.Column("token_ciphertext", sa.Text(), nullable=False),
        sa.Column("delivery_ids", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("leased_by", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("answer_by", TIMESTAMP, nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_discord_roles_claim_replies"),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name="ck_discord_roles_claim_replies_status"
        ),
    )
    op.create_index(
        "ix_discord_roles_claim_replies_due",
        "discord_roles_claim_replies",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_discord_roles_claim_replies_due", table_name="discord_roles_claim_replies")
    op.drop_table("discord_roles_claim_replies")
