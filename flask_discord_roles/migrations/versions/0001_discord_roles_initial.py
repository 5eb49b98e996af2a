"""flask-discord-roles: initial schema.

Revision ID: dr0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dr0001"
down_revision = None
branch_labels = ("discord_roles",)
depends_on = None

HOST_ID = sa.String(64)
SNOWFLAKE = sa.String(20)
TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "discord_roles_bots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("application_id", SNOWFLAKE, nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("token_ciphertext", sa.Text(), nullable=False),
        sa.Column("client_secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("bot_user_id", SNOWFLAKE, nullable=True),
        sa.Column("bot_name", sa.String(100), nullable=True),
        sa.Column("bot_avatar", sa.String(64), nullable=True),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(64), nullable=True),
        sa.Column("slash_commands_registered", sa.Boolean(), nullable=False),
        sa.Column("last_interaction_at", TIMESTAMP, nullable=True),
        sa.Column("total_interactions", sa.BigInteger(), nullable=False),
        sa.Column("total_roles_assigned", sa.BigInteger(), nullable=False),
        sa.Column("total_roles_removed", sa.BigInteger(), nullable=False),
        sa.Column("total_errors", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_roles_bots")),
        sa.UniqueConstraint("store_id", name=op.f("uq_discord_roles_bots_store_id")),
    )
    op.create_index(op.f("ix_discord_roles_bots_application_id"), "discord_roles_bots", ["application_id"])

    op.create_table(
        "discord_roles_guilds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("icon", sa.String(64), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=True),
        sa.Column("details_refreshed_at", TIMESTAMP, nullable=True),
        sa.Column("linked_by_user_id", SNOWFLAKE, nullable=True),
        sa.Column("linked_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_roles_guilds")),
        sa.UniqueConstraint("store_id", "guild_id", name=op.f("uq_discord_roles_guilds_store_guild")),
    )
    op.create_index(op.f("ix_discord_roles_guilds_guild_id"), "discord_roles_guilds", ["guild_id"])

    op.create_table(
        "discord_roles_link_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        sa.Column("used_in_guild_id", SNOWFLAKE, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_roles_link_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_discord_roles_link_codes_code_hash")),
    )
    op.create_index(op.f("ix_discord_roles_link_codes_store_id"), "discord_roles_link_codes", ["store_id"])

    op.create_table(
        "discord_roles_role_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("package_id", HOST_ID, nullable=False),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("role_id", SNOWFLAKE, nullable=False),
        sa.Column("role_name", sa.String(100), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_roles_role_mappings")),
        sa.UniqueConstraint(
            "store_id",
            "package_id",
            "guild_id",
            "role_id",
            name=op.f("uq_discord_roles_role_mappings_package_role"),
        ),
    )
    op.create_index(
        op.f("ix_discord_roles_role_mappings_store_guild"),
        "discord_roles_role_mappings",
        ["store_id", "guild_id"],
    )

    op.create_table(
        "discord_roles_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("customer_id", HOST_ID, nullable=False),
        sa.Column("discord_user_id", SNOWFLAKE, nullable=False),
        sa.Column("username", sa.String(100), nullable=True),
        sa.Column("global_name", sa.String(100), nullable=True),
        sa.Column("avatar", sa.String(64), nullable=True),
        sa.Column("access_token_ciphertext", sa.Text(), nullable=True),
        sa.Column("refresh_token_ciphertext", sa.Text(), nullable=True),
        sa.Column("token_expires_at", TIMESTAMP, nullable=True),
        sa.Column("scopes", sa.String(255), nullable=True),
        sa.Column("linked_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_roles_accounts")),
        sa.UniqueConstraint("store_id", "customer_id", name=op.f("uq_discord_roles_accounts_customer")),
        sa.UniqueConstraint(
            "store_id", "discord_user_id", name=op.f("uq_discord_roles_accounts_discord_user")
        ),
    )

    op.create_table(
        "discord_roles_deliveries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("guild_id", SNOWFLAKE, nullable=False),
        sa.Column("role_id", SNOWFLAKE, nullable=False),
        sa.Column("discord_user_id", SNOWFLAKE, nullable=True),
        sa.Column("customer_id", HOST_ID, nullable=True),
        sa.Column("order_id", HOST_ID, nullable=True),
        sa.Column("package_id", HOST_ID, nullable=True),
        sa.Column("role_name", sa.String(100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=True),
        sa.Column("leased_by", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("role_was_present", sa.Boolean(), nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_roles_deliveries")),
        sa.UniqueConstraint(
            "store_id",
            "idempotency_key",
            name=op.f("uq_discord_roles_deliveries_idempotency_key"),
        ),
        sa.CheckConstraint("action IN ('add', 'remove')", name=op.f("ck_discord_roles_deliveries_action")),
        sa.CheckConstraint(
            "status IN ('pending', 'completed', 'failed', 'expired')",
            name=op.f("ck_discord_roles_deliveries_status"),
        ),
        sa.CheckConstraint(
            "source IN ('interaction', 'auto', 'manual')",
            name=op.f("ck_discord_roles_deliveries_source"),
        ),
    )
    deliveries_indexes = {
        "ix_discord_roles_deliveries_due": ["status", "next_attempt_at"],
        "ix_discord_roles_deliveries_expiry": ["status", "expires_at"],
        "ix_discord_roles_deliveries_store_status": ["store_id", "status", "id"],
        "ix_discord_roles_deliveries_claim": ["store_id", "discord_user_id", "guild_id"],
        "ix_discord_roles_deliveries_customer": ["store_id", "customer_id"],
        "ix_discord_roles_deliveries_order": ["store_id", "order_id"],
    }
    for name, columns in deliveries_indexes.items():
        op.create_index(op.f(name), "discord_roles_deliveries", columns)

    op.create_table(
        "discord_roles_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("linking_enabled", sa.Boolean(), nullable=False),
        sa.Column("require_link", sa.Boolean(), nullable=False),
        sa.Column("join_guilds_on_link", sa.Boolean(), nullable=False),
        sa.Column("notifications_enabled", sa.Boolean(), nullable=False),
        sa.Column("notification_channel_id", SNOWFLAKE, nullable=True),
        sa.Column("welcome_message", sa.Text(), nullable=True),
        sa.Column("checkout_prompt", sa.Text(), nullable=True),
        sa.Column("delivery_mode", sa.String(16), nullable=False),
        sa.Column("claims_expire", sa.Boolean(), nullable=False),
        sa.Column("claim_expiry_hours", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_roles_settings")),
        sa.UniqueConstraint("store_id", name=op.f("uq_discord_roles_settings_store_id")),
        sa.CheckConstraint(
            "delivery_mode IN ('automatic', 'claim')",
            name=op.f("ck_discord_roles_settings_delivery_mode"),
        ),
        sa.CheckConstraint(
            "claim_expiry_hours > 0",
            name=op.f("ck_discord_roles_settings_claim_expiry_hours"),
        ),
    )

    op.create_table(
        "discord_roles_api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_roles_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_discord_roles_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_discord_roles_api_tokens_store_id"), "discord_roles_api_tokens", ["store_id"])

    op.create_table(
        "discord_roles_interactions",
        sa.Column("interaction_id", SNOWFLAKE, nullable=False),
        sa.Column("store_id", HOST_ID, nullable=True),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("interaction_id", name=op.f("pk_discord_roles_interactions")),
    )
    op.create_index(
        op.f("ix_discord_roles_interactions_received_at"),
        "discord_roles_interactions",
        ["received_at"],
    )

    op.create_table(
        "discord_roles_notifications",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("store_id", HOST_ID, nullable=False),
        sa.Column("order_id", HOST_ID, nullable=False),
        sa.Column("customer_id", HOST_ID, nullable=True),
        sa.Column("package_ids", sa.JSON(), nullable=False),
        sa.Column("channel_id", SNOWFLAKE, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discord_roles_notifications")),
        sa.UniqueConstraint("store_id", "order_id", name=op.f("uq_discord_roles_notifications_order")),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')",
            name=op.f("ck_discord_roles_notifications_status"),
        ),
    )
    op.create_index(
        op.f("ix_discord_roles_notifications_due"),
        "discord_roles_notifications",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    for table in (
        "discord_roles_notifications",
        "discord_roles_interactions",
        "discord_roles_api_tokens",
        "discord_roles_settings",
        "discord_roles_deliveries",
        "discord_roles_accounts",
        "discord_roles_role_mappings",
        "discord_roles_link_codes",
        "discord_roles_guilds",
        "discord_roles_bots",
    ):
        op.drop_table(table)
