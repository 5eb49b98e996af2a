"""The enqueue rule as one table of cases, run against every implementation on its own database.

A paid order becomes one ``add`` delivery per role mapped to its packages, due at once when we know the
buyer's Discord account and the store delivers automatically, and a purchase message when the store
posts them. A revoked order ends what was not delivered and queues the removal of the roles we gave.

The paid-order rule is written once per database: the PL/pgSQL function ``discord_roles_enqueue_order``
on PostgreSQL, two ``INSERT … SELECT`` statements on SQLite. The ``database_url`` fixture runs every case
on both, so both implementations answer to the same table. (Revocation is Python over either database.)

Every case also has a second store in the database, with the same package mapped, notifications and
Linked Roles on and the same customer id linked to another account: none of it may leak into the first
store's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects import mysql

from flask_discord_roles import OrderEvent
from flask_discord_roles._core.enqueue import order_statements
from flask_discord_roles._core.enqueue.postgresql import FunctionCall
from flask_discord_roles._core.enqueue.sqlite import TwoInserts
from flask_discord_roles._core.queue import enqueue_order, order_delivery_key, order_removal_key, revoke_order
from flask_discord_roles._runtime.dialects import supported_insert
from flask_discord_roles._runtime.state import DiscordRolesState, get_state
from flask_discord_roles.codes import Action, ReasonCode, Source, Status
from flask_discord_roles.errors import ConfigurationError

NOW = datetime(2026, 11, 23, 23, 30, 15, 123456, tzinfo=UTC)
"""The checkout's moment: late in the day, so a claim window crosses midnight."""

STORE, OTHER_STORE, CUSTOMER = "store-1", "store-2", "customer-1"
LINKED_SERVER, SECOND_SERVER, UNLINKED_SERVER = (
    "400000000000000001",
    "400000000000000002",
    "400000000000000003",
)
BASIC, VIP, EXTRA, SUPPORTER, SUPPORTER_2, LEGEND, OTHER_STORES_ROLE = (
    "410000000000000001",
    "410000000000000002",
    "410000000000000003",
    "410000000000000004",
    "410000000000000005",
    "410000000000000006",
    "410000000000000007",
)
BUYER, LINKED, SOMEONE_ELSE = "500000000000000001", "500000000000000002", "500000000000000003"
CHANNEL = "600000000000000001"

MAPPINGS = (
    ("basic", LINKED_SERVER, BASIC),  # one role
    ("vip", LINKED_SERVER, VIP),  # two roles in one server
    ("vip", LINKED_SERVER, EXTRA),
    ("supporter", LINKED_SERVER, SUPPORTER),  # one role in each of two servers
    ("supporter", SECOND_SERVER, SUPPORTER_2),
    ("legend", UNLINKED_SERVER, LEGEND),  # a server the store has not linked
)
"""The store's role mappings, in the order they were made; ``unmapped`` is mapped to nothing."""

NOTIFYING = {"notifications_enabled": True, "notification_channel_id": CHANNEL}
"""Settings of a store that posts a message for each purchase."""

IMPLEMENTATIONS = {"postgresql": FunctionCall, "sqlite": TwoInserts}


# -- the table's vocabulary ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queues:
    """What one step put on the queue: delivery rows created, of those due now, purchase messages, and
    whether the customer's Linked Roles connection is to be queued."""

    rows: int
    due: int
    messages: int = 0
    connection: bool = False


@dataclass(frozen=True)
class Paid:
    """The host signals a paid order."""

    order: str
    packages: tuple[str, ...]
    queues: Queues
    buyer: str | None = BUYER
    customer: str | None = CUSTOMER
    names: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Delivered:
    """The runner delivered the order's grants (``had_role``: the member held each role already)."""

    order: str
    had_role: bool = False


@dataclass(frozen=True)
class Revoked:
    """The host signals the order revoked (refund, chargeback), for some of its packages or all."""

    order: str
    queues: Queues
    packages: tuple[str, ...] = ()


