"""``/mappings/<id>/backfill`` and ``/backfills``: start, follow, cancel; every answer as documented."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_discord_roles._core.backfills import step_backfills
from flask_discord_roles._engine.worker import run_now
from flask_discord_roles._runtime.state import get_state
from tests.api import Api, api_for, assert_documented, assert_error
from tests.shop import Shop

pytestmark = pytest.mark.app_settings(DISCORD_ROLES_BACKFILL_WINDOW=1)

BACKFILL = "/backfills/{backfill_id}"


@pytest.fixture
def mapping_id(shop: Shop) -> int:
    """VIP sold to two members, then the package also mapped to Supporter: that mapping's id."""
    shop.map("vip", "VIP")
    shop.buy("order-1", "vip", buyer=shop.member("alice"), customer="c-1")
    shop.buy("order-2", "vip", buyer=shop.member("bob"), customer="c-2")
    shop.map("vip", "Supporter")
    model = get_state(shop.app).models.RoleMapping
    found = shop.db.session.scalar(sa.select(model.id).where(model.role_name == "Supporter"))
    assert found is not None
    return found


def worker_pass(app: Flask) -> None:
    """What a worker's pass does for backfills: a step, then the rows it made due are run."""
    state = get_state(app)
    step_backfills(state, state.db.engine, "api-test-worker")
    delivery = state.models.Delivery
    due = state.db.session.scalars(sa.select(delivery.id).where(delivery.next_attempt_at.is_not(None)))
    run_now(app, list(due), [])
    state.db.session.commit()


def test_a_store_owner_starts_follows_and_cancels_a_backfill(api: Api, shop: Shop, mapping_id: int) -> None:
    started = api.post(f"/mappings/{mapping_id}/backfill")
    assert started.status_code == 202, started.get_json()
    job = assert_documented(api, "post", "/mappings/{mapping_id}/backfill", started)["backfill"]
    assert (job["status"], job["mapping_id"], job["total"], job["done"]) == ("running", mapping_id, 0, 0)
    assert (
        "already has a running backfill"
        in assert_error(api.post(f"/mappings/{mapping_id}/backfill"), 409)["detail"]
    )

    worker_pass(shop.app)  # a window of one: alice
    one = api.get(f"/backfills/{job['id']}")
    progress = assert_documented(api, "get", BACKFILL, one)["backfill"]
    assert (progress["total"], progress["done"], progress["completed"]) == (1, 1, 1), progress

    listed = api.get("/backfills?status=running")
    assert [b["id"] for b in assert_documented(api, "get", "/backfills", listed)["backfills"]] == [job["id"]]
    assert api.get("/backfills?status=completed").get_json()["backfills"] == []
    assert_error(api.get("/backfills?status=finished"), 422, fields=("status",))

    cancelled = api.post(f"/backfills/{job['id']}/cancel")
    body = assert_documented(api, "post", f"{BACKFILL}/cancel", cancelled)["backfill"]
    assert (body["status"], body["total"]) == ("cancelled", 1)
    assert body["finished_at"].endswith("Z")
    assert api.post(f"/backfills/{job['id']}/cancel").get_json()["backfill"] == body, (
        "cancelling is idempotent"
    )


def test_a_completed_backfill_cannot_be_cancelled_and_other_stores_see_none(
    api: Api, shop: Shop, mapping_id: int
) -> None:
    job: dict[str, Any] = api.post(f"/mappings/{mapping_id}/backfill").get_json()["backfill"]
    for _ in range(4):
        worker_pass(shop.app)
    done = api.get(f"/backfills/{job['id']}").get_json()["backfill"]
    assert (done["status"], done["total"], done["completed"], done["failures_by_reason"]) == (
        "completed",
        2,
        2,
        {},
    ), done
    assert_error(api.post(f"/backfills/{job['id']}/cancel"), 409)

    other = api_for(shop.app, "store-2")
    assert_error(other.get(f"/backfills/{job['id']}"), 404)
    assert_error(other.post(f"/backfills/{job['id']}/cancel"), 404)
    assert_error(other.post(f"/mappings/{mapping_id}/backfill"), 404)
    assert other.get("/backfills").get_json()["backfills"] == []


def test_a_mapping_created_or_edited_with_backfill_true_reaches_the_packages_existing_customers(
    api: Api, shop: Shop
) -> None:
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice, customer="c-1")
    supporter = shop.role("Supporter")
    fields = {"package_id": "vip", "guild_id": shop.guild_id, "role_id": supporter}

    refused = api.post("/mappings", json={**fields, "backfill": "yes"})
    assert_error(refused, 422, fields=("backfill",))
    assert api.get("/mappings").get_json()["mappings"][-1]["role_id"] != supporter, (
        "a refused flag must not leave the mapping behind"
    )

    created = api.post("/mappings", json={**fields, "backfill": True})
    body = assert_documented(api, "post", "/mappings", created)
    job = body["backfill"]
    assert (job["status"], job["mapping_id"]) == ("running", body["mapping"]["id"]), body
    worker_pass(shop.app)
    worker_pass(shop.app)
    assert "Supporter" in shop.roles_of(alice), "the existing customer did not get the new mapping's role"

    edited = api.patch(f"/mappings/{body['mapping']['id']}", json={"keep_on_end": True, "backfill": True})
    again = assert_documented(api, "patch", "/mappings/{mapping_id}", edited)
    assert again["mapping"]["keep_on_end"] is True
    assert again["backfill"]["id"] != job["id"], "the first backfill had completed: a new one starts"
    assert again["backfill"]["status"] == "running"
    worker_pass(shop.app)  # finds alice's delivery there already
    worker_pass(shop.app)  # nothing left to settle
    done = api.get(f"/backfills/{again['backfill']['id']}").get_json()["backfill"]
    assert (done["status"], done["skipped"], done["completed"]) == ("completed", 1, 0), (
        "a second backfill must find alice's delivery already there and queue nothing twice"
    )
