"""The REST client against FakeDiscord over real HTTP: rate limits, faults, and permanent errors.

Windows are shrunk so each test takes seconds; the shape (per-guild route buckets under a per-bot global
limit) is Discord's.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest

from flask_discord_roles.discord import (
    BadRequest,
    DiscordClient,
    DiscordError,
    DiscordServerError,
    Forbidden,
    NotFound,
    RateLimited,
    TokenDisabled,
    Unauthorized,
)
from flask_discord_roles.testing import FakeBot, FakeDiscord, FakeGuild

pytestmark = pytest.mark.serial  # deadlines and rate-limit windows: not beside other busy workers

ROLE_ROUTE = r"/guilds/\d+/members/\d+/roles/\d+$"


@pytest.fixture
def make_client(fake_discord: FakeDiscord) -> Iterator[Callable[..., DiscordClient]]:
    clients: list[DiscordClient] = []

    def make(bot: FakeBot, **options: Any) -> DiscordClient:
        client = DiscordClient(bot.token, base_url=fake_discord.api_base_url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _guilds_with_members(
    fake: FakeDiscord, bot: FakeBot, guild_count: int, members_per_guild: int
) -> list[tuple[FakeGuild, str, list[str]]]:
    """Guilds the bot manages, each with one assignable role and some members."""
    world = []
    for number in range(guild_count):
        guild = fake.create_guild(f"Guild {number}")
        fake.add_bot_to_guild(bot, guild.id)
        role = fake.create_role(guild.id, "VIP")
        members = []
        for index in range(members_per_guild):
            user = fake.create_user(f"member-{number}-{index}")
            fake.add_member(guild.id, user.id)
            members.append(user.id)
        world.append((guild, role.id, members))
    return world


RoleAdd = tuple[str, str, str]
"""(guild id, user id, role id): one ``add_member_role`` call."""


def _role_adds(
    world: list[tuple[FakeGuild, str, list[str]]], *, shuffled_by: int | None = None
) -> list[RoleAdd]:
    """One role add per member of each guild, guild by guild, or shuffled by a seeded order."""
    jobs = [(guild.id, user_id, role_id) for guild, role_id, members in world for user_id in members]
    if shuffled_by is not None:
        random.Random(shuffled_by).shuffle(jobs)
    return jobs


def _add_all(client: DiscordClient, jobs: list[RoleAdd], *, threads: int) -> None:
    """Every role add, from ``threads`` threads at once; the first call to raise fails the test."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda job: client.add_member_role(*job), jobs))


def _first_success_times(fake: FakeDiscord) -> dict[str, float]:
    """When each guild's role bucket first answered successfully."""
    first: dict[str, float] = {}
    for call in fake.calls_to("PUT", ROLE_ROUTE):
        guild_id = call.path.split("/")[4]
        if call.status == 204 and guild_id not in first:
            first[guild_id] = call.time
    return first


