"""Reconciliation: the roles members hold are compared with what they bought, a page of members at a
time, over HTTP with FakeDiscord as the judge; ``report`` records drift, ``repair`` puts it right, and
nothing we did not grant is ever taken away.

Steps and runners take the test's clock, so leases run out when the test says, never by sleeping.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from flask_discord_roles._core import reconcile as service
from flask_discord_roles._core.reconcile import RunInfo, step_runs
from flask_discord_roles._engine.runner import DeliveryRunner
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.codes import DriftKind, ReasonCode, ReconcileMode, ReconcileStatus
from tests.shop import Shop

PAGE = 2
"""Members per page: the shop's seven members (the bot and the owner among them) take four pages."""
ROLE_CHANGE = r"/guilds/\d+/members/\d+/roles/\d+$"


class Clock:
    def __init__(self) -> None:
        self.now = utcnow() - timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Drifted:
    """A server where every kind of drift, and every role we must never touch, is present."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        shop.map("vip", "VIP")
        shop.map("gold", "Gold")
        # alice bought VIP, then a moderator took it off her by hand.
        self.alice = shop.member("alice")
        shop.buy("order-alice", "vip", buyer=self.alice, customer="c-alice")
        self.take_off(self.alice, "VIP")
        # bob held VIP before he bought it, and was refunded: it was never ours to take.
        self.bob = shop.member("bob", roles=("VIP",))
        shop.buy("order-bob", "vip", buyer=self.bob, customer="c-bob")
        shop.refund("order-bob", customer="c-bob")
        # carol was given Gold by a moderator; she never bought it.
        self.carol = shop.member("carol", roles=("Gold",))
        # dave bought VIP, left the server and rejoined: Discord gave him no roles back.
        self.dave = shop.member("dave")
        shop.buy("order-dave", "vip", buyer=self.dave, customer="c-dave")
        shop.fake.remove_member(shop.guild_id, self.dave)
        shop.fake.add_member(shop.guild_id, self.dave)
        # erin's Gold was refunded while the bot was down: the removal never ran.
        self.erin = shop.member("erin")
        shop.buy("order-erin", "gold", buyer=self.erin, customer="c-erin")
        self.revoke_without_removal("order-erin")
        # frank bought VIP and left.
        self.frank = shop.member("frank")
        shop.buy("order-frank", "vip", buyer=self.frank, customer="c-frank")
        shop.fake.remove_member(shop.guild_id, self.frank)
        shop.fake.clear_calls()

    def take_off(self, user_id: str, role_name: str) -> None:
        with self.shop.fake.world.lock:
            self.shop.fake.world.member(self.shop.guild_id, user_id).roles.remove(self.shop.roles[role_name])

    def revoke_without_removal(self, order_id: str) -> None:
        model = get_state(self.shop.app).models.Delivery
        self.shop.db.session.execute(
            sa.update(model).where(model.order_id == order_id).values(revoked_at=utcnow())
        )
        self.shop.db.session.commit()

    def holdings(self) -> dict[str, set[str]]:
        users = {
            "alice": self.alice,
            "bob": self.bob,
            "carol": self.carol,
            "dave": self.dave,
            "erin": self.erin,
        }
        return {name: self.shop.roles_of(user) for name, user in users.items()}


EXPECTED_DRIFT = {DriftKind.ROLE_MISSING: 2, DriftKind.ROLE_NOT_ENDED: 1, DriftKind.MEMBER_ABSENT: 1}
UNTOUCHED = {"alice": set(), "bob": {"VIP"}, "carol": {"Gold"}, "dave": set(), "erin": {"Gold"}}
REPAIRED = {"alice": {"VIP"}, "bob": {"VIP"}, "carol": {"Gold"}, "dave": {"VIP"}, "erin": set()}


def start(shop: Shop) -> int:
    runs = service.start_runs(get_state(shop.app), shop.store_id)
    shop.db.session.commit()
    assert len(runs) == 1, f"one run per linked server, got {runs}"
    return runs[0].id


def finish(shop: Shop, clock: Clock, run_id: int, name: str = "worker-a") -> RunInfo:
    """Passes of one worker (step the run, then run what it queued) until the run is over."""
    state = get_state(shop.app)
    runner = DeliveryRunner(state, shop.db.engine, runner_id=name, clock=clock)
    for _ in range(20):
        step_runs(state, shop.db.engine, name, now=clock(), page_size=PAGE)
        while ids := runner.claim(50):
            for delivery_id in ids:
                runner.run(delivery_id)
        info = read(shop, run_id)
        if info.status != ReconcileStatus.RUNNING:
            return info
        clock.advance(1)
    raise AssertionError(f"run {run_id} still running after 20 passes: {info}")


def read(shop: Shop, run_id: int) -> RunInfo:
    shop.db.session.expire_all()
    info = service.get_run(get_state(shop.app), shop.store_id, run_id)
    shop.db.session.commit()
    return info


def members_of(shop: Shop) -> int:
    with shop.fake.world.lock:
        return len(shop.fake.world.guild(shop.guild_id).members)


def role_changes(shop: Shop) -> Counter[tuple[str, str, str]]:
    """Role PUTs and DELETEs FakeDiscord answered: (method, member, role) -> how many."""
    calls = shop.fake.calls_to("PUT", ROLE_CHANGE) + shop.fake.calls_to("DELETE", ROLE_CHANGE)
    return Counter((call.method, call.path.split("/")[-3], call.path.split("/")[-1]) for call in calls)


@pytest.mark.parametrize("mode", [ReconcileMode.REPORT, ReconcileMode.REPAIR])
def test_drift_is_reported_under_report_and_put_right_under_repair(shop: Shop, mode: ReconcileMode) -> None:
    world = Drifted(shop)
    shop.settings(reconcile_mode=mode)
    clock = Clock()

    info = finish(shop, clock, start(shop))

    assert info.status == ReconcileStatus.COMPLETED, info
    assert info.members_seen == members_of(shop), "every member is read once"
    assert info.drift == {str(kind): count for kind, count in EXPECTED_DRIFT.items()}, info.drift
    assert {(e["kind"], e["discord_user_id"]) for e in info.examples} == {
        (DriftKind.ROLE_MISSING, world.alice),
        (DriftKind.ROLE_MISSING, world.dave),
        (DriftKind.ROLE_NOT_ENDED, world.erin),
        (DriftKind.MEMBER_ABSENT, world.frank),
    }
    if mode == ReconcileMode.REPORT:
        assert info.repairs == 0
        assert world.holdings() == UNTOUCHED, "report changes nothing"
        assert role_changes(shop) == Counter()
        return
    assert info.repairs == 3
    assert world.holdings() == REPAIRED, "lost roles given back, the ended one taken, the others untouched"
    vip, gold = shop.roles["VIP"], shop.roles["Gold"]
    assert role_changes(shop) == Counter(
        {("PUT", world.alice, vip): 1, ("PUT", world.dave, vip): 1, ("DELETE", world.erin, gold): 1}
    ), "never a change to a role we did not grant (bob's VIP, carol's Gold)"

    # Nothing has drifted any more; and the role given back is still the order's, so a refund takes it.
    again = finish(shop, clock, start(shop))
    assert again.drift == {DriftKind.ROLE_MISSING: 0, DriftKind.ROLE_NOT_ENDED: 0, DriftKind.MEMBER_ABSENT: 1}
    shop.refund("order-alice", customer="c-alice")
    assert "VIP" not in shop.roles_of(world.alice), "refunding the order takes back the role the repair gave"


def test_an_on_demand_run_reports_when_the_store_is_off_and_a_schedule_skips_it(shop: Shop) -> None:
    Drifted(shop)
    state = get_state(shop.app)
    assert service.start_runs(state, shop.store_id, scheduled=True) == []
    assert service.scheduled_store_ids(state) == []
    info = finish(shop, Clock(), start(shop))
    assert (info.mode, info.repairs, info.drift[DriftKind.ROLE_MISSING]) == (ReconcileMode.REPORT, 0, 2)


def test_a_crash_mid_run_resumes_from_the_cursor_and_changes_no_role_twice(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = Drifted(shop)
    shop.settings(reconcile_mode=ReconcileMode.REPAIR)
    clock = Clock()
    run_id = start(shop)
    state = get_state(shop.app)
    step_runs(state, shop.db.engine, "worker-a", now=clock(), page_size=PAGE)
    first = read(shop, run_id)
    assert first.members_seen == PAGE

    real_find = service.find_drift

    def killed(*args: object, **kwargs: object) -> object:
        real_find(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt("worker killed mid-step")

    monkeypatch.setattr(service, "find_drift", killed)
    with pytest.raises(KeyboardInterrupt):
        step_runs(state, shop.db.engine, "worker-a", now=clock(), page_size=PAGE)
    monkeypatch.undo()
    assert read(shop, run_id).members_seen == PAGE, "the killed step committed nothing"
    step_runs(state, shop.db.engine, "worker-b", now=clock(), page_size=PAGE)
    assert read(shop, run_id).members_seen == PAGE, "worker-a's lease still holds the run"

    clock.advance(state.settings.lease_seconds + 1)
    info = finish(shop, clock, run_id, name="worker-b")

    assert info.members_seen == members_of(shop), info
    assert info.repairs == 3, info
    assert info.drift == {str(kind): count for kind, count in EXPECTED_DRIFT.items()}
    assert world.holdings() == REPAIRED
    assert all(count == 1 for count in role_changes(shop).values()), role_changes(shop)


def test_a_bot_without_the_members_intent_fails_the_run_with_the_fix(shop: Shop) -> None:
    shop.map("vip", "VIP")
    shop.bot.members_intent = False
    info = finish(shop, Clock(), start(shop))
    assert (info.status, info.reason_code) == (ReconcileStatus.FAILED, ReasonCode.MEMBERS_INTENT_MISSING), (
        info
    )
    assert "Server Members Intent" in ReasonCode.MEMBERS_INTENT_MISSING.fix


def test_the_cli_reconciles_every_store_not_off_to_completion_and_runs_the_repairs(shop: Shop) -> None:
    world = Drifted(shop)
    cli = shop.app.test_cli_runner()

    skipped = cli.invoke(args=["discord-roles", "reconcile"])
    assert skipped.exit_code == 0, skipped.output
    assert "nothing to reconcile" in skipped.output, "a store whose mode is off is skipped"

    shop.settings(reconcile_mode=ReconcileMode.REPAIR)
    result = cli.invoke(args=["discord-roles", "reconcile", "--page-size", "3"])

    assert result.exit_code == 0, result.output
    assert f"server {shop.guild_id} [repair]: completed" in result.output, result.output
    assert "role_missing 2, role_not_ended 1, member_absent 1, 3 repairs queued" in result.output
    assert world.holdings() == REPAIRED, "the command's worker pass ran the repairs"
