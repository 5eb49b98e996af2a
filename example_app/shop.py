"""The storefront: packages, checkout, subscriptions, order confirmation, refunds. Discord appears in three
places only: the link prompt (the extension's macro), the two order signals, and the roles' status.

A subscription is the shop's own: each period is an order that says until when it entitles the buyer
(``expires_at``) and which subscription it pays for (``subscription_id``); the extension turns the first
into a grant, later ones into renewals, and ends the roles when no renewal comes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from flask_discord_roles import claim_code, deliveries, grants, order_completed, order_revoked
from flask_discord_roles.checkout import require_discord_link

from . import db
from .models import PAID, REFUNDED, Order, Package, Subscription

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
        # Both None for a one-time purchase: its roles stay until it is refunded.
        "expires_at": order.expires_at,
        "subscription_id": order.subscription.discord_roles_id if order.subscription else None,
    }


def _paid(order: Order) -> None:
    """Tell the extension, in the same transaction as the order: its roles are queued (or, for a
    subscription's later period, its grant extended) if and only if the order commits."""
    order_completed.send(current_app._get_current_object(), **_signal_kwargs(order))  # type: ignore[attr-defined]


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
    if package.period_days:
        # The first period of a new subscription: paid now, entitling the buyer for one period.
        subscription = Subscription(
            customer_id=current_user.id,
            package=package,
            paid_until=datetime.now(UTC) + timedelta(days=package.period_days),
        )
        order.subscription, order.expires_at = subscription, subscription.paid_until
        db.session.add(subscription)
    db.session.add(order)
    db.session.flush()
    # Nothing here waits for Discord: the roles are given after the commit.
    _paid(order)
    db.session.commit()
    flash(f"Thank you! Order #{order.id} for {package.name} is paid.", "success")
    return redirect(url_for("shop.order", order_id=order.id))


def _own_subscription(subscription_id: int) -> Subscription:
    subscription = db.session.get(Subscription, subscription_id)
    if subscription is None or subscription.customer_id != current_user.id:
        abort(404)
    return subscription


@shop.post("/subscriptions/<int:subscription_id>/renew")
@login_required
def renew(subscription_id: int) -> Response:
    """The next period's payment. A real shop does this when the payment provider charges the card;
    the demo has a button instead."""
    subscription = _own_subscription(subscription_id)
    if not subscription.renews:
        flash("This subscription was cancelled: it no longer renews.", "error")
        return redirect(url_for("shop.account"))
    period = timedelta(days=subscription.package.period_days or 0)
    # Paid early or late, the new period starts where the paid one ends (or now, if it already ended).
    subscription.paid_until = max(subscription.paid_until, datetime.now(UTC)) + period
    order = Order(
        customer_id=current_user.id,
        package=subscription.package,
        subscription=subscription,
        expires_at=subscription.paid_until,
        status=PAID,
    )
    db.session.add(order)
    db.session.flush()
    _paid(order)  # same subscription, later expires_at: the extension extends; no role changes
    db.session.commit()
    flash(
        f"Renewed {subscription.package.name} until {subscription.paid_until:%Y-%m-%d} (order #{order.id}).",
        "success",
    )
    return redirect(url_for("shop.account"))


@shop.post("/subscriptions/<int:subscription_id>/cancel")
@login_required
def cancel(subscription_id: int) -> Response:
    """Cancel at the end of the period: stop renewing. Nothing is sent to the extension: with no
    renewal, the roles end at the paid period's end plus the store's grace period."""
    subscription = _own_subscription(subscription_id)
    if subscription.renews:
        subscription.renews = False
        subscription.cancelled_at = datetime.now(UTC)
        db.session.commit()
    flash(
        f"{subscription.package.name} will not renew. You keep it until {subscription.paid_until:%Y-%m-%d}.",
        "success",
    )
    return redirect(url_for("shop.account"))


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
    if order.subscription is not None:
        order.subscription.renews = False  # a refunded subscription is over, not merely paused
    # Roles this order granted are taken back, unless another paid order still grants them; a
    # subscription's grant ends at once.
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
    subscriptions = db.session.scalars(
        select(Subscription).where(Subscription.customer_id == current_user.id).order_by(Subscription.id)
    ).all()
    # What the extension says each subscription entitles to now: active until when, or ended and why.
    held = {
        grant.subscription_id: grant
        for grant in grants.list_grants(_store_id(), customer_id=str(current_user.id))
    }
    return render_template(
        "shop/account.html",
        orders=orders,
        roles_by_order=roles_by_order,
        subscriptions=[
            (subscription, held.get(subscription.discord_roles_id)) for subscription in subscriptions
        ],
    )
