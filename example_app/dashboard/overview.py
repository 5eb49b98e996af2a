"""``/dashboard/``: how deliveries are going, and whether anything needs fixing."""

from __future__ import annotations

from flask import render_template

from flask_discord_roles import bots, deliveries, diagnostics, metrics

from . import dashboard
from .chart import daily_chart
from .common import store_id

CHART_DAYS = 14


@dashboard.get("/")
def overview() -> str:
    store = store_id()
    diagnosis = diagnostics.run_diagnostics(store)
    return render_template(
        "dashboard/overview.html",
        bot=bots.get_bot(store),
        stats=deliveries.store_stats(store),
        chart=daily_chart(deliveries.deliveries_per_day(store, days=CHART_DAYS)),
        failing=[check for check in diagnosis.checks if not check.ok],
        checks=len(diagnosis.checks),
        # The numbers the metrics endpoint's gauges report, for this store.
        queue=metrics.snapshot(store),
    )
