"""Signing in: an email and a password, nothing more. A real store keeps its own accounts system."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from . import db
from .models import Customer

auth = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: ``next`` comes from the query string, so it must not leave the shop."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("shop.index")


@auth.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        customer = db.session.scalars(select(Customer).where(Customer.email == email)).first()
        if customer is None or not customer.check_password(request.form.get("password", "")):
            flash("That email and password do not match an account.", "error")
            return render_template("auth/login.html", email=email), 401  # type: ignore[return-value]
        login_user(customer)
        flash(f"Welcome back, {customer.name}.", "success")
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", email="")


@auth.route("/register", methods=["GET", "POST"])
def register() -> str | Response:
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        problems = []
        if "@" not in email or len(email) > 255:
            problems.append("Enter a valid email address.")
        if not 1 <= len(name) <= 100:
            problems.append("Enter a name of up to 100 characters.")
        if len(password) < 4:
            problems.append("Choose a password of at least 4 characters.")
        if not problems and db.session.scalars(select(Customer.id).where(Customer.email == email)).first():
            problems.append("An account with that email exists: sign in instead.")
        if problems:
            for problem in problems:
                flash(problem, "error")
            return render_template("auth/register.html", email=email, name=name), 422  # type: ignore[return-value]
        customer = Customer(email=email, name=name)
        customer.set_password(password)
        db.session.add(customer)
        db.session.commit()
        login_user(customer)
        flash(f"Welcome, {name}.", "success")
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/register.html", email="", name="")


@auth.post("/logout")
def logout() -> Response:
    logout_user()
    flash("Signed out.", "success")
    return redirect(url_for("shop.index"))
