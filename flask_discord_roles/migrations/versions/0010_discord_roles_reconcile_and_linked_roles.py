"""flask-discord-roles: drift repair and Discord Linked Roles.

The store's ``reconcile_mode`` and ``linked_roles_enabled`` settings, the reconciler's runs (one per
server pass, resumable from their cursor), and the queue of role connections to push to Discord.

Revision ID: dr0010
Revises: dr0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dr0010"
down_revision = "dr0009"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HOST_ID = sa.String(64)
SNOWFLAKE = sa.String(20)
RUNNING = "status = 'running'"


def upgrade() -> None:
    with op.batch_alter_table("discord_roles_settings") as batch:
        batch.add_column(
            sa.Column("reconcile_mode", sa.String(16), server_default=sa.text("'off'"), nullable=False)
        )
        batch.add_column(
            sa.Column("linked_roles_enabled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.create_check_constraint(
            "ck_discord_roles_settings_reconcile_mode", "reconcile_mode IN ('off', 'report', 'repair')"
        )
    op.create_table(
        "discord_roles_reconcile_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cursor", SNOWFLAKE, nullable=True),
        sa.Column("members_seen", sa.Integer(), nullable=False),
        sa.Column("drift", sa.JSON(), nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("repairs", sa.Integer(), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("leased_by", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_discord_roles_reconcile_runs"),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'failed')", name="ck_discord_roles_reconcile_runs_status"
        ),
        sa.CheckConstraint(
            "mode IN ('off', 'report', 'repair')", name="ck_discord_roles_reconcile_runs_mode"
        ),
    )
    op.create_index(
        "ix_discord_roles_reconcile_runs_store", "discord_roles_reconcile_runs", ["store_id", "id"]
    )
    op.create_index(
        "uq_discord_roles_reconcile_runs_running",
        "discord_roles_reconcile_runs",
        ["store_id", "guild_id"],
        unique=True,
        postgresql_where=sa.text(RUNNING),
        sqlite_where=sa.text(RUNNING),
    )
    op.create_table(
        "discord_roles_role_connections",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("discord_user_id", SNOWFLAKE, nullable=False),
        sa.Column("customer_id", HOST_ID, nullable=True),
        sa.Column("metadata_values", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=True),
        sa.Column("leased_by", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("pushed_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_discord_roles_role_connections"),
        sa.UniqueConstraint("store_id", "discord_user_id", name="uq_discord_roles_role_connections_user"),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name="ck_discord_roles_role_connections_status"
        ),
    )
    op.create_index(
        "ix_discord_roles_role_connections_due",
        "discord_roles_role_connections",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_discord_roles_role_connections_due", table_name="discord_roles_role_connections")
    op.drop_table("discord_roles_role_connections")
    op.drop_index("uq_discord_roles_reconcile_runs_running", table_name="discord_roles_reconcile_runs")
    op.drop_index("ix_discord_roles_reconcile_runs_store", table_name="discord_roles_reconcile_runs")
    op.drop_table("discord_roles_reconcile_runs")
    with op.batch_alter_table("discord_roles_settings") as batch:
        batch.drop_constraint("ck_discord_roles_settings_reconcile_mode", type_="check")
        batch.drop_column("linked_roles_enabled")
        batch.drop_column("reconcile_mode")
