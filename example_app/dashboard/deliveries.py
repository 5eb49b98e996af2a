"""``/dashboard/deliveries``: every role change, newest first, filtered by status, and retrying failures.

The filter and the page live in the query string, and every retry comes back to the same view.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from flask_discord_roles import deliveries
from flask_discord_roles.deliveries import MAX_ID, STATUSES, DeliveryInfo, DeliveryNotFound, ValidationError

from .. import db
from . import dashboard
from .common import refused, store_id, why
from .shop_names import customer_names, package_names

STATUS_FILTERS = (("All", None), *((status.capitalize(), status) for status in STATUSES))
RETRYABLE = ("failed", "expired")
PAGE_SIZE = 25


def _view_args(source: Any) -> dict[str, str]:
    """The filters and page of the listing, from the query string or a retry form's hidden fields;
    anything that is not a filter this page offers is dropped rather than refused."""
    args: dict[str, str] = {}
    status = source.get("status", "")
    if status in STATUSES:
        args["status"] = status
    customer = source.get("customer", "")
    if 1 <= len(customer) <= 64 and "\x00" not in customer:
        args["customer"] = customer
    before = source.get("before", "")
    if before.isdigit() and 0 < int(before) <= MAX_ID:  # a larger number cannot name a delivery
        args["before"] = before
    return args


def _listing_url(**filters: str | int | None) -> str:
    """The listing with these filters; one that is None is left out of the address."""
    values: dict[str, Any] = {name: value for name, value in filters.items() if value is not None}
    return url_for("dashboard.deliveries", **values)


def _retry_all(status: str | None) -> str | None:
    """What the "retry all" button retries: failed ones, or expired ones when those are listed."""
    if status is None:
        return "failed"
    return status if status in RETRYABLE else None


@dashboard.get("/deliveries", endpoint="deliveries")
def deliveries_page() -> str:
    args = _view_args(request.args)
    status, customer, before = args.get("status"), args.get("customer"), args.get("before")
    page = deliveries.list_deliveries(
        store_id(),
        status=status,
        customer_id=customer,
        before_id=int(before) if before else None,
        limit=PAGE_SIZE,
    )
    older = page.next_before_id
    return render_template(
        "dashboard/deliveries.html",
        page=page,
        args=args,
        status_links=[
            (label, _listing_url(status=value, customer=customer), value == status)
            for label, value in STATUS_FILTERS
        ],
        all_customers_url=_listing_url(status=status),
        older_url=_listing_url(status=status, customer=customer, before=older) if older else None,
        newest_url=_listing_url(status=status, customer=customer) if before else None,
        retry_all=_retry_all(status),
        retryable=RETRYABLE,
        packages=package_names(),
        customers=customer_names(item.customer_id for item in page.items),
        why=why,
    )


@dashboard.post("/deliveries/<int:delivery_id>/retry")
def retry_delivery(delivery_id: int) -> Response:
    back = _view_args(request.form)
    store = store_id()
    try:
        deliveries.retry_delivery(store, delivery_id)
    except DeliveryNotFound:
        return refused(f"There is no delivery #{delivery_id}.", "dashboard.deliveries", **back)
    except ValidationError as error:
        return refused(error, "dashboard.deliveries", **back)
    db.session.commit()
    # Depending on the executor it may have run already, in this very commit: say how it went if so.
    _say_outcome(deliveries.get_delivery(store, delivery_id))
    return redirect(_listing_url(**back))


def _say_outcome(delivery: DeliveryInfo) -> None:
    if delivery.status == "completed":
        flash(f"Delivery #{delivery.id} is done.", "success")
    elif delivery.status == "failed":
        flash(f"Delivery #{delivery.id} failed again: {why(delivery)}", "error")
    elif delivery.waiting_for_customer:
        flash(f"Delivery #{delivery.id} is waiting for the customer to link Discord or run /claim.", "info")
    else:
        flash(f"Delivery #{delivery.id} is queued again.", "success")


@dashboard.post("/deliveries/retry")
def retry_all() -> Response:
    back = _view_args(request.form)
    status = request.form.get("which", "failed")
    if status not in RETRYABLE:
        return refused("Only failed or expired deliveries can be retried.", "dashboard.deliveries", **back)
    # The customer filter narrows a retry too: the button retries what the page lists.
    outcome = deliveries.retry_deliveries(store_id(), status=status, customer_id=back.get("customer"))
    db.session.commit()
    count = outcome.retried
    if count:
        noun = "delivery" if count == 1 else "deliveries"
        flash(f"Retrying {count} {status} {noun}. Their new status shows below.", "success")
    elif not outcome.refused:
        flash(f"There were no {status} deliveries to retry.", "info")
    if outcome.refused:
        noun = "delivery was" if outcome.refused_total == 1 else "deliveries were"
        flash(
            f"{outcome.refused_total} {noun} not retried: their server was unlinked since, or their "
            "package is no longer mapped to the role. Each one's reason says which.",
            "info",
        )
    return redirect(_listing_url(**back))
