"""How close the REST client drains role adds to the ceiling Discord's limits allow.

FakeDiscord is set up with Discord's real shape: a member-role bucket of 10 requests per 10 s for each
guild, under the global limit of 50 requests per second per bot. With enough guilds the global limit is
the ceiling. Under fixed windows the fastest possible drain of N calls takes (ceil(N / 50) - 1) full
seconds plus one round trip; the ratio printed is that ideal time over ours (target >= 0.95), alongside
calls per second and the number of 429s Discord would have sent.

    python benchmarks/client_drain.py [--guilds 60] [--calls 600] [--threads 64]
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ThreadPoolExecutor

from flask_discord_roles.discord import DiscordClient
from flask_discord_roles.testing import FakeDiscord

GLOBAL_LIMIT, GLOBAL_PERIOD = 50, 1.0
ROUTE_LIMIT, ROUTE_PERIOD = 10, 10.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--guilds", type=int, default=60)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()

    with FakeDiscord() as fake:
        fake.set_route_limit("member_role", ROUTE_LIMIT, ROUTE_PERIOD)
        fake.set_global_limit(GLOBAL_LIMIT, GLOBAL_PERIOD)
        bot = fake.create_bot("Bench Bot")
        jobs = []
        per_guild = math.ceil(args.calls / args.guilds)
        for number in range(args.guilds):
            guild = fake.create_guild(f"Guild {number}")
            fake.add_bot_to_guild(bot, guild.id)
            role = fake.create_role(guild.id, "VIP")
            for index in range(per_guild):
                user = fake.create_user(f"u{number}-{index}")
                fake.add_member(guild.id, user.id)
                jobs.append((guild.id, user.id, role.id))
        jobs = jobs[: args.calls]
        fake.clear_calls()

        with DiscordClient(
            bot.token, base_url=fake.api_base_url, global_limit=GLOBAL_LIMIT, global_period=GLOBAL_PERIOD
        ) as client:
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.threads) as pool:
                list(pool.map(lambda job: client.add_member_role(*job), jobs))
            elapsed = time.monotonic() - started

        # The ceiling: the global limit, or the guilds' buckets together if they allow less.
        route_rate = args.guilds * ROUTE_LIMIT / ROUTE_PERIOD
        global_rate = GLOBAL_LIMIT / GLOBAL_PERIOD
        if global_rate <= route_rate:
            ceiling, limit, period = global_rate, GLOBAL_LIMIT, GLOBAL_PERIOD
        else:
            ceiling, limit, period = route_rate, args.guilds * ROUTE_LIMIT, ROUTE_PERIOD
        seen = len(fake.calls)
        ideal = (math.ceil(len(jobs) / limit) - 1) * period
        hits = fake.rate_limit_hits
        print(f"role adds drained:        {len(jobs)} across {args.guilds} guilds, {args.threads} threads")
        print(f"time taken:               {elapsed:.2f} s (fastest the limits allow: {ideal:.2f} s + RTT)")
        rate = len(jobs) / elapsed
        print(f"throughput:               {rate:.1f} calls/s (configured ceiling {ceiling:.0f}/s)")
        print(f"ratio ideal/actual time:  {ideal / elapsed:.3f}   (target >= 0.95)")
        print(f"429s from FakeDiscord:    {len(hits)} ({sum(h.scope == 'global' for h in hits)} global)")
        print(f"requests FakeDiscord saw: {seen}")


if __name__ == "__main__":
    main()