def paid(order: str, *packages: str, queues: tuple[int, ...], **given: Any) -> Paid:
    return Paid(order, packages, Queues(*queues), **given)


def revoked(order: str, *packages: str, queues: tuple[int, ...]) -> Revoked:
    return Revoked(order, Queues(*queues), packages)


@dataclass(frozen=True)
class Row:
    """One delivery row as the table expects it."""

    order: str
    package: str
    server: str
    role: str
    action: str = Action.ADD
    user: str | None = BUYER
    customer: str | None = CUSTOMER
    status: str = Status.PENDING
    due: bool = True
    """``next_attempt_at`` is the checkout's moment (else NULL: waiting for the customer, or done)."""
    expires_in: int | None = 72
    """Hours from checkout to the end of the claim window; None: it never closes."""
    reason: str | None = None
    revoked: bool = False


def grants(order: str, *packages: str, **given: Any) -> tuple[Row, ...]:
    """The rows of every role mapped to ``packages``, in mapping order."""
    return tuple(
        Row(order, package, server, role, **given)
        for wanted in packages
        for package, server, role in MAPPINGS
        if package == wanted
    )


def done(rows: tuple[Row, ...], **given: Any) -> tuple[Row, ...]:
    """``rows`` as the runner left them: completed (then changed as ``given`` says)."""
    return tuple(replace(row, status=Status.COMPLETED, due=False, **given) for row in rows)


def removals(rows: tuple[Row, ...]) -> tuple[Row, ...]:
    """The rows that take back what ``rows`` gave, due now, never expiring."""
    return tuple(replace(row, action=Action.REMOVE, due=True, expires_in=None) for row in rows)


@dataclass(frozen=True)
class Message:
    """One purchase message as the table expects it."""

    order: str
    packages: tuple[str, ...]
    names: tuple[str, ...]
    user: str | None = BUYER
    customer: str | None = CUSTOMER


@dataclass(frozen=True)
class Case:
    rule: str
    steps: tuple[Paid | Delivered | Revoked, ...]
    rows: tuple[Row, ...] = ()
    messages: tuple[Message, ...] = ()
    settings: dict[str, Any] | None = None
    """The store's saved settings; None: it never saved any, so the defaults apply."""
    linked: str | None = None
    """The Discord account ``customer-1`` linked earlier, if any."""


LINKED_ROLES = {"linked_roles_enabled": True}
"""Settings of a store that keeps its customers' Linked Roles connections."""

# -- the table -----------------------------------------------------------------------------------------------

