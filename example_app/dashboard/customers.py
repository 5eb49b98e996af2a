"""``/dashboard/customers``: a customer's Discord account and roles, and giving or taking a role by hand.

Customers are the shop's own (``Customer.id``, as text, is the id the extension knows them by); a
customer id the shop has never heard of still opens, since the extension may know it from elsewhere.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from flask_discord_roles import customers, deliveries, grants
from flask_discord_roles.customers import ValidationError
from flask_discord_roles.deliveries import DeliveryInfo

from .. import db
from ..models import Customer
from . import dashboard
from .common import refused, store_id, why
from .servers import role_name, servers_with_roles
from .shop_names import package_names, shop_customer_id

ROLE_STATUS_WORDS = {
    "held": "has the role",
    "pending": "waiting",
    "failed": "failed",
    "expired": "expired",
    "removed": "removed",
    "removal_pending": "removal waiting",
}


def _shop_customer(customer_id: str) -> Customer | None:
    number = shop_customer_id(customer_id)
    return None if number is None else db.session.get(Customer, number)


@dashboard.get("/customers", endpoint="customers")
def customers_page() -> str | Response:
    wanted = request.args.get("q", "").strip()
    if wanted:
        found = db.session.scalars(sa.select(Customer).where(Customer.email == wanted.lower())).first()
        return redirect(url_for("dashboard.customer", customer_id=str(found.id) if found else wanted))
    shoppers = db.session.scalars(sa.select(Customer).order_by(Customer.id)).all()
    return render_template("dashboard/customers.html", customers=shoppers)


@dashboard.get("/customers/<customer_id>", endpoint="customer")
def customer_page(customer_id: str) -> str | Response:
    store = store_id()
    try:
        status = customers.customer_status(store, customer_id)
    except ValidationError as error:
        return refused(error, "dashboard.customers")
    servers = servers_with_roles(store)
    return render_template(
        "dashboard/customer.html",
        status=status,
        shopper=_shop_customer(customer_id),
        servers=servers,
        guild_names={server.guild.guild_id: server.name for server in servers},
        words=ROLE_STATUS_WORDS,
        # Subscriptions and fixed-term purchases: until when each entitles the customer.
        grants=grants.list_grants(store, customer_id=customer_id),
        packages=package_names(),
        demo_clock=current_app.config.get("DEMO_CLOCK", False),
    )


@dashboard.post("/customers/<customer_id>/roles")
def assign_role(customer_id: str) -> Response:
    store = store_id()
    # One select holds every server's roles, each option "<guild id>:<role id>".
    guild_id, _, role_id = request.form.get("role", "").partition(":")
    if not guild_id or not role_id:
        return refused("Choose a role to give.", "dashboard.customer", customer_id=customer_id)
    try:
        change = deliveries.assign_role(
            store,
            customer_id=customer_id,
            guild_id=guild_id,
            role_id=role_id,
            discord_user_id=request.form.get("discord_user_id", "").strip() or None,
            role_name=role_name(store, guild_id, role_id),
        )
    except ValidationError as error:
        return refused(error, "dashboard.customer", customer_id=customer_id)
    return _done(customer_id, change, "given")


@dashboard.post("/customers/<customer_id>/roles/<guild_id>/<role_id>/remove")
def remove_role(customer_id: str, guild_id: str, role_id: str) -> Response:
    try:
        change = deliveries.remove_role(
            store_id(), customer_id=customer_id, guild_id=guild_id, role_id=role_id
        )
    except ValidationError as error:
        return refused(error, "dashboard.customer", customer_id=customer_id)
    return _done(customer_id, change, "removed")


def _done(customer_id: str, change: DeliveryInfo, verb: str) -> Response:
    """Commit the change, then say how it went: with the inline or thread executor it may have run."""
    db.session.commit()
    role = change.role_name or f"role {change.role_id}"
    outcome = deliveries.get_delivery(store_id(), change.id)
    if outcome.status == "completed":
        flash(f"{role} {verb}.", "success")
    elif outcome.status == "failed":
        flash(f"{role} could not be {verb}: {why(outcome)}", "error")
    else:
        flash(f"{role} will be {verb} in a moment (delivery #{change.id}).", "info")
    return redirect(url_for("dashboard.customer", customer_id=customer_id))
