"""How close the REST client drains role adds to the ceiling Discord's limits allow, at real distances.

FakeDiscord is set up with Discord's real shape and timings, and put a simulated round trip away
(``FakeDiscord.set_latency``: half the trip before the fake counts a request, half before the answer
leaves, each half jittered): a member-role bucket of 10 requests per 10 s for each guild, under the
global limit of 50 requests per second per bot, counted per second of the fake's clock. Two shapes,
each at every latency, in one run:

- ``global``: 120 guilds. Their buckets together would allow 120/s, so the global limit (50/s) binds
  throughout. (With 60, each guild's own 10 per 10 s would start to bind during a 30 s run.)
- ``buckets``: 4 guilds, 4/s together, far under the global limit: each guild's bucket binds. Four is
  few enough that a run covers three bucket windows per guild in ~20 s, and the global limiter, which
  never nears 50/s here, cannot be what holds the client back.

Steady rate, measured on what Discord saw (the instant the fake counted each request):

- Global windows are fixed seconds of Discord's clock, so the run's first and last seconds are partial
  (the run starts and ends mid-second). The ratio is the share of capacity used in the whole seconds
  between them: requests counted there / (those seconds x 50). A client cannot beat 1.0 by this
  measure, and a second it leaves idle counts against it. The run lasts 30 s so that a client whose
  pace beats against Discord's seconds (one that refills every 1 + R seconds leaves one second in
  1 / R idle) shows its true average rather than the lucky phase of a short run.
- A bucket's window opens at the first request after the previous one ended, so the first window of
  each guild is a free burst: the rate is ``(N - burst) / span`` from the first request Discord saw to
  the last. At a round trip R no client that is safe whatever the latency can beat ``10 / (10 + R)``
  here: a reply tells when the window ends only up to its own trip back, and the next request takes
  its own trip out (see ``flask_discord_roles.discord.ratelimit``).

Target: ratio >= 0.97 with 0 429s in every row. FakeDiscord runs in a child process, one per row, so
that its request handling does not share a GIL with the client's threads, as the real Discord would not.

    python benchmarks/client_drain.py [--latency 0,50,100] [--jitter 20] [--shapes global,buckets]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

GLOBAL_LIMIT, GLOBAL_PERIOD = 50, 1.0
ROUTE_LIMIT, ROUTE_PERIOD = 10, 10.0
ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+$"
TARGET = 0.97


@dataclass(frozen=True)
class Shape:
    name: str
    guilds: int
    calls: int

    @property
    def global_binds(self) -> bool:
        return self.guilds * ROUTE_LIMIT / ROUTE_PERIOD >= GLOBAL_LIMIT / GLOBAL_PERIOD

    @property
    def ceiling(self) -> float:
        return min(GLOBAL_LIMIT / GLOBAL_PERIOD, self.guilds * ROUTE_LIMIT / ROUTE_PERIOD)


SHAPES = {
    "global": Shape("global", guilds=120, calls=1500),
    "buckets": Shape("buckets", guilds=4, calls=4 * ROUTE_LIMIT * 3),
}


def serve_fake_discord(conn: Connection, shape: Shape, round_trip: float, jitter: float) -> None:
    """Child process: build the world, hand the client what it needs, report what Discord saw."""
    from flask_discord_roles.testing import FakeDiscord

    with FakeDiscord() as fake:
        fake.set_route_limit("member_role", ROUTE_LIMIT, ROUTE_PERIOD)
        fake.set_global_limit(GLOBAL_LIMIT, GLOBAL_PERIOD)
        bot = fake.create_bot("Bench Bot")
        per_guild = math.ceil(shape.calls / shape.guilds)
        by_guild: list[list[tuple[str, str, str]]] = []
        for number in range(shape.guilds):
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
        jobs = [job for group in zip(*by_guild, strict=True) for job in group][: shape.calls]
        fake.clear_calls()
        fake.set_latency(round_trip, jitter=min(jitter, round_trip), seed=1)
        conn.send({"base_url": fake.api_base_url, "token": bot.token, "jobs": jobs})
        conn.recv()  # the client is done
        role_calls = [call for call in fake.calls_to("PUT", ROLE_PUT) if call.status == 204]
        granted = sum(role_id in fake.member_roles(g, u) for g, u, role_id in jobs)
        conn.send(
            {
                "times": sorted(call.time for call in role_calls),
                "discord_times": sorted(call.discord_time for call in role_calls),
                "requests": len(fake.calls),
                "granted": granted,
                "hits": [hit.scope for hit in fake.rate_limit_hits],
            }
        )


def steady_ratio(shape: Shape, seen: dict[str, Any]) -> float:
    """What share of the ceiling the client used once past the start (see the module docstring)."""
    if shape.global_binds:
        per_second = Counter(math.floor(t / GLOBAL_PERIOD) for t in seen["discord_times"])
        first, last = min(per_second), max(per_second)
        whole = range(first + 1, last)
        if not whole:
            return float("nan")
        return sum(per_second[second] for second in whole) / (len(whole) * GLOBAL_LIMIT)
    times: list[float] = seen["times"]
    burst = shape.guilds * ROUTE_LIMIT
    span = times[-1] - times[0]
    if span <= 0 or len(times) <= burst:
        return float("nan")
    return (len(times) - burst) / span / shape.ceiling


def run(shape: Shape, round_trip: float, jitter: float, threads: int) -> dict[str, Any]:
    from flask_discord_roles.discord import DiscordClient

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=serve_fake_discord, args=(theirs, shape, round_trip, jitter))
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
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(lambda job: client.add_member_role(*job), jobs))
            elapsed = time.monotonic() - started
        ours.send("done")
        seen: dict[str, Any] = ours.recv()
    finally:
        child.join(timeout=30)
        ours.close()
    seen["elapsed"] = elapsed
    seen["jobs"] = len(jobs)
    seen["ratio"] = steady_ratio(shape, seen)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", default="0,50,100", help="round trips to simulate, ms, comma-separated")
    parser.add_argument("--jitter", type=float, default=20.0, help="ms: each round trip varies by up to this")
    parser.add_argument("--shapes", default="global,buckets", help=f"of {', '.join(SHAPES)}")
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()
    latencies = [float(ms) for ms in args.latency.split(",")]
    shapes = [SHAPES[name] for name in args.shapes.split(",")]

    for shape in shapes:
        bound = "global limit" if shape.global_binds else "route buckets"
        print(
            f"{shape.name}: {shape.calls} role adds across {shape.guilds} guilds from {args.threads} "
            f"threads; ceiling {shape.ceiling:.0f}/s ({bound} bind)"
        )
    print(
        f"\n{'shape':8} {'RTT ms':>7} {'ratio':>6} {'429s':>5} {'global':>6} {'route':>5} "
        f"{'roles':>9} {'wall s':>7}  (target: ratio >= {TARGET}, 0 429s)"
    )
    for shape in shapes:
        for latency in latencies:
            jitter = min(args.jitter, latency) / 1000
            seen = run(shape, latency / 1000, jitter, args.threads)
            hits: list[str] = seen["hits"]
            print(
                f"{shape.name:8} {latency:7.0f} {seen['ratio']:6.3f} {len(hits):5d} "
                f"{hits.count('global'):6d} {hits.count('user'):5d} "
                f"{seen['granted']:>4}/{seen['jobs']:<4} {seen['elapsed']:7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
