"""flask-discord-roles: roles that last as long as what was bought.

Time-limited grants (subscriptions and fixed-term orders) with their expiry, grace and reminder; tier
groups and sticky roles on mappings; the store's grace period and reminder settings; backfills of a
mapping to the customers who already hold its package.

Revision ID: dr0009
Revises: dr0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dr0009"
down_revision = "dr0008"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HOST_ID = sa.String(64)
SNOWFLAKE = sa.String(20)

GRANT_ENDS = "status = 'active' AND ends_at IS NOT NULL"
GRANT_REMINDS = "status = 'active' AND remind_at IS NOT NULL AND reminded_at IS NULL"
BACKFILL_RUNNING = "status = 'running'"


def upgrade() -> None:
    with op.batch_alter_table("discord_roles_role_mappings") as batch:
        batch.add_column(sa.Column("tier_group", sa.String(64), nullable=True))
        batch.add_column(sa.Column("tier_rank", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("keep_on_end", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_check_constraint(
            "ck_discord_roles_role_mappings_tier", "(tier_group IS NULL) = (tier_rank IS NULL)"
        )
    with op.batch_alter_table("discord_roles_settings") as batch:
        batch.add_column(sa.Column("grace_hours", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("expiry_reminder_hours", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("expiry_reminder_dm", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch.create_check_constraint("ck_discord_roles_settings_grace_hours", "grace_hours >= 0")
        batch.create_check_constraint(
            "ck_discord_roles_settings_expiry_reminder_hours", "expiry_reminder_hours > 0"
        )
    op.create_table(
        "discord_roles_grants",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("customer_id", HOST_ID, nullable=True),
        sa.Column("discord_user_id", SNOWFLAKE, nullable=True),
        sa.Column("package_id", HOST_ID, nullable=False),
        sa.Column("subscription_id", HOST_ID, nullable=True),
        sa.Column("order_id", HOST_ID, nullable=False),
        sa.Column("last_order_id", HOST_ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("ends_at", TIMESTAMP, nullable=True),
        sa.Column("renewals", sa.Integer(), nullable=False),
        sa.Column("remind_at", TIMESTAMP, nullable=True),
        sa.Column("reminded_at", TIMESTAMP, nullable=True),
        sa.Column("reminder_reason_code", sa.String(64), nullable=True),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_discord_roles_grants"),
        sa.UniqueConstraint("store_id", "order_id", "package_id", name="uq_discord_roles_grants_order"),
        sa.UniqueConstraint(
            "store_id", "subscription_id", "package_id", name="uq_discord_roles_grants_subscription"
        ),
        sa.CheckConstraint("status IN ('active', 'ended')", name="ck_discord_roles_grants_status"),
    )
    op.create_index(
        "ix_discord_roles_grants_ending",
        "discord_roles_grants",
        ["ends_at"],
        postgresql_where=sa.text(GRANT_ENDS),
        sqlite_where=sa.text(GRANT_ENDS),
    )
    op.create_index(
        "ix_discord_roles_grants_reminders",
        "discord_roles_grants",
        ["remind_at"],
        postgresql_where=sa.text(GRANT_REMINDS),
        sqlite_where=sa.text(GRANT_REMINDS),
    )
    op.create_index("ix_discord_roles_grants_customer", "discord_roles_grants", ["store_id", "customer_id"])
    op.create_index(
        "ix_discord_roles_grants_discord_user", "discord_roles_grants", ["store_id", "discord_user_id"]
    )
    op.create_index(
        "ix_discord_roles_grants_last_order", "discord_roles_grants", ["store_id", "last_order_id"]
    )
    op.create_table(
        "discord_roles_backfills",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("mapping_id", sa.Integer(), nullable=False),
        sa.Column("package_id", HOST_ID, nullable=False),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("role_id", SNOWFLAKE, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cursor", sa.String(255), nullable=True),
        sa.Column("scan_done", sa.Boolean(), nullable=False),
        sa.Column("leased_by", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_discord_roles_backfills"),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'cancelled')", name="ck_discord_roles_backfills_status"
        ),
    )
    op.create_index("ix_discord_roles_backfills_store", "discord_roles_backfills", ["store_id", "id"])
    op.create_index(
        "uq_discord_roles_backfills_running_mapping",
        "discord_roles_backfills",
        ["mapping_id"],
        unique=True,
        postgresql_where=sa.text(BACKFILL_RUNNING),
        sqlite_where=sa.text(BACKFILL_RUNNING),
    )
    op.create_table(
        "discord_roles_backfill_items",
        sa.Column("backfill_id", BIG_ID, nullable=False),
        sa.Column("delivery_id", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("backfill_id", "delivery_id", name="pk_discord_roles_backfill_items"),
    )


def downgrade() -> None:
    op.drop_table("discord_roles_backfill_items")
    op.drop_index("uq_discord_roles_backfills_running_mapping", table_name="discord_roles_backfills")
    op.drop_index("ix_discord_roles_backfills_store", table_name="discord_roles_backfills")
    op.drop_table("discord_roles_backfills")
    for name in (
        "ix_discord_roles_grants_last_order",
        "ix_discord_roles_grants_discord_user",
        "ix_discord_roles_grants_customer",
        "ix_discord_roles_grants_reminders",
        "ix_discord_roles_grants_ending",
    ):
        op.drop_index(name, table_name="discord_roles_grants")
    op.drop_table("discord_roles_grants")
    with op.batch_alter_table("discord_roles_settings") as batch:
        batch.drop_constraint("ck_discord_roles_settings_expiry_reminder_hours", type_="check")
        batch.drop_constraint("ck_discord_roles_settings_grace_hours", type_="check")
        batch.drop_column("expiry_reminder_dm")
        batch.drop_column("expiry_reminder_hours")
        batch.drop_column("grace_hours")
    with op.batch_alter_table("discord_roles_role_mappings") as batch:
        batch.drop_constraint("ck_discord_roles_role_mappings_tier", type_="check")
        batch.drop_column("keep_on_end")
        batch.drop_column("tier_rank")
        batch.drop_column("tier_group")
