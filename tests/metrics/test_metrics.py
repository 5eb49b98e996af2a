"""What the metrics count, on both databases: delivery outcomes and latency, Discord's requests and 429s
per route, interaction latency, the queue and drift read from the database; and who may scrape."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import metrics
from flask_discord_roles._core.queue_stats import QueueState
from flask_discord_roles._engine.worker import Worker
from flask_discord_roles._metrics.exposition import GAUGE_CACHE_SECONDS, queue_numbers
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.errors import ConfigurationError
from flask_discord_roles.testing import FakeDiscord
from tests.metrics.conftest import Scrape, scrape
from tests.shop import Shop

MEMBER_ROLE = "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}"
GET_MEMBER = "GET /guilds/{guild_id}/members/{user_id}"


@pytest.fixture
def shop(shop: Shop) -> Shop:
    shop.map("vip", "VIP")
    return shop


def moved(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def test_delivery_outcomes_latency_and_discord_requests_are_counted(shop: Shop, app: Flask) -> None:
    client = app.test_client()
    before = scrape(client)
    shop.buy("order-1", "vip", buyer=shop.member("ann"))
    stranger = shop.fake.create_user("not-in-the-server").id  # Discord answers 404 for the member
    shop.buy("order-2", "vip", buyer=stranger, customer="customer-2")
    after = scrape(client)

    delivered, refused = shop.deliveries(order_id="order-1")[0], shop.deliveries(order_id="order-2")[0]
    assert delivered.status == "completed", shop.statuses()
    assert refused.status == "failed", shop.statuses()
    outcomes = "discord_roles_delivery_outcomes_total"
    assert moved(after, before, outcomes, status="completed", reason_code="") == 1, after.text
    assert moved(after, before, outcomes, status="failed", reason_code=refused.reason_code) == 1, after.text
    latency = "discord_roles_delivery_latency_seconds_count"
    assert moved(after, before, latency, action="add") == 1, "one completed delivery, one latency"
    requests = "discord_roles_discord_requests_total"
    assert moved(after, before, requests, route=MEMBER_ROLE, status="204") == 1, after.text
    assert moved(after, before, requests, route=GET_MEMBER, status="200") == 1, after.text
    assert moved(after, before, requests, route=GET_MEMBER, status="404") == 1, after.text


def test_429s_are_counted_per_route(shop: Shop, app: Flask, fake_discord: FakeDiscord) -> None:
    client = app.test_client()
    before = scrape(client)
    # Every role change is refused with a long retry_after: one 429, then the row waits for it.
    fake_discord.set_faults(rate_limit_rate=1.0, rate_limit_retry_after=30.0, routes=["member_role"])
    shop.buy("order-1", "vip", buyer=shop.member("ann"))
    fake_discord.set_faults()
    after = scrape(client)

    (row,) = shop.deliveries()
    assert (row.status, row.reason_code) == ("pending", "rate_limited"), shop.statuses()
    limited = "discord_roles_discord_rate_limited_total"
    assert moved(after, before, limited, route=MEMBER_ROLE) == 1, after.text
    assert moved(after, before, limited, route=MEMBER_ROLE, scope="shared") == 1, "FakeDiscord says shared"
    assert moved(after, before, limited, route=GET_MEMBER) == 0, "the member read was not refused"
    outcomes = "discord_roles_delivery_outcomes_total"
    assert moved(after, before, outcomes, status="pending", reason_code="rate_limited") == 1, after.text


def test_interaction_latency_is_observed_per_kind(shop: Shop, app: Flask, fake_discord: FakeDiscord) -> None:
    client = app.test_client()
    url = "/webhook/discord/interactions/store-1"
    member = shop.member("ann")
    before = scrape(client)
    assert fake_discord.ping(url, shop.bot, client=client).status_code == 200
    for _ in range(2):
        payload = fake_discord.command_payload(shop.bot, shop.guild_id, member, "help")
        assert fake_discord.send_interaction(url, shop.bot, payload, client=client).status_code == 200
    after = scrape(client)

    count = "discord_roles_interaction_latency_seconds_count"
    assert moved(after, before, count, kind="ping") == 1, after.text
    assert moved(after, before, count, kind="help") == 2, after.text
    took = moved(after, before, "discord_roles_interaction_latency_seconds_sum", kind="help")
    assert 0 < took < 10, f"two /help answers took {took}s in all"


@pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="worker")  # nothing runs: the rows stay queued
def test_queue_depth_oldest_due_age_and_drift_come_from_the_database(
    shop: Shop, app: Flask, db: SQLAlchemy
) -> None:
    shop.buy("order-1", "vip", buyer=shop.member("ann"))
    shop.buy("order-2", "vip", buyer=shop.member("bob"), customer="customer-2")
    shop.buy("order-3", "vip", buyer=None, customer="customer-3")  # waits for the customer
    delivery = get_state(app).models.Delivery
    first, second = (row.id for row in shop.deliveries() if row.next_attempt_at is not None)
    queued_at = utcnow() - timedelta(minutes=10)
    db.session.execute(sa.update(delivery).where(delivery.id == first).values(next_attempt_at=queued_at))
    later = utcnow() + timedelta(hours=1)
    db.session.execute(sa.update(delivery).where(delivery.id == second).values(next_attempt_at=later))
    run = get_state(app).models.ReconcileRun
    db.session.add_all(
        [
            # Only each server's latest finished run counts: not an older one, nor one still running.
            run(
                store_id="store-1", guild_id="1", mode="report", status="completed", drift={"role_missing": 5}
            ),
            run(
                store_id="store-1", guild_id="1", mode="report", status="completed", drift={"role_missing": 2}
            ),
            run(
                store_id="store-1",
                guild_id="2",
                mode="report",
                status="completed",
                drift={"member_absent": 1},
            ),
            run(
                store_id="store-2", guild_id="3", mode="repair", status="completed", drift={"role_missing": 4}
            ),
        ]
    )
    db.session.commit()
    db.session.add(
        run(store_id="store-1", guild_id="1", mode="report", status="running", drift={"role_missing": 9})
    )
    db.session.commit()

    now = queued_at + timedelta(seconds=90)
    numbers = metrics.snapshot("store-1", now=now)
    assert numbers.queue_depth == {"due": 1, "scheduled": 1, "waiting": 1}, numbers
    assert numbers.oldest_due_seconds == pytest.approx(90, abs=1)
    assert numbers.drift == {"role_missing": 2, "role_not_ended": 0, "member_absent": 1}
    assert metrics.snapshot("store-2", now=now).queue_depth == {"due": 0, "scheduled": 0, "waiting": 0}
    assert metrics.snapshot(now=now).drift["role_missing"] == 6, "every store's latest runs"

    scraped = scrape(app.test_client())
    assert scraped.value("discord_roles_queue_depth", state="due") == 1, scraped.text
    assert scraped.value("discord_roles_queue_depth", state="waiting") == 1, scraped.text
    assert scraped.value("discord_roles_oldest_due_delivery_seconds") >= 600, "due ten minutes ago"
    assert scraped.value("discord_roles_reconcile_drift", kind="role_missing") == 6, scraped.text
    assert scraped.value("discord_roles_database_up") == 1


@pytest.mark.app_settings(DISCORD_ROLES_METRICS_TOKEN="s3cret-scrape-token")
def test_a_metrics_token_keeps_out_whoever_lacks_it(app: Flask) -> None:
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-scrape-token"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, f"{headers} was let in"
        assert "s3cret" not in refused.get_data(as_text=True)
    scraped = scrape(client, Authorization="Bearer s3cret-scrape-token")
    assert "discord_roles_queue_depth" in scraped.text
    assert "s3cret" not in repr(get_state(app)), "the token stays out of the state's repr"


def test_metrics_are_off_unless_a_path_is_set(fresh_app: Any) -> None:
    app, _, _ = fresh_app()
    assert app.test_client().get("/metrics").status_code == 404
    assert not get_state(app).telemetry.enabled


def test_turning_metrics_on_without_prometheus_client_names_the_extra(
    fresh_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if it were not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'flask-discord-roles\[metrics\]'"):
        fresh_app(DISCORD_ROLES_METRICS_PATH="/metrics")


def test_a_metrics_path_must_be_a_path(fresh_app: Any) -> None:
    with pytest.raises(ConfigurationError, match="DISCORD_ROLES_METRICS_PATH must be a URL path"):
        fresh_app(DISCORD_ROLES_METRICS_PATH="metrics")


def test_a_multiprocess_directory_must_exist_and_be_set_before_the_process_starts(
    fresh_app: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="which is not a directory"):
        fresh_app(DISCORD_ROLES_METRICS_PATH="/metrics")
    # This process imported prometheus_client without the variable: its counts are not in any files.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError, match="set it in the environment the processes start with"):
        fresh_app(DISCORD_ROLES_METRICS_PATH="/metrics")


@pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="worker")
def test_delivery_latency_runs_from_the_order_to_the_role_change(shop: Shop, app: Flask) -> None:
    client = app.test_client()
    shop.buy("order-1", "vip", buyer=shop.member("ann"))
    (row,) = shop.deliveries()
    shop.set_created_at(row.id, utcnow() - timedelta(minutes=2))  # ordered two minutes ago
    before = scrape(client)
    worker = Worker(app, poll_interval=0.05)
    try:
        worker.run_pass()
    finally:
        worker.drainer.close()
    after = scrape(client)

    assert shop.roles_of(row.discord_user_id) == {"VIP"}, shop.statuses()
    assert moved(after, before, "discord_roles_delivery_latency_seconds_count", action="add") == 1
    waited = moved(after, before, "discord_roles_delivery_latency_seconds_sum", action="add")
    assert 120 <= waited < 150, f"the buyer waited two minutes for the role, not {waited}s"


@pytest.mark.app_settings(DISCORD_ROLES_EXECUTOR="worker")
def test_the_queue_gauges_are_read_at_most_once_per_few_seconds(
    shop: Shop, app: Flask, db: SQLAlchemy
) -> None:
    state = get_state(app)
    clock = [1000.0]

    def depth() -> int:
        return queue_numbers(state, db.engine, clock=lambda: clock[0]).depth[QueueState.DUE]

    assert depth() == 0
    shop.buy("order-1", "vip", buyer=shop.member("ann"))
    assert depth() == 0, "a scrape within the cache time reuses the last reading"
    clock[0] += GAUGE_CACHE_SECONDS
    assert depth() == 1, "once it is older, the database is read again"