CASES = [
    # Which roles: the mappings of the order's packages, whatever the server.
    Case(
        "one package, one role: due at once for a buyer we know",
        (paid("order-1", "basic", queues=(1, 1)),),
        grants("order-1", "basic"),
    ),
    Case(
        "one package mapped to two roles queues both",
        (paid("order-1", "vip", queues=(2, 2)),),
        grants("order-1", "vip"),
    ),
    Case(
        "one package mapped in two servers queues a row in each",
        (paid("order-1", "supporter", queues=(2, 2)),),
        grants("order-1", "supporter"),
    ),
    Case(
        "a package mapped to nothing queues nothing",
        (paid("order-1", "unmapped", queues=(0, 0)),),
    ),
    Case(
        "a basket queues each role of each mapped package once, in mapping order",
        (paid("order-1", "supporter", "unmapped", "vip", queues=(4, 4)),),
        grants("order-1", "vip", "supporter"),
    ),
    Case(
        "a role in a server the store has not linked is queued too: the runner's role gate refuses it",
        (paid("order-1", "legend", queues=(1, 1)),),
        grants("order-1", "legend"),
    ),
    # Who gets them, and when.
    Case(
        "without a Discord id or a linked account the rows wait for the customer",
        (paid("order-1", "vip", buyer=None, queues=(2, 0)),),
        grants("order-1", "vip", user=None, due=False),
    ),
    Case(
        "the account the customer linked earlier supplies the Discord id",
        (paid("order-1", "vip", buyer=None, queues=(2, 2)),),
        grants("order-1", "vip", user=LINKED),
        linked=LINKED,
    ),
    Case(
        "a Discord id given at checkout wins over the linked account",
        (paid("order-1", "vip", queues=(2, 2)),),
        grants("order-1", "vip", user=BUYER),
        linked=LINKED,
    ),
    Case(
        "a guest order (no customer id) waits, whoever linked an account",
        (paid("order-1", "vip", buyer=None, customer=None, queues=(2, 0)),),
        grants("order-1", "vip", user=None, customer=None, due=False),
        linked=LINKED,
    ),
    Case(
        "claim mode waits for /claim even when the buyer is known",
        (paid("order-1", "vip", queues=(2, 0)),),
        grants("order-1", "vip", due=False),
        settings={"delivery_mode": "claim"},
    ),
    Case(
        "claim mode waits for /claim with a linked account too",
        (paid("order-1", "vip", buyer=None, queues=(2, 0)),),
        grants("order-1", "vip", user=LINKED, due=False),
        settings={"delivery_mode": "claim"},
        linked=LINKED,
    ),
    Case(
        "the claim window is the store's own",
        (paid("order-1", "vip", queues=(2, 2)),),
        grants("order-1", "vip", expires_in=5),
        settings={"claim_expiry_hours": 5},
    ),
    Case(
        "a store may let claims wait forever",
        (paid("order-1", "vip", buyer=None, queues=(2, 0)),),
        grants("order-1", "vip", user=None, due=False, expires_in=None),
        settings={"claims_expire": False},
    ),
    Case(
        "settings saved with their defaults behave like no settings",
        (paid("order-1", "vip", queues=(2, 2)),),
        grants("order-1", "vip"),
        settings={},
    ),
    # The same order again.
    Case(
        "the same order signalled three times queues each role once",
        (
            paid("order-1", "vip", queues=(2, 2)),
            paid("order-1", "vip", queues=(0, 0)),
            paid("order-1", "vip", queues=(0, 0)),
        ),
        grants("order-1", "vip"),
    ),
    Case(
        "the same order signalled again with one more package queues only that package's roles",
        (paid("order-1", "basic", queues=(1, 1)), paid("order-1", "basic", "vip", queues=(2, 2))),
        grants("order-1", "basic", "vip"),
    ),
    Case(
        "two orders of the same package each queue their own rows",
        (paid("order-1", "basic", queues=(1, 1)), paid("order-2", "basic", queues=(1, 1))),
        grants("order-1", "basic") + grants("order-2", "basic"),
    ),
    # Linked Roles: the order changes a linked customer's values, so their connection is queued.
    Case(
        "with Linked Roles on, an order of a customer who linked Discord queues their connection",
        (paid("order-1", "basic", queues=(1, 1, 0, True)),),
        grants("order-1", "basic"),
        settings=LINKED_ROLES,
        linked=LINKED,
    ),
    Case(
        "the linked account both supplies the Discord id and has its connection queued",
        (paid("order-1", "basic", buyer=None, queues=(1, 1, 0, True)),),
        grants("order-1", "basic", user=LINKED),
        settings=LINKED_ROLES,
        linked=LINKED,
    ),
    Case(
        "with Linked Roles off, a linked customer's order queues no connection",
        (paid("order-1", "basic", queues=(1, 1)),),
        grants("order-1", "basic"),
        settings={"linked_roles_enabled": False},
        linked=LINKED,
    ),
    Case(
        "a customer who never linked Discord has no connection to queue",
        (paid("order-1", "basic", queues=(1, 1)),),
        grants("order-1", "basic"),
        settings=LINKED_ROLES,
    ),
    Case(
        "a guest order has no customer whose connection could be queued",
        (paid("order-1", "basic", customer=None, queues=(1, 1)),),
        grants("order-1", "basic", customer=None),
        settings=LINKED_ROLES,
        linked=LINKED,
    ),
    Case(
        "an order that queues no role changes no value: signalled again, or mapped to nothing",
        (
            paid("order-1", "basic", queues=(1, 1, 0, True)),
            paid("order-1", "basic", queues=(0, 0)),
            paid("order-2", "unmapped", queues=(0, 0)),
        ),
        grants("order-1", "basic"),
        settings=LINKED_ROLES,
        linked=LINKED,
    ),
    # Purchase messages.
    Case(
        "a store that posts purchases gets one message per order, however often it is signalled",
        (
            paid("order-1", "basic", "vip", names=(("vip", "VIP pass"),), queues=(3, 3, 1)),
            paid("order-1", "basic", "vip", queues=(0, 0, 0)),
        ),
        grants("order-1", "basic", "vip"),
        messages=(Message("order-1", ("basic", "vip"), ("basic", "VIP pass")),),
        settings=NOTIFYING,
    ),
    Case(
        "an order with no mapped role is still announced",
        (paid("order-1", "unmapped", queues=(0, 0, 1)),),
        messages=(Message("order-1", ("unmapped",), ("unmapped",)),),
        settings=NOTIFYING,
    ),
    Case(
        "the message names the linked account when no id was given",
        (paid("order-1", "basic", buyer=None, queues=(1, 1, 1)),),
        grants("order-1", "basic", user=LINKED),
        messages=(Message("order-1", ("basic",), ("basic",), user=LINKED),),
        settings=NOTIFYING,
        linked=LINKED,
    ),
    Case(
        "a guest order is announced without a buyer",
        (paid("order-1", "basic", buyer=None, customer=None, queues=(1, 0, 1)),),
        grants("order-1", "basic", user=None, customer=None, due=False),
        messages=(Message("order-1", ("basic",), ("basic",), user=None, customer=None),),
        settings=NOTIFYING,
        linked=LINKED,
    ),
    Case(
        "no message without a channel to post in",
        (paid("order-1", "basic", queues=(1, 1, 0)),),
        grants("order-1", "basic"),
        settings={"notifications_enabled": True, "notification_channel_id": None},
    ),
    Case(
        "no message while notifications are off",
        (paid("order-1", "basic", queues=(1, 1, 0)),),
        grants("order-1", "basic"),
        settings={"notifications_enabled": False, "notification_channel_id": CHANNEL},
    ),
    # Revoked orders.
    Case(
        "revoked before delivery: its grants expire saying why, and nothing is removed",
        (paid("order-1", "vip", queues=(2, 2)), revoked("order-1", queues=(0, 0))),
        grants("order-1", "vip", status=Status.EXPIRED, due=False, reason="order_revoked", revoked=True),
    ),
    Case(
        "revoked after delivery: each role we gave is taken back, due now",
        (paid("order-1", "vip", queues=(2, 2)), Delivered("order-1"), revoked("order-1", queues=(2, 2))),
        done(grants("order-1", "vip"), revoked=True) + removals(grants("order-1", "vip")),
    ),
    Case(
        "revoked twice: each removal is queued once",
        (
            paid("order-1", "basic", queues=(1, 1)),
            Delivered("order-1"),
            revoked("order-1", queues=(1, 1)),
            revoked("order-1", queues=(0, 0)),
        ),
        done(grants("order-1", "basic"), revoked=True) + removals(grants("order-1", "basic")),
    ),
    Case(
        "a role the member held before us is never removed",
        (
            paid("order-1", "basic", queues=(1, 1)),
            Delivered("order-1", had_role=True),
            revoked("order-1", queues=(0, 0)),
        ),
        done(grants("order-1", "basic"), revoked=True),
    ),
    Case(
        "a role another order still grants is kept",
        (
            paid("order-1", "basic", queues=(1, 1)),
            paid("order-2", "basic", queues=(1, 1)),
            Delivered("order-1"),
            Delivered("order-2"),
            revoked("order-1", queues=(0, 0)),
        ),
        done(grants("order-1", "basic"), revoked=True) + done(grants("order-2", "basic")),
    ),
    Case(
        "revoking one package of an order leaves the other package's roles",
        (
            paid("order-1", "basic", "vip", queues=(3, 3)),
            Delivered("order-1"),
            revoked("order-1", "vip", queues=(2, 2)),
        ),
        done(grants("order-1", "basic"))
        + done(grants("order-1", "vip"), revoked=True)
        + removals(grants("order-1", "vip")),
    ),
    Case(
        "buying again after a refund grants the role again",
        (
            paid("order-1", "basic", queues=(1, 1)),
            Delivered("order-1"),
            revoked("order-1", queues=(1, 1)),
            paid("order-2", "basic", queues=(1, 1)),
        ),
        done(grants("order-1", "basic"), revoked=True)
        + removals(grants("order-1", "basic"))
        + grants("order-2", "basic"),
    ),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.rule) for case in CASES])
