"""Checkout hooks: may this customer check out yet, and the "Link Discord" prompt for your templates::

    from flask_discord_roles.checkout import checkout_status, require_discord_link

    @app.post("/checkout")
    @require_discord_link  # "Require Discord Link" on and not linked: sent to link first, then back
    def checkout(): ...

    status = checkout_status()  # the current store and customer (loaders), or pass them
    if not status.allowed:
        flash(status.reason); return redirect(status.link_url)

In templates (registered for you)::

    {% from "discord_roles/macros.html" import link_prompt %}
    {{ link_prompt(discord_roles_status(next=request.path)) }}
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request, url_for

from flask_discord_roles._core.linking import LinkedAccount, get_account
from flask_discord_roles._core.settings import store_settings
from flask_discord_roles._runtime.state import get_state

__all__ = ["CheckoutStatus", "checkout_status", "require_discord_link"]

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class CheckoutStatus:
    """Where a customer stands with Discord in one store, and what to show them."""

    store_id: str | None
    customer_id: str | None
    enabled: bool  # the store lets customers link Discord
    required: bool  # ...and requires it at checkout
    linked: bool
    allowed: bool  # may check out now
    account: LinkedAccount | None
    prompt: str | None  # the store's checkout prompt
    reason: str | None  # why not allowed, in words
    link_url: str | None  # starts linking, then comes back to ``next_path``
    unlink_url: str | None
    next_path: str


def checkout_status(
    store_id: object | None = None, customer_id: object | None = None, *, next: str | None = None
) -> CheckoutStatus:
    """The status of ``customer_id`` in ``store_id`` (default: the current request's, from the loaders).

    ``next`` is where linking returns to (default: the current path). Inside a request context.
    """
    state = get_state()
    store = str(store_id) if store_id is not None else state.loaders.store_id(state.settings.default_store_id)
    customer = str(customer_id) if customer_id is not None else state.loaders.customer_id()
    next_path = next or request.full_path.rstrip("?")
    if store is None:
        return CheckoutStatus(
            None, customer, False, False, False, True, None, None, None, None, None, next_path
        )
    settings = store_settings(state, store)
    enabled = settings.linking_enabled
    required = enabled and settings.require_link
    account = get_account(state, store, customer) if customer is not None else None
    linked = account is not None
    reason = None
    if required and not linked:
        reason = (
            "Link your Discord account to check out: your roles are delivered to it."
            if customer is not None
            else "Sign in and link your Discord account to check out."
        )
    link_url = unlink_url = None
    if enabled and customer is not None:
        link_url = url_for("discord_roles_linking.start") + "?" + urlencode({"next": next_path})
        unlink_url = url_for("discord_roles_linking.unlink")
    return CheckoutStatus(
        store_id=store,
        customer_id=customer,
        enabled=enabled,
        required=required,
        linked=linked,
        allowed=not required or linked,
        account=account,
        prompt=settings.checkout_prompt if enabled and not linked else None,
        reason=reason,
        link_url=link_url,
        unlink_url=unlink_url,
        next_path=next_path,
    )


def require_discord_link(view: View) -> View:
    """Let the view run only when the customer may check out; otherwise send them to link Discord first
    (and back here after), or answer 403 JSON ``{"error": "discord_link_required", ...}`` to a JSON client."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        status = checkout_status()
        if status.allowed:
            return view(*args, **kwargs)
        wants_json = request.is_json or (
            request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
        )
        if not wants_json and status.link_url is not None:
            return redirect(status.link_url, 303)  # a form's POST comes back to this page as a GET
        body = {
            "error": "discord_link_required",
            "message": status.reason,
            "prompt": status.prompt,
            "link_url": status.link_url,
        }
        return jsonify(body), 403

    return guarded  # type: ignore[return-value]


def install_template_helpers(app: Flask) -> None:
    """``discord_roles_status(next=None)`` and ``discord_roles_csrf_token()`` in every template."""
    from flask_discord_roles._web.linking import csrf_token

    app.add_template_global(lambda next=None: checkout_status(next=next), "discord_roles_status")
    app.add_template_global(csrf_token, "discord_roles_csrf_token")
