"""shop subscriptions: packages sold by the period, and the orders that pay for each period

Revision ID: shop0003
Revises: shop0002
Create Date: 2026-12-07 05:20:00

A package with ``period_days`` is a subscription: each paid order entitles its buyer until its
``expires_at``, and a renewal is another order of the same subscription.
"""

import sqlalchemy as sa
from alembic import op

revision = "shop0003"
down_revision = "shop0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("shop_packages") as batch:
        batch.add_column(sa.Column("period_days", sa.Integer(), nullable=True))
    op.create_table(
        "shop_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("paid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renews", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["shop_customers.id"],
            name=op.f("fk_shop_subscriptions_customer_id_shop_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["package_id"], ["shop_packages.id"], name=op.f("fk_shop_subscriptions_package_id_shop_packages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_subscriptions")),
    )
    op.create_index(op.f("ix_shop_subscriptions_customer_id"), "shop_subscriptions", ["customer_id"])
    with op.batch_alter_table("shop_orders") as batch:
        batch.add_column(sa.Column("subscription_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            op.f("fk_shop_orders_subscription_id_shop_subscriptions"),
            "shop_subscriptions",
            ["subscription_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table("shop_orders") as batch:
        batch.drop_constraint(op.f("fk_shop_orders_subscription_id_shop_subscriptions"), type_="foreignkey")
        batch.drop_column("expires_at")
        batch.drop_column("subscription_id")
    op.drop_index(op.f("ix_shop_subscriptions_customer_id"), table_name="shop_subscriptions")
    op.drop_table("shop_subscriptions")
    with op.batch_alter_table("shop_packages") as batch:
        batch.drop_column("period_days")