def test_the_enqueue_rule(app: Flask, db: SQLAlchemy, case: Case) -> None:
    state = get_state(app)
    dialect = db.session.connection().dialect
    implementation = order_statements(state.models, dialect)
    assert isinstance(implementation, IMPLEMENTATIONS[dialect.name]), (
        f"{dialect.name} should queue orders with {IMPLEMENTATIONS[dialect.name].__name__}"
    )
    _set_up(state, db, case)

    for number, step in enumerate(case.steps, 1):
        queued = _run(state, db, step)
        if not isinstance(step, Delivered):
            assert queued == step.queues, f"step {number} ({step}) queued {queued}, not {step.queues}"

    assert _rows(state, db) == list(case.rows), f"{dialect.name}: the delivery rows break «{case.rule}»"
    assert _messages(state, db) == list(case.messages), f"{dialect.name}: the messages break «{case.rule}»"


def test_a_database_other_than_postgresql_or_sqlite_is_refused_by_name(make_app: Any) -> None:
    app, _, _ = make_app("sqlite://")
    models = get_state(app).models
    with pytest.raises(ConfigurationError, match=r"PostgreSQL or SQLite.*'mysql'"):
        order_statements(models, mysql.dialect())
    with pytest.raises(ConfigurationError, match="'mysql'"):
        supported_insert(mysql.dialect().name)


