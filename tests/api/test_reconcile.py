"""``/reconcile``: start a run, follow it, read its drift; every answer as documented."""

from __future__ import annotations

from flask_discord_roles._core.reconcile import step_runs
from flask_discord_roles._runtime.state import get_state
from tests.api import Api, assert_documented, assert_error
from tests.shop import Shop


def test_a_store_owner_starts_a_run_and_reads_the_drift_it_found(api: Api, shop: Shop) -> None:
    shop.map("vip", "VIP")
    alice = shop.member("alice")
    shop.buy("order-1", "vip", buyer=alice, customer="c-1")
    with shop.fake.world.lock:
        shop.fake.world.member(shop.guild_id, alice).roles.clear()  # a moderator took it off

    started = api.post("/reconcile", json={})
    assert started.status_code == 202, started.get_json()
    (run,) = assert_documented(api, "post", "/reconcile", started)["runs"]
    assert (run["status"], run["mode"], run["guild_id"]) == ("running", "report", shop.guild_id), run
    again = assert_documented(
        api, "post", "/reconcile", api.post("/reconcile", json={"guild_id": shop.guild_id})
    )
    assert again["runs"][0]["id"] == run["id"], "a server with a run going keeps it"

    state = get_state(shop.app)
    step_runs(state, state.db.engine, "api-test-worker")
    got = assert_documented(api, "get", "/reconcile/runs/{run_id}", api.get(f"/reconcile/runs/{run['id']}"))[
        "run"
    ]
    assert got["status"] == "completed", got
    assert got["drift"] == {"role_missing": 1, "role_not_ended": 0, "member_absent": 0}
    assert got["examples"] == [
        {"kind": "role_missing", "discord_user_id": alice, "role_id": shop.roles["VIP"]}
    ]
    assert got["repairs"] == 0, "the store's mode is off: an on-demand run only reports"
    listed = assert_documented(api, "get", "/reconcile/runs", api.get("/reconcile/runs"))["runs"]
    assert [r["id"] for r in listed] == [run["id"]]


def test_bad_requests_change_nothing(api: Api, shop: Shop) -> None:
    shop.link()
    assert_error(api.post("/reconcile", json={"guild_id": "general"}), 422)
    assert_error(api.post("/reconcile", json={"colour": "red"}), 422)
    assert_error(api.post("/reconcile", json={"guild_id": "1234567890123456789"}), 404)
    assert_error(api.get("/reconcile/runs/999"), 404)
    assert assert_documented(api, "get", "/reconcile/runs", api.get("/reconcile/runs"))["runs"] == []
