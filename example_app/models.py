"""The storefront's own tables: who shops here, what it sells and what was bought.

Nothing Discord lives here: the extension keeps linked accounts, mappings and deliveries in its own
``discord_roles_*`` tables and knows customers only by the id this storefront gives them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from . import db

PAID = "paid"
REFUNDED = "refunded"


def _now() -> datetime:
    return datetime.now(UTC)


class AwareDateTime(sa.TypeDecorator[datetime]):
    """A UTC time that reads back timezone-aware on every database (SQLite drops the zone), so the
    subscription times can be compared with ``datetime.now(UTC)`` and sent as ``expires_at``."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Customer(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """A shopper, or (``is_owner``) the store owner who may open the dashboard."""

    __tablename__ = "shop_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_owner: Mapped[bool] = mapped_column(default=False)

    def set_password(self, password: str) -> None:
        # scrypt by default; tests choose a cheap method, the way Django's tests swap hashers.
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:  # never the hash
        return f"<Customer {self.id} {self.email}>"


class Package(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "shop_packages"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    price_cents: Mapped[int]
    # Sold by the period: each payment entitles the buyer for this many days. None: bought once, for good.
    period_days: Mapped[int | None] = mapped_column(default=None)

    @property
    def price(self) -> str:
        amount = f"${self.price_cents / 100:.2f}"
        return f"{amount} / {self.period_days} days" if self.period_days else amount

    @property
    def is_subscription(self) -> bool:
        return self.period_days is not None


class Subscription(db.Model):  # type: ignore[name-defined,misc]
    """A customer paying for a package period after period, until they stop renewing.

    Cancelling stops renewals (``renews`` False): the paid period still runs to its end, and the
    extension ends the roles after that (plus the store's grace period), because no renewal came.
    """

    __tablename__ = "shop_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("shop_customers.id"), index=True)
    package_id: Mapped[int] = mapped_column(sa.ForeignKey("shop_packages.id"))
    paid_until: Mapped[datetime] = mapped_column(AwareDateTime())
    renews: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=_now)
    cancelled_at: Mapped[datetime | None] = mapped_column(AwareDateTime())

    customer: Mapped[Customer] = relationship()
    package: Mapped[Package] = relationship()

    @property
    def discord_roles_id(self) -> str:
        """The id the extension knows this subscription by: the same for every one of its orders."""
        return f"sub-{self.id}"


class Order(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "shop_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("shop_customers.id"), index=True)
    package_id: Mapped[int] = mapped_column(sa.ForeignKey("shop_packages.id"))
    status: Mapped[str] = mapped_column(sa.String(16), default=PAID)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=_now)
    refunded_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # A subscription's payment: which subscription, and until when this payment entitles the buyer.
    subscription_id: Mapped[int | None] = mapped_column(sa.ForeignKey("shop_subscriptions.id"))
    expires_at: Mapped[datetime | None] = mapped_column(AwareDateTime())

    customer: Mapped[Customer] = relationship()
    package: Mapped[Package] = relationship()
    subscription: Mapped[Subscription | None] = relationship()