# -- running a case ------------------------------------------------------------------------------------------


def _set_up(state: DiscordRolesState, db: SQLAlchemy, case: Case) -> None:
    """The store as the case describes it, next to another store that must not leak into it."""
    models = state.models
    session = db.session
    for server in (LINKED_SERVER, SECOND_SERVER):
        session.add(models.LinkedGuild(store_id=STORE, guild_id=server))
    for package, server, role in MAPPINGS:
        session.add(
            models.RoleMapping(
                store_id=STORE, package_id=package, guild_id=server, role_id=role, role_name=_name(role)
            )
        )
        session.flush()  # one at a time: the ids give the mapping order
    if case.settings is not None:
        session.add(models.StoreSettings(store_id=STORE, **case.settings))
    if case.linked is not None:
        session.add(models.DiscordAccount(store_id=STORE, customer_id=CUSTOMER, discord_user_id=case.linked))
    session.add(models.LinkedGuild(store_id=OTHER_STORE, guild_id=LINKED_SERVER))
    session.add(
        models.RoleMapping(
            store_id=OTHER_STORE, package_id="vip", guild_id=LINKED_SERVER, role_id=OTHER_STORES_ROLE
        )
    )
    session.add(models.StoreSettings(store_id=OTHER_STORE, **NOTIFYING, **LINKED_ROLES))
    session.add(
        models.DiscordAccount(store_id=OTHER_STORE, customer_id=CUSTOMER, discord_user_id=SOMEONE_ELSE)
    )
    session.flush()


