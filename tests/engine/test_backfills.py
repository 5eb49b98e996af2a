"""Backfills: a new mapping reaches every customer who already holds its package, paced, resumable,
cancellable and idempotent, with progress; FakeDiscord (over HTTP) is the judge of the role changes.

Steps and runners take the test's clock, so leases run out when the test says, never by sleeping.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from flask_discord_roles import OrderEvent
from flask_discord_roles._core import backfills as backfill_service
from flask_discord_roles._core.backfills import BackfillInfo, step_backfills
from flask_discord_roles._core.mappings import delete_mapping
from flask_discord_roles._core.queue import enqueue_order, order_delivery_key
from flask_discord_roles._engine.runner import DeliveryRunner
from flask_discord_roles._engine.worker import Worker
from flask_discord_roles._runtime.models import utcnow
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.codes import BackfillStatus, DeliveryMode, GrantStatus, ReasonCode, Status
from tests.shop import Shop

pytestmark = pytest.mark.app_settings(DISCORD_ROLES_BACKFILL_WINDOW=2)

ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+$"


class Clock:
    """The test's time: moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = utcnow() - timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Workers:
    """Worker processes of the test, by name: each steps backfills and runs deliveries as itself."""

    def __init__(self, shop: Shop, clock: Clock) -> None:
        self.shop, self.clock = shop, clock
        self.state = get_state(shop.app)
        self.engine = shop.db.engine

    def step(self, name: str = "worker-a") -> int:
        return step_backfills(self.state, self.engine, name, now=self.clock())

    def runner(self, name: str = "worker-a") -> DeliveryRunner:
        return DeliveryRunner(self.state, self.engine, runner_id=name, clock=self.clock)

    def drain(self, name: str = "worker-a") -> None:
        runner = self.runner(name)
        while ids := runner.claim(50):
            for delivery_id in ids:
                runner.run(delivery_id)

    def finish(self, backfill_id: int, name: str = "worker-a") -> BackfillInfo:
        """Passes of one worker until the backfill is no longer running."""
        for _ in range(20):
            self.step(name)
            self.drain(name)
            info = progress(self.shop, backfill_id)
            if info.status != BackfillStatus.RUNNING:
                return info
            self.clock.advance(1)
        raise AssertionError(f"backfill {backfill_id} still running after 20 passes: {info}")


@pytest.fixture
def workers(shop: Shop, clock: Clock) -> Workers:
    return Workers(shop, clock)


def start(shop: Shop, package_id: str, role_name: str, now: datetime | None = None) -> int:
    """Map ``package_id`` to a new role and start its backfill, as a store owner would; its id."""
    shop.map(package_id, role_name)
    mapping = get_state(shop.app).models.RoleMapping
    mapping_id = shop.db.session.scalar(
        sa.select(mapping.id).where(mapping.package_id == package_id, mapping.role_name == role_name)
    )
    assert mapping_id is not None
    return begin(shop, mapping_id, now)


def begin(shop: Shop, mapping_id: int, now: datetime | None = None) -> int:
    job = backfill_service.start_backfill(get_state(shop.app), shop.store_id, mapping_id, now=now)
    shop.db.session.commit()
    return job.id


def progress(shop: Shop, backfill_id: int) -> BackfillInfo:
    shop.db.session.expire_all()
    info = backfill_service.get_backfill(get_state(shop.app), shop.store_id, backfill_id)
    shop.db.session.commit()
    return info


def puts_per_member(shop: Shop, role_name: str) -> Counter[str]:
    """How many role PUTs FakeDiscord answered for ``role_name``, per member."""
    role_id = shop.roles[role_name]
    return Counter(
        call.path.split("/")[-3]
        for call in shop.fake.calls_to("PUT", ROLE_PUT)
        if call.path.endswith(role_id)
    )


def grant(shop: Shop, order_id: str, package_id: str, discord_user_id: str, customer_id: str) -> None:
    """A time-limited grant whose order left no delivery (its package was not mapped when bought)."""
    model = get_state(shop.app).models.Grant
    shop.db.session.add(
        model(
            store_id=shop.store_id,
            customer_id=customer_id,
            discord_user_id=discord_user_id,
            package_id=package_id,
            order_id=order_id,
            last_order_id=order_id,
            status=GrantStatus.ACTIVE,
            expires_at=utcnow() + timedelta(days=30),
            ends_at=utcnow() + timedelta(days=30),
        )
    )
    shop.db.session.commit()


# -- the whole path ----------------------------------------------------------------------------------------


