"""Names from the shop's own tables for the ids the extension keeps: it knows packages and customers only
by the id the shop gave them, as text."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from .. import db
from ..models import Customer, Package

LARGEST_ID = 2**63 - 1


def package_names() -> dict[str, str]:
    return {str(package.id): package.name for package in db.session.scalars(sa.select(Package))}


def customer_names(customer_ids: Iterable[str | None]) -> dict[str, str]:
    """The shop's name for each of these customers it has; other ids (not the shop's) are left out."""
    wanted = {
        int(customer_id)
        for customer_id in customer_ids
        if customer_id and customer_id.isascii() and customer_id.isdigit() and int(customer_id) <= LARGEST_ID
    }
    if not wanted:
        return {}
    found = db.session.execute(sa.select(Customer.id, Customer.name).where(Customer.id.in_(wanted)))
    return {str(customer_id): name for customer_id, name in found}