def _run(state: DiscordRolesState, db: SQLAlchemy, step: Paid | Delivered | Revoked) -> Queues | None:
    if isinstance(step, Delivered):
        delivery = state.models.Delivery
        db.session.execute(
            sa.update(delivery)
            .where(delivery.order_id == step.order, delivery.action == Action.ADD)
            .values(
                status=Status.COMPLETED,
                role_was_present=step.had_role,
                next_attempt_at=None,
                completed_at=NOW,
            )
        )
        return None
    if isinstance(step, Paid):
        event = OrderEvent.build(
            store_id=STORE,
            order_id=step.order,
            customer_id=step.customer,
            package_ids=step.packages,
            discord_user_id=step.buyer,
            package_names=dict(step.names),
        )
        queued = enqueue_order(state, event, now=NOW)
    else:
        event = OrderEvent.build(
            store_id=STORE, order_id=step.order, customer_id=CUSTOMER, package_ids=step.packages
        )
        queued = revoke_order(state, event, now=NOW)
    assert set(queued.due) <= set(queued.created), "only rows created now can be due because of this step"
    return Queues(len(queued.created), len(queued.due), len(queued.notifications), queued.role_connection)


def _rows(state: DiscordRolesState, db: SQLAlchemy) -> list[Row]:
    """The store's delivery rows in the table's terms, after checking what every row must hold."""
    delivery = state.models.Delivery
    db.session.expire_all()
    rows = list(db.session.scalars(sa.select(delivery).order_by(delivery.id)))
    assert all(row.store_id == STORE for row in rows), "another store's mapping was used"
    for row in rows:
        key = (
            order_delivery_key(row.order_id, row.package_id, row.guild_id, row.role_id)
            if row.action == Action.ADD
            else order_removal_key(row.order_id, row.guild_id, row.role_id)
        )
        assert row.idempotency_key == key, f"the key must be queue's {key!r}, not {row.idempotency_key!r}"
        assert (row.source, row.attempts, row.created_at) == (Source.AUTO, 0, NOW)
        assert row.role_name == _name(row.role_id), "the role's name is copied from its mapping"
        assert row.next_attempt_at in (None, NOW), "due means due at the checkout's moment"
        assert row.reason_code in (None, ReasonCode.ORDER_REVOKED)
    return [
        Row(
            order=row.order_id,
            package=row.package_id,
            server=row.guild_id,
            role=row.role_id,
            action=row.action,
            user=row.discord_user_id,
            customer=row.customer_id,
            status=row.status,
            due=row.next_attempt_at is not None,
            expires_in=_hours(row.expires_at),
            reason=row.reason_code,
            revoked=row.revoked_at is not None,
        )
        for row in rows
    ]


def _messages(state: DiscordRolesState, db: SQLAlchemy) -> list[Message]:
    model = state.models.PurchaseNotification
    messages = list(db.session.scalars(sa.select(model).order_by(model.id)))
    assert all(message.store_id == STORE for message in messages), "another store's settings were used"
    for message in messages:
        assert (message.channel_id, message.status, message.attempts) == (CHANNEL, Status.PENDING, 0)
        assert message.next_attempt_at == NOW, "a purchase message is due at once"
    return [
        Message(
            order=message.order_id,
            packages=tuple(message.package_ids),
            names=tuple(message.package_names or ()),
            user=message.discord_user_id,
            customer=message.customer_id,
        )
        for message in messages
    ]


def _hours(expires_at: datetime | None) -> int | None:
    if expires_at is None:
        return None
    window = expires_at - NOW
    assert window % timedelta(hours=1) == timedelta(0), f"the claim window must be whole hours, not {window}"
    return window // timedelta(hours=1)


def _name(role_id: str) -> str:
    return f"Role {role_id[-2:]}"