def test_a_backfill_gives_the_new_role_to_every_holder_and_counts_why_some_failed(
    shop: Shop, workers: Workers
) -> None:
    shop.map("vip", "VIP")
    alice, bob, carol, dave, erin = (shop.member(name) for name in ("alice", "bob", "carol", "dave", "erin"))
    shop.buy("order-1", "vip", buyer=alice, customer="c-alice")
    shop.buy("order-2", "vip", buyer=bob, customer="c-bob")
    shop.buy("order-3", "vip", buyer=carol, customer="c-carol")
    shop.buy("order-4", "vip", buyer=dave, customer="c-dave")
    shop.refund("order-4", customer="c-dave")
    grant(shop, "order-5", "vip", erin, "c-erin")  # a subscription bought before vip had any mapping
    shop.fake.remove_member(shop.guild_id, carol)  # carol left the server since
    shop.fake.clear_calls()

    backfill_id = start(shop, "vip", "Supporter")
    workers.step()
    assert progress(shop, backfill_id).pending == 2, "one step queues a window (2) of deliveries"
    workers.step()
    assert progress(shop, backfill_id).pending == 2, "and no more while the window is still full"
    info = workers.finish(backfill_id)

    assert {
        name
        for name, user in (("alice", alice), ("bob", bob), ("erin", erin))
        if "Supporter" in shop.roles_of(user)
    } == {"alice", "bob", "erin"}
    assert "Supporter" not in shop.roles_of(dave), "a refunded order's customer gets nothing"
    assert puts_per_member(shop, "Supporter") == {alice: 1, bob: 1, erin: 1}
    assert (info.status, info.total, info.done, info.completed, info.failed, info.pending) == (
        BackfillStatus.COMPLETED,
        4,
        4,
        3,
        1,
        0,
    ), info
    assert info.failures_by_reason == {ReasonCode.MEMBER_NOT_IN_GUILD: 1}
    assert info.finished_at is not None
    assert info.to_dict()["finished_at"].endswith("Z")

    # Started again: every holder has the delivery already, so nothing is queued or sent.
    before = len(shop.deliveries())
    shop.fake.clear_calls()
    again = workers.finish(begin(shop, info.mapping_id))
    assert (again.status, again.total, again.skipped, again.done) == (BackfillStatus.COMPLETED, 4, 4, 4)
    assert len(shop.deliveries()) == before, "a second backfill queues nothing twice"
    assert shop.fake.calls_to("PUT", ROLE_PUT) == []


def test_a_killed_worker_loses_nothing_and_no_member_gets_the_role_twice(
    shop: Shop, workers: Workers, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.map("vip", "VIP")
    members = [shop.member(f"member-{n}") for n in range(5)]
    for n, member in enumerate(members):
        shop.buy(f"order-{n}", "vip", buyer=member, customer=f"c-{n}")
    shop.fake.clear_calls()
    backfill_id = start(shop, "vip", "Supporter", now=clock())

    workers.step("worker-a")
    workers.drain("worker-a")  # two members served
    # worker-a dies in its next step, after inserting the next deliveries and before committing.
    real_insert = backfill_service.insert_new

    def insert_then_die(*args: Any, **kwargs: Any) -> list[int]:
        real_insert(*args, **kwargs)
        raise KeyboardInterrupt("worker-a killed mid-step")

    monkeypatch.setattr(backfill_service, "insert_new", insert_then_die)
    with pytest.raises(KeyboardInterrupt):
        workers.step("worker-a")
    monkeypatch.undo()
    assert progress(shop, backfill_id).total == 2, "the killed step left nothing behind"

    assert workers.step("worker-b") == 0, "worker-a's lease still holds the job"
    # worker-b queues the next window, claims it and dies before calling Discord.
    clock.advance(get_state(shop.app).settings.lease_seconds + 1)
    assert workers.step("worker-b") == 2
    assert len(workers.runner("worker-b").claim(50)) == 2
    clock.advance(get_state(shop.app).settings.lease_seconds + 1)
    info = workers.finish(backfill_id, "worker-c")

    assert puts_per_member(shop, "Supporter") == dict.fromkeys(members, 1), "exactly one PUT per member"
    assert all("Supporter" in shop.roles_of(member) for member in members)
    assert (info.status, info.total, info.completed) == (BackfillStatus.COMPLETED, 5, 5)


def test_cancelling_stops_the_backfill_and_cancels_what_it_had_not_sent(shop: Shop, workers: Workers) -> None:
    shop.map("vip", "VIP")
    for n in range(4):
        shop.buy(f"order-{n}", "vip", buyer=shop.member(f"member-{n}"), customer=f"c-{n}")
    shop.fake.clear_calls()
    backfill_id = start(shop, "vip", "Supporter")
    workers.step()  # two queued, not yet run

    state = get_state(shop.app)
    info = backfill_service.cancel_backfill(state, shop.store_id, backfill_id)
    shop.db.session.commit()
    assert (info.status, info.expired, info.pending) == (BackfillStatus.CANCELLED, 2, 0)
    assert backfill_service.cancel_backfill(state, shop.store_id, backfill_id) == info, "cancelling twice"
    workers.step()
    workers.drain()

    assert shop.fake.calls_to("PUT", ROLE_PUT) == [], "nothing of a cancelled backfill reaches Discord"
    assert progress(shop, backfill_id).total == 2, "and its scan went no further"
    cancelled = [row for row in shop.deliveries() if row.reason_code == ReasonCode.BACKFILL_CANCELLED]
    assert [(row.status, row.role_name) for row in cancelled] == [(Status.EXPIRED, "Supporter")] * 2


def test_a_second_running_backfill_of_a_mapping_is_refused(shop: Shop) -> None:
    shop.map("vip", "VIP")
    backfill_id = start(shop, "vip", "Supporter")
    info = progress(shop, backfill_id)
    with pytest.raises(backfill_service.BackfillRunning) as refused:
        begin(shop, info.mapping_id)
    assert refused.value.running_id == backfill_id
    shop.db.session.rollback()
    state = get_state(shop.app)
    again = backfill_service.backfill_mapping(state, shop.store_id, info.mapping_id)
    assert again.id == backfill_id, "the mapping's view gets the running backfill back"

    # The mapping is edited to grant another role: the old backfill stops and a new one starts.
    mapping = shop.db.session.get(state.models.RoleMapping, info.mapping_id)
    mapping.role_id = shop.role("Legend")
    edited = backfill_service.backfill_mapping(state, shop.store_id, info.mapping_id)
    shop.db.session.commit()
    assert (edited.id != backfill_id, edited.role_id) == (True, shop.roles["Legend"])
    assert progress(shop, backfill_id).status == BackfillStatus.CANCELLED


# -- the rows are the order's own ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "linked"),
    [
        ({}, True),
        ({"delivery_mode": DeliveryMode.CLAIM}, True),
        ({"claims_expire": False, "claim_expiry_hours": 5}, False),
    ],
    ids=["automatic", "claim", "unknown-buyer-never-expires"],
)
def test_a_backfilled_row_is_the_row_the_order_would_have_queued(
    shop: Shop, workers: Workers, clock: Clock, settings: dict[str, Any], linked: bool
) -> None:
    shop.settings(**settings)
    shop.map("vip", "VIP")
    buyer = shop.member("alice") if linked else None
    state = get_state(shop.app)
    enqueue_order(state, OrderEvent("store-1", "order-1", "c-1", ("vip",), buyer), now=clock())
    shop.db.session.commit()
    backfill_id = start(shop, "vip", "Supporter", now=clock())
    # The same customer's next order, queued by the checkout's statements with the mapping in place.
    enqueue_order(state, OrderEvent("store-1", "order-2", "c-1", ("vip",), buyer), now=clock())
    shop.db.session.commit()
    workers.step()

    rows = {row.order_id: row for row in shop.deliveries(role_name="Supporter")}
    assert rows["order-1"].idempotency_key == order_delivery_key(
        "order-1", "vip", shop.guild_id, shop.roles["Supporter"]
    )
    assert same_row(rows["order-1"]) == same_row(rows["order-2"])
    assert progress(shop, backfill_id).total == 2, "order-2 holds the package too, and is skipped"


