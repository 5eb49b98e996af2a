"""How close the REST client drains role adds to the ceiling Discord's limits allow.

FakeDiscord is set up with Discord's real shape and timings: a member-role bucket of 10 requests per
10 s for each guild, under the global limit of 50 requests per second per bot. With 60 guilds the
buckets together would allow 60/s, so the global limit (50/s) is the binding ceiling.

Under fixed windows the first window's burst is free: N calls can be done in ``ceil(N / 50) - 1`` full
seconds. So the achieved rate is measured after that burst, from the first request Discord saw to the
last: ``(N - burst) / span``. Its ratio to the ceiling is the figure to watch (target >= 0.95). The
client keeps each global slot until one period after the reply (safe against any latency), so what it
gives up per second is about one round trip.

FakeDiscord runs in a child process so that its request handling does not share a GIL with the client's
threads, as the real Discord would not.

    python benchmarks/client_drain.py [--guilds 60] [--calls 600] [--threads 64]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

GLOBAL_LIMIT, GLOBAL_PERIOD = 50, 1.0
ROUTE_LIMIT, ROUTE_PERIOD = 10, 10.0
ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+$"


def serve_fake_discord(conn: Connection, guilds: int, calls: int) -> None:
    """Child process: build the world, hand the client what it needs, report what Discord saw."""
    from flask_discord_roles.testing import FakeDiscord

    with FakeDiscord() as fake:
        fake.set_route_limit("member_role", ROUTE_LIMIT, ROUTE_PERIOD)
        fake.set_global_limit(GLOBAL_LIMIT, GLOBAL_PERIOD)
        bot = fake.create_bot("Bench Bot")
        per_guild = math.ceil(calls / guilds)
        by_guild: list[list[tuple[str, str, str]]] = []
        for number in range(guilds):
            guild = fake.create_guild(f"Guild {number}")
            fake.add_bot_to_guild(bot, guild.id)
            role = fake.create_role(guild.id, "VIP")
            by_guild.append([])
            for index in range(per_guild):
                user = fake.create_user(f"u{number}-{index}")
                fake.add_member(guild.id, user.id)
                by_guild[-1].append((guild.id, user.id, role.id))
        # Round-robin over guilds, as a delivery queue ordered by time would roughly be. (Grouped by
        # guild, a pool of blocking threads would all sit on the first guilds' buckets.)
        jobs = [job for group in zip(*by_guild, strict=True) for job in group][:calls]
        fake.clear_calls()
        conn.send({"base_url": fake.api_base_url, "token": bot.token, "jobs": jobs})
        conn.recv()  # the client is done
        role_calls = fake.calls_to("PUT", ROLE_PUT)
        granted = sum(role_id in fake.member_roles(g, u) for g, u, role_id in jobs)
        conn.send(
            {
                "times": sorted(call.time for call in role_calls if call.status == 204),
                "requests": len(fake.calls),
                "granted": granted,
                "hits": [hit.scope for hit in fake.rate_limit_hits],
            }
        )


def main() -> None:
    from flask_discord_roles.discord import DiscordClient

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--guilds", type=int, default=60)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=serve_fake_discord, args=(theirs, args.guilds, args.calls))
    child.start()
    try:
        world: dict[str, Any] = ours.recv()
        jobs = [tuple(job) for job in world["jobs"]]
        with DiscordClient(
            world["token"],
            base_url=world["base_url"],
            global_limit=GLOBAL_LIMIT,
            global_period=GLOBAL_PERIOD,
        ) as client:
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.threads) as pool:
                list(pool.map(lambda job: client.add_member_role(*job), jobs))
            elapsed = time.monotonic() - started
        ours.send("done")
        seen: dict[str, Any] = ours.recv()
    finally:
        child.join(timeout=30)
        ours.close()

    # The ceiling: the global limit, or the guilds' buckets together if they allow less.
    route_rate = args.guilds * ROUTE_LIMIT / ROUTE_PERIOD
    global_rate = GLOBAL_LIMIT / GLOBAL_PERIOD
    ceiling = min(global_rate, route_rate)
    burst = GLOBAL_LIMIT if global_rate <= route_rate else args.guilds * ROUTE_LIMIT
    period = GLOBAL_PERIOD if global_rate <= route_rate else ROUTE_PERIOD
    times: list[float] = seen["times"]
    span = times[-1] - times[0]
    steady = (len(times) - burst) / span if span > 0 and len(times) > burst else float("nan")
    ideal = (math.ceil(len(jobs) / burst) - 1) * period
    hits: list[str] = seen["hits"]
    binding = "global" if global_rate <= route_rate else "route buckets"

    print(f"role adds drained:      {len(jobs)} across {args.guilds} guilds from {args.threads} threads")
    print(f"roles present after:    {seen['granted']} / {len(jobs)}")
    print(
        f"configured ceiling:     {ceiling:.1f} calls/s  (global {global_rate:.0f}/s, buckets together "
        f"{route_rate:.0f}/s: {binding} binds)"
    )
    print(f"achieved (steady):      {steady:.1f} calls/s  after the first {burst}-call window")
    print(f"ratio achieved/ceiling: {steady / ceiling:.3f}  (target >= 0.95)")
    print(f"wall time:              {elapsed:.2f} s  (fastest the limits allow: {ideal:.2f} s + one RTT)")
    print(f"429s from FakeDiscord:  {len(hits)}  ({hits.count('global')} global, {hits.count('user')} route)")
    print(f"requests Discord saw:   {seen['requests']}")


if __name__ == "__main__":
    main()
