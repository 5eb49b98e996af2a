"""The storefront: packages, checkout, order confirmation, refunds. Discord appears in three places only:
the link prompt (the extension's macro), the two order signals, and the order's role status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from flask_discord_roles import claim_code, deliveries, order_completed, order_revoked
from flask_discord_roles.checkout import require_discord_link

from . import db
from .models import PAID, REFUNDED, Order, Package

shop = Blueprint("shop", __name__)


def _store_id() -> str:
    return str(current_app.config["STORE_ID"])


def _signal_kwargs(order: Order) -> dict[str, Any]:
    """What both order signals say about an order, in the extension's terms."""
    return {
        "store_id": _store_id(),
        "order_id": order.id,
        "customer_id": order.customer_id,  # the same id Flask-Login gives: how linking finds the buyer
        "package_ids": [order.package_id],
        "package_names": {order.package_id: order.package.name},
    }


def _own_order(order_id: int) -> Order:
    order = db.session.get(Order, order_id)
    if order is None or order.customer_id != current_user.id:
        abort(404)  # someone else's order does not exist, as far as this customer can tell
    return order


@shop.get("/")
def index() -> str:
    packages = db.session.scalars(select(Package).order_by(Package.price_cents)).all()
    return render_template("shop/index.html", packages=packages)


@shop.get("/checkout/<int:package_id>")
@login_required
def checkout(package_id: int) -> str:
    package = db.get_or_404(Package, package_id)
    return render_template("shop/checkout.html", package=package)


@shop.post("/checkout/<int:package_id>")
@login_required
@require_discord_link  # "Require Discord link" on and not linked: linking first, then back to checkout
def pay(package_id: int) -> Response:
    package = db.get_or_404(Package, package_id)
    order = Order(customer_id=current_user.id, package=package, status=PAID)
    db.session.add(order)
    db.session.flush()
    # Same transaction as the order: its roles are queued if and only if the order commits, and
    # nothing here waits for Discord.
    order_completed.send(current_app._get_current_object(), **_signal_kwargs(order))  # type: ignore[attr-defined]
    db.session.commit()
    flash(f"Thank you! Order #{order.id} for {package.name} is paid.", "success")
    return redirect(url_for("shop.order", order_id=order.id))


@shop.get("/orders/<int:order_id>")
@login_required
def order(order_id: int) -> str:
    order = _own_order(order_id)
    roles = deliveries.list_deliveries(_store_id(), order_id=str(order.id), limit=20).items
    return render_template(
        "shop/order.html",
        order=order,
        roles=sorted(roles, key=lambda delivery: delivery.id),
        claim_code=claim_code(_store_id(), order.id),
    )


@shop.post("/orders/<int:order_id>/refund")
@login_required
def refund(order_id: int) -> Response:
    order = _own_order(order_id)
    if order.status == REFUNDED:
        flash(f"Order #{order.id} was already refunded.", "info")
        return redirect(url_for("shop.order", order_id=order.id))
    order.status = REFUNDED
    order.refunded_at = datetime.now(UTC)
    # Roles this order granted are taken back, unless another paid order still grants them.
    order_revoked.send(current_app._get_current_object(), **_signal_kwargs(order))  # type: ignore[attr-defined]
    db.session.commit()
    flash(f"Order #{order.id} is refunded. Its Discord roles are being removed.", "success")
    return redirect(url_for("shop.order", order_id=order.id))


@shop.get("/account")
@login_required
def account() -> str:
    orders = db.session.scalars(
        select(Order).where(Order.customer_id == current_user.id).order_by(Order.id.desc())
    ).all()
    roles = deliveries.list_deliveries(_store_id(), customer_id=str(current_user.id), limit=100).items
    roles_by_order: dict[str, list[Any]] = {}
    for delivery in sorted(roles, key=lambda delivery: delivery.id):
        roles_by_order.setdefault(delivery.order_id or "", []).append(delivery)
    return render_template("shop/account.html", orders=orders, roles_by_order=roles_by_order)
