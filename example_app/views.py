"""The storefront's pages: what it sells, what was bought, and the state of its Discord bot."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from flask_discord_roles import get_state, order_completed
from flask_discord_roles.discord.errors import DiscordError
from flask_discord_roles.discord.snowflake import is_snowflake
from flask_discord_roles.services.bots import client_for, get_bot

from . import db
from .models import Order, Package

shop = Blueprint("shop", __name__)


def _guild_roles(bot: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The demo guild's roles, read live from Discord through the extension's client."""
    guild_id = current_app.config.get("DEMO_GUILD_ID")
    if bot is None or not guild_id:
        return [], None
    try:
        roles = client_for(get_state(), bot).get_guild_roles(guild_id)
    except DiscordError as exc:
        return [], f"Discord answered {exc.status} (code {exc.code}): {exc.message}"
    return sorted(roles, key=lambda role: role["position"], reverse=True), None


@shop.get("/")
def index() -> str:
    store_id = current_app.config["STORE_ID"]
    bot = get_bot(get_state(), store_id)
    roles, roles_error = _guild_roles(bot)
    packages = db.session.scalars(select(Package).order_by(Package.price_cents)).all()
    orders = db.session.scalars(select(Order).order_by(Order.id.desc()).limit(20)).all()
    delivery = get_state().models.Delivery
    deliveries = db.session.scalars(
        select(delivery)
        .where(delivery.store_id == store_id, delivery.order_id.in_([str(order.id) for order in orders]))
        .order_by(delivery.id)
    ).all()
    deliveries_by_order: dict[str, list[Any]] = {}
    for row in deliveries:
        deliveries_by_order.setdefault(row.order_id or "", []).append(row)
    return render_template(
        "index.html",
        bot=bot,
        roles=roles,
        roles_error=roles_error,
        packages=packages,
        orders=orders,
        deliveries_by_order=deliveries_by_order,
        package_names={package.id: package.name for package in packages},
    )


@shop.post("/buy/<int:package_id>")
def buy(package_id: int) -> Response:
    package = db.session.get(Package, package_id)
    email = request.form.get("email", "").strip()
    if package is None:
        flash("That package does not exist.", "error")
        return redirect(url_for("shop.index"))
    if "@" not in email:
        flash("Please enter an email address.", "error")
        return redirect(url_for("shop.index"))
    discord_user_id = request.form.get("discord_user_id", "").strip() or None
    if discord_user_id is not None and not is_snowflake(discord_user_id):
        flash("A Discord user id is a long number (Settings → Advanced → Developer Mode).", "error")
        return redirect(url_for("shop.index"))
    order = Order(package_id=package.id, customer_email=email, discord_user_id=discord_user_id)
    db.session.add(order)
    db.session.flush()
    # In the same transaction as the order: its roles are queued if and only if the order commits.
    order_completed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        store_id=current_app.config["STORE_ID"],
        order_id=order.id,
        customer_id=email,
        package_ids=[package.id],
        discord_user_id=discord_user_id,
    )
    db.session.commit()
    flash(f"Order #{order.id} for {package.name} is paid.", "success")
    return redirect(url_for("shop.index"))
