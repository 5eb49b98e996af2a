"""Every path that changes roles, in any order: a stateful property test over the seams.

Orders, refunds, expiries, links, unlinks, relinks, retries (one and all), ``/claim`` over the signed
webhook, manual assignment and removal, members leaving and joining, moderators taking roles by hand, and
worker passes are run in sequences Hypothesis chooses, against the real database and FakeDiscord over
HTTP. Server A sells two tiers of one group (Bronze < Silver) and a sticky Badge (``keep_on_end``).
After every step, over everything FakeDiscord saw:

- no role change in a server that was unlinked (and not linked again) before the step;
- no role removed that we did not grant, unless the store owner removed it by hand;
- no sticky role removed, unless the store owner removed it by hand;
- every successful PUT of a role is one role the store counts as assigned, and every grant we record
  as ours (the member did not hold the role before us) was given by a successful PUT;
- no deferred interaction answer is edited before Discord received the acknowledgement.

And once the queue has drained (a step of its own): alice holds at most one tier of the group, the
highest her completed, active grants give, unless the owner gave her a tier by hand or server A was
unlinked while a tier change was on its way.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from flask_discord_roles import claim_code, deliveries, guilds
from flask_discord_roles._core.queue import revoke_order
from flask_discord_roles._engine.worker import Worker
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.codes import ReasonCode
from flask_discord_roles.errors import ValidationError
from flask_discord_roles.orders import OrderEvent
from flask_discord_roles.testing import FakeDiscord
from tests.shop import Shop, open_shop

URL = "/webhook/discord/interactions/store-1"
ROLE_CHANGE = re.compile(r"/guilds/(\d+)/members/(\d+)/roles/(\d+)$")
ROLES = {"A": ("VIP", "Gold", "Bronze", "Silver", "Badge"), "B": ("Gold B",)}
PACKAGES = {
    "vip": (("A", "VIP"),),
    "gold": (("A", "Gold"), ("B", "Gold B")),
    "bronze": (("A", "Bronze"),),
    "silver": (("A", "Silver"),),
    "badge": (("A", "Badge"),),
}
TIERS = {"Bronze": 1, "Silver": 2}  # one group, "tiers", in server A
STICKY = {"Badge"}
ROLE_TARGETS = [(key, name) for key, names in ROLES.items() for name in names]
PEOPLE = ("alice", "bob", "carol")
MANUAL = "manual change by the store owner"


# A worker pass first waits out the longest backoff, so whatever is retrying comes due: FAST_QUEUE's
# 0.2 s cap, taken some 25 times a run, was most of the run. Backoff's length is tested elsewhere.
RETRY_CAP = 0.05

# Claim codes are made with the app's secret.
pytestmark = pytest.mark.app_settings(
    SECRET_KEY="test secret", DISCORD_ROLES_RETRY_BASE=0.01, DISCORD_ROLES_RETRY_CAP=RETRY_CAP
)


class RoleChanges(RuleBasedStateMachine):
    """One store with two linked servers, three people, and everything that can happen to them."""

    orders = Bundle("orders")

    def __init__(self, app: Flask, db: SQLAlchemy, fake: FakeDiscord) -> None:
        super().__init__()
        self.app, self.db, self.fake = app, db, fake
        _wipe(db)
        fake.reset()
        for route in ("member_role", "guild_member", "guild", "default", "webhook", "interaction_callback"):
            fake.set_route_limit(route, 10_000, 1.0)  # limits have their own tests; here they only slow
        fake.set_global_limit(None)
        self.shop: Shop = open_shop(app, db, fake)
        self.shop.settings(delivery_mode="automatic")
        guild_b = fake.create_guild("Second Guild").id
        fake.add_bot_to_guild(self.shop.bot, guild_b)
        self.guild = {"A": self.shop.guild_id, "B": guild_b}
        self.key_of = {guild_id: key for key, guild_id in self.guild.items()}
        self.role_ids: dict[tuple[str, str], str] = {}
        for key, names in ROLES.items():
            for name in names:
                self.role_ids[(key, name)] = fake.create_role(self.guild[key], name).id
        self.sticky_ids = {self.role_ids[("A", name)] for name in STICKY}
        self.user = {name: fake.create_user(name).id for name in PEOPLE}
        for key in ("A", "B"):
            fake.add_member(self.guild[key], self.user["alice"])
        # carol holds VIP from before the store: a role we never granted and must never take.
        fake.add_member(self.guild["A"], self.user["carol"], roles=[self.role_ids[("A", "VIP")]])
        self.foreign: set[tuple[str, str, str]] = {
            (self.guild["A"], self.user["carol"], self.role_ids[("A", "VIP")])
        }
        self.linked: set[str] = set()
        for key in ("A", "B"):
            self._link(key)
        # Why alice may rightly hold two tiers at once: a tier given by hand, or server A unlinked.
        self.tiers_unchecked = False
        self.order_count = 0
        self.seen_calls = len(fake.calls)

    def teardown(self) -> None:
        self.db.session.rollback()

    # -- set-up helpers -------------------------------------------------------------------------------

    def _link(self, key: str) -> None:
        self.shop.link(self.guild[key])
        mapping = get_state(self.app).models.RoleMapping
        for package, targets in PACKAGES.items():
            for target_key, name in targets:
                if target_key == key:
                    self.db.session.add(
                        mapping(
                            store_id=self.shop.store_id,
                            package_id=package,
                            guild_id=self.guild[key],
                            role_id=self.role_ids[(key, name)],
                            role_name=name,
                            tier_group="tiers" if name in TIERS else None,
                            tier_rank=TIERS.get(name),
                            keep_on_end=name in STICKY,
                        )
                    )
        self.db.session.commit()
        self.linked.add(self.guild[key])

    def _commit(self) -> None:
        self.db.session.commit()

    # -- what people do -------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self._check_calls()

    @rule(
        target=orders,
        package=st.sampled_from(sorted(PACKAGES)),
        who=st.sampled_from(PEOPLE),
        linked_at_checkout=st.booleans(),
    )
    def buy(self, package: str, who: str, linked_at_checkout: bool) -> tuple[str, str]:
        self.order_count += 1
        order_id = f"order-{self.order_count}"
        buyer = self.user[who] if linked_at_checkout else None
        self.shop.buy(order_id, package, buyer=buyer, customer=f"customer-{who}")
        return order_id, who

    @rule(target=orders, tier=st.sampled_from(sorted(TIERS)))
    def alice_buys_a_tier(self, tier: str) -> tuple[str, str]:
        """Upgrades, downgrades and repurchases of one tier group, often enough to meet each other."""
        return self.buy(tier.lower(), "alice", linked_at_checkout=True)

    @rule(order=consumes(orders))
    def refund(self, order: tuple[str, str]) -> None:
        order_id, who = order
        self.shop.refund(order_id, customer=f"customer-{who}")

    @rule(order=consumes(orders))
    def expire(self, order: tuple[str, str]) -> None:
        """A time-limited order's grant ran out: what the grants' expiry sweep does (the worker runs it)."""
        order_id, who = order
        with self.app.app_context():
            event = OrderEvent(store_id=self.shop.store_id, order_id=order_id, customer_id=f"customer-{who}")
            revoke_order(get_state(self.app), event, reason_code=ReasonCode.GRANT_EXPIRED)
        self._commit()

    @rule(key=st.sampled_from(("A", "B")))
    def unlink(self, key: str) -> None:
        guild_id = self.guild[key]
        if guild_id not in self.linked:
            return
        self.linked.discard(guild_id)  # from here on, nothing may change roles there
        self.tiers_unchecked |= key == "A"
        guilds.unlink_guild(self.shop.store_id, guild_id)
        self._commit()

    @rule(key=st.sampled_from(("A", "B")))
    def relink(self, key: str) -> None:
        if self.guild[key] not in self.linked:
            self._link(key)

    @rule(pick=st.integers(min_value=0, max_value=50))
    def retry_one(self, pick: int) -> None:
        retryable = [row for row in self.shop.deliveries() if row.status in ("failed", "expired")]
        if not retryable:
            return
        try:
            deliveries.retry_delivery(self.shop.store_id, retryable[pick % len(retryable)].id)
        except ValidationError:
            self.db.session.rollback()
            return
        self._commit()

    @rule(status=st.sampled_from(("failed", "expired")))
    def retry_all(self, status: str) -> None:
        deliveries.retry_deliveries(self.shop.store_id, status=status)
        self._commit()

    @rule(who=st.sampled_from(PEOPLE), key=st.sampled_from(("A", "B")), with_code=st.integers(-1, 30))
    def claim(self, who: str, key: str, with_code: int) -> None:
        """``/claim`` over the signed webhook, with the claim code of one of the orders so far (or none)."""
        if not self.fake.is_member(self.guild[key], self.user[who]):
            return  # Discord only sends a server's commands from its members
        options = None
        if with_code >= 0 and self.order_count:
            with self.app.app_context():
                options = {
                    "code": claim_code(self.shop.store_id, f"order-{with_code % self.order_count + 1}")
                }
        payload = self.fake.command_payload(self.shop.bot, self.guild[key], self.user[who], "claim", options)
        answer = self.fake.send_interaction(URL, self.shop.bot, payload, client=self.app.test_client())
        assert answer.status_code == 200, f"/claim answered {answer.status_code}"

    @rule(who=st.sampled_from(PEOPLE), role=st.sampled_from(ROLE_TARGETS), add=st.booleans())
    def by_hand(self, who: str, role: tuple[str, str], add: bool) -> None:
        key, name = role
        self.tiers_unchecked |= add and who == "alice" and name in TIERS
        change = deliveries.assign_role if add else deliveries.remove_role
        try:
            change(
                self.shop.store_id,
                guild_id=self.guild[key],
                role_id=self.role_ids[role],
                discord_user_id=self.user[who],
                customer_id=f"customer-{who}",
                role_name=name,
            )
        except ValidationError:
            assert self.guild[key] not in self.linked, "a change by hand in a linked server was refused"
            self.db.session.rollback()
            return
        self._commit()

    @rule(who=st.sampled_from(("bob", "carol")), key=st.sampled_from(("A", "B")), joins=st.booleans())
    def membership(self, who: str, key: str, joins: bool) -> None:
        guild_id, user_id = self.guild[key], self.user[who]
        if joins and not self.fake.is_member(guild_id, user_id):
            self.fake.add_member(guild_id, user_id)
        elif not joins and self.fake.is_member(guild_id, user_id):
            held = self.fake.member_roles(guild_id, user_id)
            self.foreign -= {(guild_id, user_id, role_id) for role_id in held}
            self.fake.remove_member(guild_id, user_id)

    @rule(who=st.sampled_from(PEOPLE), role=st.sampled_from(ROLE_TARGETS))
    def moderator_takes_role(self, who: str, role: tuple[str, str]) -> None:
        guild_id, user_id = self.guild[role[0]], self.user[who]
        member = self.fake.guild(guild_id).members.get(user_id)
        if member is not None and self.role_ids[role] in member.roles:
            member.roles.remove(self.role_ids[role])
            self.foreign.discard((guild_id, user_id, self.role_ids[role]))

    @rule()
    def worker_pass(self) -> None:
        time.sleep(RETRY_CAP + 0.01)  # whatever is retrying comes due
        worker = Worker(self.app, threads=1, poll_interval=0.05)
        try:
            worker.run_pass()
        finally:
            worker.drainer.close()

    @rule()
    def queue_drained(self) -> None:
        """Run the worker until nothing is due, then look at alice's tiers in server A."""
        for _ in range(20):
            if not [row for row in self.shop.deliveries(status="pending") if row.next_attempt_at is not None]:
                break
            self.worker_pass()
        else:
            raise AssertionError(f"the queue did not drain: {self.shop.statuses()}")
        if self.tiers_unchecked:
            return
        names = {self.role_ids[("A", name)]: name for name in TIERS}
        held = {names[r] for r in self.fake.member_roles(self.guild["A"], self.user["alice"]) if r in names}
        assert len(held) <= 1, f"alice holds {sorted(held)} of one tier group at once"
        given = {
            row.role_name
            for row in self.shop.deliveries(
                action="add", status="completed", discord_user_id=self.user["alice"]
            )
            if row.role_name in TIERS and row.revoked_at is None
        }
        if held and given:
            top = max(given, key=TIERS.__getitem__)
            assert TIERS[held.pop()] >= TIERS[top], f"alice holds a lower tier than her active {top}"

    # -- what must hold after every step --------------------------------------------------------------

    @invariant()
    def role_changes_respect_links_and_provenance(self) -> None:
        self._check_calls()

    def _check_calls(self) -> None:
        calls = self.fake.calls
        new, self.seen_calls = calls[self.seen_calls :], len(calls)
        for call in new:
            match = ROLE_CHANGE.search(call.path)
            if match is None or call.method not in ("PUT", "DELETE") or call.status != 204:
                continue
            target = (match[1], match[2], match[3])
            guild = self.key_of.get(match[1], match[1])
            assert match[1] in self.linked, (
                f"{call.method} of a role in server {guild} after it was unlinked ({call.audit_log_reason})"
            )
            if call.method == "DELETE" and MANUAL not in (call.audit_log_reason or ""):
                assert target not in self.foreign, (
                    f"removed a role we never granted ({call.audit_log_reason}) in server {guild}"
                )
                assert target[2] not in self.sticky_ids, f"removed a sticky role ({call.audit_log_reason})"

    @invariant()
    def every_assignment_is_one_put(self) -> None:
        puts: Counter[tuple[str, str, str]] = Counter()
        for call in self.fake.calls:
            match = ROLE_CHANGE.search(call.path)
            if match is not None and call.method == "PUT" and call.status == 204:
                puts[(match[1], match[2], match[3])] += 1
        assigned = deliveries.store_stats(self.shop.store_id).total_roles_assigned
        assert sum(puts.values()) == assigned, (
            f"{sum(puts.values())} successful PUTs of roles, but the store counts {assigned} assigned"
        )
        for row in self.shop.deliveries(action="add", status="completed", role_was_present=False):
            target = (row.guild_id, row.discord_user_id, row.role_id)
            assert puts[target], f"delivery {row.id} says we granted {row.role_name}, but no PUT gave it"

    @invariant()
    def no_deferred_edit_before_its_acknowledgement(self) -> None:
        early = self.fake.responses_before_acknowledgement()
        assert not early, f"answers edited before Discord had the acknowledgement: {early}"


def _wipe(db: SQLAlchemy) -> None:
    """Every example starts from empty tables (one schema serves them all: creating one costs more)."""
    db.session.rollback()
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()


def test_role_changes_honour_unlinks_provenance_and_acknowledgements(
    app: Flask, db: SQLAlchemy, fake_discord: FakeDiscord
) -> None:
    run_state_machine_as_test(
        lambda: RoleChanges(app, db, fake_discord),
        settings=settings(
            max_examples=12,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