def same_row(row: Any) -> dict[str, Any]:
    """What a backfilled row shares with its order's own row: all but the order and the ids."""
    return {
        "status": row.status,
        "source": row.source,
        "action": row.action,
        "customer_id": row.customer_id,
        "discord_user_id": row.discord_user_id,
        "role_name": row.role_name,
        "package_id": row.package_id,
        "due": row.next_attempt_at is not None,
        "claim_window": None if row.expires_at is None else row.expires_at - row.created_at,
    }


def test_a_backfill_whose_mapping_is_deleted_stops_at_its_next_step(shop: Shop, workers: Workers) -> None:
    shop.map("vip", "VIP")
    for n in range(3):
        shop.buy(f"order-{n}", "vip", buyer=shop.member(f"member-{n}"), customer=f"c-{n}")
    shop.fake.clear_calls()
    backfill_id = start(shop, "vip", "Supporter")
    workers.step()
    delete_mapping(get_state(shop.app), shop.store_id, progress(shop, backfill_id).mapping_id)
    shop.db.session.commit()

    workers.step()
    workers.drain()

    info = progress(shop, backfill_id)
    assert (info.status, info.expired, info.total) == (BackfillStatus.CANCELLED, 2, 2), info
    assert shop.fake.calls_to("PUT", ROLE_PUT) == [], "a role no longer sold is not handed out"


def test_the_workers_pass_steps_backfills_and_runs_what_they_queued(shop: Shop) -> None:
    shop.map("vip", "VIP")
    members = [shop.member(f"member-{n}") for n in range(3)]
    for n, member in enumerate(members):
        shop.buy(f"order-{n}", "vip", buyer=member, customer=f"c-{n}")
    backfill_id = start(shop, "vip", "Supporter")
    worker = Worker(shop.app, threads=1)
    try:
        for _ in range(3):
            worker.run_pass()
    finally:
        worker.drainer.close()

    assert all("Supporter" in shop.roles_of(member) for member in members)
    assert progress(shop, backfill_id).status == BackfillStatus.COMPLETED
