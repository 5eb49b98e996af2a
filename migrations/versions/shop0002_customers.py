"""shop customers: orders belong to signed-in customers, and can be refunded

Revision ID: shop0002
Revises: shop0001
Create Date: 2026-11-23 15:50:00

The first example took an email per order. Orders now belong to a customer account, so the old orders
table is replaced rather than altered: an email-only order has no customer to belong to, and the demo
database is rebuilt on every start anyway.
"""

import sqlalchemy as sa
from alembic import op

revision = "shop0002"
down_revision = "shop0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shop_customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_owner", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_customers")),
        sa.UniqueConstraint("email", name=op.f("uq_shop_customers_email")),
    )
    with op.batch_alter_table("shop_packages") as batch:
        batch.add_column(sa.Column("description", sa.String(length=255), nullable=False, server_default=""))
    op.drop_table("shop_orders")
    op.create_table(
        "shop_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["shop_customers.id"], name=op.f("fk_shop_orders_customer_id_shop_customers")
        ),
        sa.ForeignKeyConstraint(
            ["package_id"], ["shop_packages.id"], name=op.f("fk_shop_orders_package_id_shop_packages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_orders")),
    )
    op.create_index(op.f("ix_shop_orders_customer_id"), "shop_orders", ["customer_id"])


def downgrade():
    op.drop_index(op.f("ix_shop_orders_customer_id"), table_name="shop_orders")
    op.drop_table("shop_orders")
    op.create_table(
        "shop_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("customer_email", sa.String(length=255), nullable=False),
        sa.Column("discord_user_id", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"], ["shop_packages.id"], name=op.f("fk_shop_orders_package_id_shop_packages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_orders")),
    )
    with op.batch_alter_table("shop_packages") as batch:
        batch.drop_column("description")
    op.drop_table("shop_customers")
