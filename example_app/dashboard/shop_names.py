"""Names from the shop's own tables for the ids the extension keeps: it knows packages and customers only
by the id the shop gave them, as text."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from .. import db
from ..models import Customer, Package

LARGEST_ID = 2**63 - 1


def shop_customer_id(customer_id: str | None) -> int | None:
    """The shop's own id a customer id stands for, or None: only a number an id column can hold, since a
    longer one cannot be the shop's and would not fit a query."""
    if customer_id and customer_id.isascii() and customer_id.isdigit() and int(customer_id) <= LARGEST_ID:
        return int(customer_id)
    return None


def package_names() -> dict[str, str]:
    return {str(package.id): package.name for package in db.session.scalars(sa.select(Package))}


def customer_names(customer_ids: Iterable[str | None]) -> dict[str, str]:
    """The shop's name for each of these customers it has; other ids (not the shop's) are left out."""
    wanted = {number for number in map(shop_customer_id, customer_ids) if number is not None}
    if not wanted:
        return {}
    found = db.session.execute(sa.select(Customer.id, Customer.name).where(Customer.id.in_(wanted)))
    return {str(customer_id): name for customer_id, name in found}