def test_drains_300_role_adds_across_3_guilds_with_no_429_after_each_buckets_first_response(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    world = _guilds_with_members(fake_discord, bot, guild_count=3, members_per_guild=100)
    fake_discord.set_route_limit("member_role", 10, 0.2)  # 50/s per guild, 150/s for three
    fake_discord.set_global_limit(30, 0.25)  # 120/s: lower than the buckets together
    client = make_client(bot, global_limit=30, global_period=0.25)
    fake_discord.clear_calls()

    # Shuffled, not round-robin: some moments pile onto one guild (its bucket binds), others spread
    # out (the global limit binds).
    _add_all(client, _role_adds(world, shuffled_by=5), threads=32)

    for guild, role_id, members in world:
        missing = [m for m in members if role_id not in fake_discord.member_roles(guild.id, m)]
        assert not missing, f"{len(missing)} members of {guild.name} did not get the role"
    first_success = _first_success_times(fake_discord)
    assert len(first_success) == 3, f"each guild's bucket should have answered: {first_success}"
    late_hits = [
        hit
        for hit in fake_discord.rate_limit_hits
        if hit.scope == "global" or hit.time > first_success.get(hit.major, float("inf"))
    ]
    assert late_hits == [], f"429s after the buckets were known: {late_hits}"
    # Unknown buckets are probed one request at a time, so there is no 429 before either.
    assert fake_discord.rate_limit_hits == [], f"429s: {fake_discord.rate_limit_hits}"
    sent = len(fake_discord.calls_to("PUT", ROLE_ROUTE))
    assert sent == 300, f"exactly one request per role add was expected, Discord saw {sent}"


def test_at_a_100ms_round_trip_no_second_of_discords_clock_sees_more_than_the_global_limit(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    world = _guilds_with_members(fake_discord, bot, guild_count=3, members_per_guild=10)
    fake_discord.set_route_limit("member_role", 5, 1.0)  # 15/s for three guilds
    fake_discord.set_global_limit(8, 1.0)  # the global limit binds, per second of the fake's clock
    fake_discord.set_latency(0.1, jitter=0.04, seed=3)
    client = make_client(bot, global_limit=8, global_period=1.0)
    fake_discord.clear_calls()

    _add_all(client, _role_adds(world, shuffled_by=7), threads=16)

    granted = sum(role_id in fake_discord.member_roles(g.id, m) for g, role_id, ms in world for m in ms)
    assert granted == 30, f"{30 - granted} members did not get the role"
    assert fake_discord.rate_limit_hits == [], f"429s: {fake_discord.rate_limit_hits}"
    per_second = Counter(math.floor(call.discord_time) for call in fake_discord.calls)
    crowded = {second: n for second, n in per_second.items() if n > 8}
    assert not crowded, f"seconds of Discord's clock that saw more than 8 requests: {crowded}"


def test_a_burst_far_above_the_global_limit_queues_and_every_call_completes(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    world = _guilds_with_members(fake_discord, bot, guild_count=40, members_per_guild=10)
    fake_discord.set_route_limit("member_role", 10, 0.25)  # 1,600/s across 40 guilds
    fake_discord.set_global_limit(30, 0.25)  # 120/s: the global limit binds
    client = make_client(bot, global_limit=30, global_period=0.25, max_retries=2)

    jobs = _role_adds(world)
    errors: list[BaseException] = []
    started = threading.Barrier(200)

    def run(job: RoleAdd) -> None:
        try:
            client.add_member_role(*job)
        except Exception as exc:
            errors.append(exc)

    def worker(chunk: list[RoleAdd]) -> None:
        started.wait()  # all 200 threads fire together: hundreds in flight at once
        for job in chunk:
            run(job)

    threads = [threading.Thread(target=worker, args=(jobs[i::200],)) for i in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == [], f"{len(errors)} calls failed instead of queueing, e.g. {errors[:3]}"
    granted = sum(role_id in fake_discord.member_roles(g.id, m) for g, role_id, ms in world for m in ms)
    assert granted == 400
    global_hits = [hit for hit in fake_discord.rate_limit_hits if hit.scope == "global"]
    assert global_hits == [], "the client must queue behind the global limit, not provoke it"


def test_survives_30_percent_server_errors_and_timeouts(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="flask_discord_roles.discord")
    bot = fake_discord.create_bot("Shop Bot")
    world = _guilds_with_members(fake_discord, bot, guild_count=4, members_per_guild=25)
    fake_discord.set_route_limit("member_role", 1000, 1.0)
    fake_discord.set_faults(error_rate=0.15, timeout_rate=0.15, timeout_seconds=1.0, seed=7)
    # 12 retries = 13 attempts: one call meets 13 faults in a row at 30% with probability 0.3**13,
    # about 1.6e-7, so 100 calls all succeed except about twice in ten million runs. The default of 5
    # suits production, where a delivery that still fails is retried later by the queue.
    client = make_client(bot, timeout=0.3, max_retries=12, backoff_base=0.01, backoff_cap=0.05)

    _add_all(client, _role_adds(world), threads=20)
    fake_discord.set_faults()

    for guild, role_id, members in world:
        missing = [m for m in members if role_id not in fake_discord.member_roles(guild.id, m)]
        assert not missing, f"{len(missing)} members of {guild.name} lack the role despite retries"
    statuses = fake_discord.stats()["by_status"]
    server_errors = sum(count for status, count in statuses.items() if int(status) >= 500)
    assert server_errors > 0, f"the fault injector should have produced 5xx answers: {statuses}"
    timeouts = [r for r in caplog.records if "did not answer in time" in r.getMessage()]
    assert timeouts, "the fault injector should have made the client time out"


def test_role_above_the_bot_is_permanent_50013_and_not_retried(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    guild = fake_discord.create_guild()
    fake_discord.add_bot_to_guild(bot, guild.id)
    above = fake_discord.create_role(guild.id, "Moderator", position=None)
    fake_discord.move_role(guild.id, above.id, len(fake_discord.guild(guild.id).roles))
    user = fake_discord.create_user("buyer")
    fake_discord.add_member(guild.id, user.id)
    client = make_client(bot)
    fake_discord.clear_calls()

    with pytest.raises(Forbidden) as excinfo:
        client.add_member_role(guild.id, user.id, above.id)
    assert excinfo.value.code == 50013
    assert excinfo.value.status == 403
    role_calls = [(call.status, call.rate_limit_scope) for call in fake_discord.calls_to("PUT", ROLE_ROUTE)]
    assert role_calls == [(403, None)], "a permanent error must be sent once and not retried"


def test_user_not_in_the_guild_is_permanent_10007(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    guild = fake_discord.create_guild()
    fake_discord.add_bot_to_guild(bot, guild.id)
    role = fake_discord.create_role(guild.id, "VIP")
    stranger = fake_discord.create_user("stranger")
    with pytest.raises(NotFound) as excinfo:
        make_client(bot).add_member_role(guild.id, stranger.id, role.id)
    assert excinfo.value.code == 10007


def test_a_401_disables_the_token_for_every_later_call(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    client = make_client(bot)
    client.get_current_user()
    fake_discord.revoke_bot_token(bot)
    fake_discord.clear_calls()

    with pytest.raises(Unauthorized) as first:
        client.get_current_user()
    assert not isinstance(first.value, TokenDisabled)
    with pytest.raises(TokenDisabled):
        client.get_guild_roles("123456789012345678")
    assert client.is_disabled
    assert len(fake_discord.calls) == 1, "no request may leave with a token Discord rejected"


def test_shared_429s_are_waited_out_for_retry_after_without_spending_retries(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="flask_discord_roles.discord")
    bot = fake_discord.create_bot("Shop Bot")
    world = _guilds_with_members(fake_discord, bot, guild_count=1, members_per_guild=20)
    fake_discord.set_route_limit("member_role", 1000, 1.0)
    fake_discord.set_faults(rate_limit_rate=0.3, rate_limit_retry_after=0.05, seed=3)
    client = make_client(bot, max_retries=0)  # a 429 must not use up a retry
    guild, role_id, members = world[0]
    started = time.monotonic()
    for member in members:
        client.add_member_role(guild.id, member, role_id)
    elapsed = time.monotonic() - started
    assert all(role_id in fake_discord.member_roles(guild.id, m) for m in members)
    calls = fake_discord.calls_to("PUT", ROLE_ROUTE)
    limited = [call for call in calls if call.status == 429]
    assert limited, "the fault injector should have sent 429s"
    for before, after in itertools.pairwise(calls):
        if before.status == 429:
            gap = after.time - before.time
            assert gap >= 0.045, f"the next request came {gap:.3f}s after a 429 with retry_after 0.05"
    # A shared 429 says nothing about our own window (1000 left): waiting for its reset would be wrong.
    assert elapsed < 0.05 * len(limited) + 1.5, f"took {elapsed:.2f}s for {len(limited)} short 429s"
    assert any("rate limited" in r.getMessage() for r in caplog.records), "429s are logged as warnings"


def test_a_route_429_from_another_process_is_waited_out_until_the_window_resets(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    guild, role_id, members = _guilds_with_members(fake_discord, bot, 1, 3)[0]
    fake_discord.set_route_limit("member_role", 2, 0.6)
    # Another worker with the same token (its own client, so its own counts) empties the bucket.
    other = make_client(bot, user_agent="DiscordBot (other-worker, 1)")
    other.add_member_role(guild.id, members[0], role_id)
    other.add_member_role(guild.id, members[1], role_id)
    ours = make_client(bot, user_agent="DiscordBot (our-worker, 1)", max_retries=0)
    ours.add_member_role(guild.id, members[2], role_id)

    mine = [c for c in fake_discord.calls_to("PUT", ROLE_ROUTE) if "our-worker" in c.headers["User-Agent"]]
    assert [c.status for c in mine] == [429, 204], "one 429, then success after waiting"
    assert mine[0].rate_limit_scope == "user"
    gap = mine[1].time - mine[0].time
    assert gap >= 0.45, f"retried {gap:.3f}s after a 429 whose retry_after was about 0.55s"
    assert role_id in fake_discord.member_roles(guild.id, members[2])


def test_a_global_429_pauses_the_client_for_retry_after(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    fake_discord.set_global_limit(2, 0.6)
    other = make_client(bot, user_agent="DiscordBot (other-worker, 1)")
    guild = fake_discord.create_guild()
    fake_discord.add_bot_to_guild(bot, guild.id)
    # The fake's global windows are aligned to its clock: start at the beginning of one, so that the
    # three requests below share it.
    now = time.time()
    time.sleep(math.floor(now / 0.6 + 1) * 0.6 - now + 0.01)
    other.get_guild(guild.id)
    other.get_guild_roles(guild.id)
    ours = make_client(bot, user_agent="DiscordBot (our-worker, 1)", max_retries=0)
    assert ours.get_current_user()["id"] == bot.user_id
    mine = [c for c in fake_discord.calls if "our-worker" in c.headers["User-Agent"]]
    assert [(c.status, c.rate_limit_scope) for c in mine] == [(429, "global"), (200, None)]
    gap = mine[1].time - mine[0].time
    assert gap >= 0.45, f"retried {gap:.3f}s after a global 429 whose retry_after was about 0.55s"


def test_audit_log_reason_is_sent_url_encoded_and_cut_to_512_characters(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    guild, role_id, members = _guilds_with_members(fake_discord, bot, 1, 2)[0]
    client = make_client(bot)
    reason = "Store «Shop» · order #42 paid/100%"
    client.add_member_role(guild.id, members[0], role_id, reason=reason)
    call = fake_discord.calls_to("PUT", ROLE_ROUTE)[-1]
    assert call.headers["X-Audit-Log-Reason"] == quote(reason, safe=""), "sent URL-encoded, nothing safe"
    assert call.audit_log_reason == reason, "Discord decodes it back to the reason"

    client.remove_member_role(guild.id, members[0], role_id, reason="é" * 600)
    call = fake_discord.calls_to("DELETE", ROLE_ROUTE)[-1]
    assert call.audit_log_reason == "é" * 512, "Discord's limit is 512 characters of the reason"
    assert role_id not in fake_discord.member_roles(guild.id, members[0])


def test_no_token_in_reprs_errors_or_logs(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="flask_discord_roles")
    bot = fake_discord.create_bot("Shop Bot")
    client = make_client(bot)
    guild = fake_discord.create_guild()
    fake_discord.add_bot_to_guild(bot, guild.id)
    with pytest.raises(NotFound) as not_found:
        client.add_member_role(guild.id, "123456789012345678", "223456789012345678")
    interaction_token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OnNlY3JldA"
    with pytest.raises(DiscordError) as bad_webhook:
        client.create_followup_message(bot.application_id, interaction_token, {"content": "hi"})
    fake_discord.revoke_bot_token(bot)
    with pytest.raises(Unauthorized) as unauthorized:
        client.get_current_user()
    with pytest.raises(TokenDisabled) as disabled:
        client.get_current_user()

    texts = {"repr(client)": repr(client), "log": caplog.text}
    for name, error in [
        ("not found", not_found.value),
        ("webhook", bad_webhook.value),
        ("401", unauthorized.value),
        ("disabled", disabled.value),
    ]:
        texts[f"str({name})"] = str(error)
        texts[f"repr({name})"] = repr(error)
        texts[f"args({name})"] = repr(error.args)
    for name, text in texts.items():
        assert bot.token not in text, f"the bot token leaked into {name}: {text!r}"
        assert interaction_token not in text, f"an interaction token leaked into {name}: {text!r}"
        assert "Bot " + bot.token[:8] not in text
    assert "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}" in caplog.text, "log the template"


def test_interaction_webhooks_need_no_token_and_skip_the_global_limit(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    token = fake_discord.new_interaction_token(bot)
    fake_discord.set_global_limit(1, 10.0)
    client = make_client(bot, global_limit=1, global_period=10.0)
    client.get_current_user()  # uses up the bot's only global slot for 10 s
    started = time.monotonic()
    client.edit_original_interaction_response(bot.application_id, token, {"content": "Done"})
    client.create_followup_message(bot.application_id, token, {"content": "And more"})
    assert time.monotonic() - started < 2, "webhook calls must not wait for the bot's global limit"
    webhook_calls = fake_discord.calls_to("PATCH", r"/webhooks/") + fake_discord.calls_to(
        "POST", r"/webhooks/"
    )
    assert len(webhook_calls) == 2
    for call in webhook_calls:
        assert "Authorization" not in call.headers, f"{call.method} {call.path} sent an Authorization header"
    contents = [response["data"]["content"] for response in fake_discord.interaction_responses[token]]
    assert contents[-2:] == ["Done", "And more"], f"Discord got {contents}"


def test_5xx_is_retried_max_retries_times_with_capped_full_jitter_backoff(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    fake_discord.set_faults(error_rate=1.0, routes=["users_me"], seed=1)
    sleeps: list[float] = []
    client = make_client(bot, max_retries=3, backoff_base=0.5, backoff_cap=1.0, sleep=sleeps.append)
    with pytest.raises(DiscordServerError) as excinfo:
        client.get_current_user()
    assert excinfo.value.status in (500, 502, 503)
    assert len(fake_discord.calls_to("GET", r"/users/@me$")) == 4, "one try and max_retries=3 retries"
    assert len(sleeps) == 3
    for attempt, (slept, cap) in enumerate(zip(sleeps, (0.5, 1.0, 1.0), strict=True), start=1):
        assert 0 <= slept <= cap, f"backoff {attempt} slept {slept:.3f}s, beyond its cap {cap}s"


def test_an_invalid_body_is_a_permanent_400_with_discords_field_errors(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    guild = fake_discord.create_guild()
    fake_discord.add_bot_to_guild(bot, guild.id)
    channel = fake_discord.create_channel(guild.id)
    with pytest.raises(BadRequest) as excinfo:
        make_client(bot).create_message(channel.id, {"content": "x" * 2001})
    assert excinfo.value.code == 50035
    assert excinfo.value.errors is not None
    assert "content" in excinfo.value.errors, f"field errors should point at content: {excinfo.value.errors}"
    assert len(fake_discord.calls_to("POST", r"/messages$")) == 1, "a 400 must not be retried"


def test_every_convenience_call_talks_to_the_right_route(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    guild = fake_discord.create_guild("Shop Server")
    fake_discord.add_bot_to_guild(bot, guild.id)
    vip = fake_discord.create_role(guild.id, "VIP")
    channel = fake_discord.create_channel(guild.id, "orders")
    member, newcomer = fake_discord.create_user("member"), fake_discord.create_user("newcomer")
    fake_discord.add_member(guild.id, member.id)
    client = make_client(bot)

    assert client.get_current_user()["id"] == bot.user_id
    assert client.get_guild(guild.id, with_counts=True)["approximate_member_count"] >= 2
    assert vip.id in {role["id"] for role in client.get_guild_roles(guild.id)}
    assert channel.id in {c["id"] for c in client.get_guild_channels(guild.id)}
    assert client.get_channel(channel.id)["name"] == "orders"
    assert client.get_member(guild.id, member.id)["roles"] == []

    joined = client.add_guild_member(
        guild.id, newcomer.id, fake_discord.create_user_token(bot, newcomer), roles=[vip.id]
    )
    assert joined is not None, "201 with the member for someone new"
    assert vip.id in fake_discord.member_roles(guild.id, newcomer.id)
    again = client.add_guild_member(guild.id, member.id, fake_discord.create_user_token(bot, member))
    assert again is None, "204 for someone already in the server"

    commands = [{"name": "claim", "description": "Claim your purchase", "type": 1}]
    saved = client.bulk_overwrite_commands(bot.application_id, commands, guild_id=guild.id)
    assert [c["name"] for c in saved] == ["claim"]
    assert [c["name"] for c in fake_discord.commands(bot.application_id, guild.id)] == ["claim"]

    client.create_message(channel.id, {"content": "Order shipped", "allowed_mentions": {"parse": []}})
    assert fake_discord.messages(channel.id)[-1]["content"] == "Order shipped"
    dm = client.create_dm(member.id)
    client.create_message(dm["id"], {"content": "Thanks!"})
    assert [m["content"] for m in fake_discord.dm_messages(bot, member)] == ["Thanks!"]


def test_a_call_with_a_short_max_wait_fails_fast_with_a_useful_retry_after(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    guild, role_id, members = _guilds_with_members(fake_discord, bot, 1, 3)[0]
    fake_discord.set_route_limit("member_role", 2, 1.0)
    client = make_client(bot)
    client.add_member_role(guild.id, members[0], role_id)
    client.add_member_role(guild.id, members[1], role_id)  # the guild's bucket is now empty for ~1 s
    started = time.monotonic()
    with pytest.raises(RateLimited) as excinfo:
        client.add_member_role(guild.id, members[2], role_id, max_wait=0.1)
    assert time.monotonic() - started < 0.1, "a wait known to be too long must not be waited at all"
    assert 0.5 < excinfo.value.retry_after <= 1.05, f"retry_after {excinfo.value.retry_after} ≠ the reset"
    assert not excinfo.value.is_global
    assert len(fake_discord.calls_to("PUT", ROLE_ROUTE)) == 2, "nothing may be sent to be refused"
    assert fake_discord.rate_limit_hits == []


def test_a_netrc_entry_for_discord_never_replaces_the_bot_token(
    fake_discord: FakeDiscord,
    make_client: Callable[..., DiscordClient],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests would send ~/.netrc credentials for a matching host instead of our Authorization header.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-a-bot-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    bot = fake_discord.create_bot("Shop Bot")
    assert make_client(bot).get_current_user()["id"] == bot.user_id, "the bot's own token must be sent"


def test_proxies_and_ca_bundle_come_from_the_environment_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/company.pem")
    with (
        DiscordClient("token") as proxied,
        DiscordClient("token", base_url="http://localhost:9/api") as local,
    ):
        assert proxied._session.proxies.get("https") == "http://proxy.internal:3128"
        assert proxied._session.verify == "/etc/ssl/certs/company.pem"
        assert "http" not in local._session.proxies, "NO_PROXY hosts are reached directly"
