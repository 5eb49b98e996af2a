"""Reconciling one guild of 10,000 members through FakeDiscord with Discord-shaped rate limits.

The world: one store, one linked guild of ``--members`` members (plus the bot and the owner), one role
mapped. ``--grantees`` of the members bought it (completed ``add`` deliveries that gave them the role);
``--removed`` of those had it taken off by hand since (``role_missing``) and ``--refunded`` were refunded
while the removal never ran (``role_not_ended``). The store's ``reconcile_mode`` is ``repair``.

The limits, in FakeDiscord (a child process, so its request handling does not share a GIL with ours),
are Discord's shape: the bot's global limit of 50 requests per second, and 10 requests per 10 s per
guild for List Guild Members (``guild_members``), GET member (``guild_member``) and role changes
(``member_role``). The client learns them from the headers, as it would from Discord.

The run reads the member list a page (1,000) at a time, then the repairs it queued go through the
normal queue (each a GET member, then a PUT or DELETE role). The figure to watch is, for each bucket,
requests made / the most the limit admits over the span they took (``limit * (floor(span / window) + 1)``
under fixed windows): it must stay <= 1.0, with no 429 from FakeDiscord at all.

    python benchmarks/reconcile_guild.py [--members 10000] [--grantees 2000] [--removed 8] [--refunded 4]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import tempfile
import time
from collections import defaultdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
GLOBAL_LIMIT, GLOBAL_PERIOD = 50, 1.0
ROUTE_LIMIT, ROUTE_PERIOD = 10, 10.0
FAMILIES = ("guild_members", "guild_member", "member_role")
STORE_ID = "bench-store"
BUCKETS = {
    "guild_members": r"/guilds/\d+/members$",
    "guild_member": r"/guilds/\d+/members/\d+$",
    "member_role": r"/guilds/\d+/members/\d+/roles/\d+$",
}


def serve_fake_discord(conn: Connection, members: int, grantees: int, removed: int) -> None:
    """Child process: build the guild, hand over what the host needs, report what Discord saw."""
    from flask_discord_roles.testing import FakeDiscord

    with FakeDiscord() as fake:
        for family in FAMILIES:
            fake.set_route_limit(family, ROUTE_LIMIT, ROUTE_PERIOD)
        fake.set_global_limit(GLOBAL_LIMIT, GLOBAL_PERIOD)
        bot = fake.create_bot("Bench Bot")
        guild = fake.create_guild("Big Guild")
        fake.add_bot_to_guild(bot, guild.id)
        role = fake.create_role(guild.id, "VIP")
        users = []
        for index in range(members):
            user = fake.create_user(f"member-{index}")
            # Grantees hold the role we gave them, but for the first ``removed`` (taken off by hand).
            holds = removed <= index < grantees
            fake.add_member(guild.id, user.id, roles=[role.id] if holds else [])
            users.append(user.id)
        fake.clear_calls()
        conn.send(
            {
                "base_url": fake.api_base_url,
                "token": bot.token,
                "application_id": bot.application_id,
                "public_key": bot.public_key,
                "guild_id": guild.id,
                "role_id": role.id,
                "users": users,
            }
        )
        conn.recv()  # the host is done
        calls = [(call.method, call.path, call.time, call.status) for call in fake.calls]
        holders = sum(role.id in fake.member_roles(guild.id, user) for user in users)
        conn.send({"calls": calls, "hits": [hit.scope for hit in fake.rate_limit_hits], "holders": holders})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--grantees", type=int, default=2_000)
    parser.add_argument("--removed", type=int, default=8)
    parser.add_argument("--refunded", type=int, default=4)
    args = parser.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    from benchmarks._bench_host import build_app
    from flask_discord_roles._core import reconcile as service
    from flask_discord_roles._core.bots import save_bot
    from flask_discord_roles._core.order_rows import order_delivery_key
    from flask_discord_roles._engine.runner import DeliveryRunner
    from flask_discord_roles._runtime.crypto import generate_key
    from flask_discord_roles._runtime.models import utcnow
    from flask_discord_roles._runtime.state import get_state
    from flask_discord_roles.codes import Action, ReconcileMode, Source, Status

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(
        target=serve_fake_discord, args=(theirs, args.members, args.grantees, args.removed)
    )
    child.start()
    try:
        world: dict[str, Any] = ours.recv()
        with tempfile.TemporaryDirectory() as folder:
            settings = {
                "DISCORD_ROLES_GLOBAL_RATE_LIMIT": GLOBAL_LIMIT,
                "DISCORD_ROLES_RATE_LIMIT_WAIT": 30.0,
            }
            app, db = build_app(f"sqlite:///{folder}/bench.db", world["base_url"], generate_key(), settings)
            with app.app_context():
                db.create_all()
                state = get_state(app)
                save_bot(
                    state,
                    STORE_ID,
                    application_id=world["application_id"],
                    public_key=world["public_key"],
                    bot_token=world["token"],
                )
                models = state.models
                guild_id, role_id = world["guild_id"], world["role_id"]
                db.session.add(models.LinkedGuild(store_id=STORE_ID, guild_id=guild_id))
                db.session.add(
                    models.RoleMapping(
                        store_id=STORE_ID,
                        package_id="vip",
                        guild_id=guild_id,
                        role_id=role_id,
                        role_name="VIP",
                    )
                )
                db.session.add(models.StoreSettings(store_id=STORE_ID, reconcile_mode=ReconcileMode.REPAIR))
                now = utcnow()
                refunded = range(args.grantees - args.refunded, args.grantees)
                rows = [
                    {
                        "store_id": STORE_ID,
                        "idempotency_key": order_delivery_key(f"order-{index}", "vip", guild_id, role_id),
                        "action": Action.ADD,
                        "status": Status.COMPLETED,
                        "source": Source.AUTO,
                        "guild_id": guild_id,
                        "role_id": role_id,
                        "role_name": "VIP",
                        "discord_user_id": world["users"][index],
                        "customer_id": f"customer-{index}",
                        "order_id": f"order-{index}",
                        "package_id": "vip",
                        "role_was_present": False,
                        "attempts": 1,
                        "completed_at": now,
                        "revoked_at": now if index in refunded else None,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for index in range(args.grantees)
                ]
                db.session.execute(sa.insert(models.Delivery.__table__), rows)  # type: ignore[attr-defined]
                db.session.commit()

                started = time.monotonic()
                runs = service.start_runs(state, STORE_ID)
                run_ids = [run.id for run in runs]
                db.session.commit()
                service.run_to_completion(state, db.engine, "bench-reconciler", run_ids)
                read_seconds = time.monotonic() - started
                info = service.get_run(state, STORE_ID, run_ids[0])
                runner = DeliveryRunner(state, db.engine, runner_id="bench-runner")
                while runner.queue_depth():
                    for delivery_id in runner.claim(50):
                        runner.run(delivery_id)
                    time.sleep(0.05)
                wall = time.monotonic() - started
        ours.send("done")
        seen: dict[str, Any] = ours.recv()
    finally:
        child.join(timeout=60)
        ours.close()

    import re

    print(f"guild members:          {args.members} (+ bot and owner), {args.grantees} with the role from us")
    print(
        f"run:                    {info.status}, {info.members_seen} members read, drift {info.drift}, "
        f"{info.repairs} repairs queued"
    )
    print(f"members read in:        {read_seconds:.2f} s;  with repairs run: {wall:.2f} s wall")
    print(f"role holders after:     {seen['holders']} (expected {args.grantees - args.refunded})")
    worst = 0.0
    for family, pattern in BUCKETS.items():
        times = sorted(
            t for method, path, t, status in seen["calls"] if re.search(pattern, path) and status < 400
        )
        if not times:
            continue
        span = times[-1] - times[0]
        allowed = ROUTE_LIMIT * (math.floor(span / ROUTE_PERIOD) + 1)
        ratio = len(times) / allowed
        worst = max(worst, ratio)
        rate = len(times) / span if span > 0 else float("inf")
        print(
            f"{family:<23} {len(times):>4} requests over {span:6.2f} s ({rate:.2f}/s): "
            f"ratio to the limit {ratio:.3f}  (ceiling {ROUTE_LIMIT}/{ROUTE_PERIOD:g} s)"
        )
    per_second: dict[int, int] = defaultdict(int)
    for _method, _path, t, _status in seen["calls"]:
        per_second[int(t)] += 1
    busiest = max(per_second.values(), default=0)
    print(f"global:                 busiest second {busiest} requests, ratio {busiest / GLOBAL_LIMIT:.3f}")
    print(f"worst ratio:            {max(worst, busiest / GLOBAL_LIMIT):.3f}  (must stay <= 1.0)")
    print(f"429s from FakeDiscord:  {len(seen['hits'])}")


if __name__ == "__main__":
    main()
