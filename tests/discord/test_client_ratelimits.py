"""The REST client against FakeDiscord over real HTTP: rate limits, faults, and permanent errors.

Windows are shrunk so each test takes seconds; the shape (per-guild route buckets under a per-bot global
limit) is Discord's.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from flask_discord_roles.discord import DiscordClient, Forbidden, NotFound, TokenDisabled, Unauthorized
from flask_discord_roles.testing import FakeBot, FakeDiscord, FakeGuild

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
    fake_discord.set_route_limit("member_role", 10, 0.25)  # 40/s per guild, 120/s for three
    fake_discord.set_global_limit(40, 0.5)  # 80/s: the global limit is the lower one
    client = make_client(bot, global_limit=40, global_period=0.5)
    fake_discord.clear_calls()

    jobs = [(guild.id, user_id, role_id) for guild, role_id, members in world for user_id in members]
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda job: client.add_member_role(*job), jobs))

    for guild, role_id, members in world:
        missing = [m for m in members if role_id not in fake_discord.member_roles(guild.id, m)]
        assert not missing, f"{len(missing)} members of {guild.name} did not get the role"
    first_success = _first_success_times(fake_discord)
    late_hits = [
        hit
        for hit in fake_discord.rate_limit_hits
        if hit.scope == "global" or hit.time > first_success.get(hit.major, float("inf"))
    ]
    assert late_hits == [], f"429s after the buckets were known: {late_hits}"
    assert len(fake_discord.calls_to("PUT", ROLE_ROUTE)) == 300 + len(fake_discord.rate_limit_hits)


def test_a_burst_far_above_the_global_limit_queues_and_every_call_completes(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    world = _guilds_with_members(fake_discord, bot, guild_count=40, members_per_guild=10)
    fake_discord.set_route_limit("member_role", 10, 0.25)  # 1,600/s across 40 guilds
    fake_discord.set_global_limit(30, 0.25)  # 120/s: the global limit binds
    client = make_client(bot, global_limit=30, global_period=0.25, max_retries=2)

    jobs = [(guild.id, user_id, role_id) for guild, role_id, members in world for user_id in members]
    errors: list[BaseException] = []
    started = threading.Barrier(200)

    def run(job: tuple[str, str, str]) -> None:
        try:
            client.add_member_role(*job)
        except Exception as exc:
            errors.append(exc)

    def worker(chunk: list[tuple[str, str, str]]) -> None:
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
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    world = _guilds_with_members(fake_discord, bot, guild_count=4, members_per_guild=25)
    fake_discord.set_route_limit("member_role", 1000, 1.0)
    fake_discord.set_faults(error_rate=0.15, timeout_rate=0.15, timeout_seconds=0.5, seed=7)
    # 15 retries: the chance that one call meets 16 faults in a row at 30% is about 4 in a billion.
    client = make_client(bot, timeout=0.2, max_retries=15, backoff_base=0.01, backoff_cap=0.05)

    jobs = [(guild.id, user_id, role_id) for guild, role_id, members in world for user_id in members]
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda job: client.add_member_role(*job), jobs))
    fake_discord.set_faults()

    for guild, role_id, members in world:
        for member in members:
            assert role_id in fake_discord.member_roles(guild.id, member)
    statuses = fake_discord.stats()["by_status"]
    server_errors = sum(count for status, count in statuses.items() if int(status) >= 500)
    assert server_errors > 0, "the fault injector should have produced 5xx answers"


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


def test_route_429s_are_waited_out_without_spending_retries(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    world = _guilds_with_members(fake_discord, bot, guild_count=1, members_per_guild=20)
    fake_discord.set_route_limit("member_role", 1000, 1.0)
    fake_discord.set_faults(rate_limit_rate=0.3, rate_limit_retry_after=0.05, seed=3)
    client = make_client(bot, max_retries=0)
    guild, role_id, members = world[0]
    for member in members:
        client.add_member_role(guild.id, member, role_id)
    assert all(role_id in fake_discord.member_roles(guild.id, m) for m in members)
    limited = [call for call in fake_discord.calls_to("PUT", ROLE_ROUTE) if call.status == 429]
    assert limited, "the fault injector should have sent 429s"
    calls = fake_discord.calls_to("PUT", ROLE_ROUTE)
    for before, after in itertools.pairwise(calls):
        if before.status == 429:
            assert after.time - before.time >= 0.045, "the next request must wait out retry_after"


def test_audit_log_reason_is_sent_url_encoded(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    guild, role_id, members = _guilds_with_members(fake_discord, bot, 1, 1)[0]
    reason = "Store «Shop» · order #42 paid"
    make_client(bot).add_member_role(guild.id, members[0], role_id, reason=reason)
    call = fake_discord.calls_to("PUT", ROLE_ROUTE)[-1]
    assert call.audit_log_reason == reason
    assert call.headers["X-Audit-Log-Reason"].isascii()


def test_no_token_in_reprs_errors_or_logs(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="flask_discord_roles")
    bot = fake_discord.create_bot("Shop Bot")
    client = make_client(bot)
    assert bot.token not in repr(client)
    guild = fake_discord.create_guild()
    fake_discord.add_bot_to_guild(bot, guild.id)
    with pytest.raises(NotFound) as excinfo:
        client.add_member_role(guild.id, "123456789012345678", "223456789012345678")
    fake_discord.revoke_bot_token(bot)
    with pytest.raises(Unauthorized) as unauthorized:
        client.get_current_user()
    for text in (str(excinfo.value), repr(excinfo.value), str(unauthorized.value), caplog.text):
        assert bot.token not in text


def test_interaction_webhooks_need_no_token_and_skip_the_global_limit(
    fake_discord: FakeDiscord, make_client: Callable[..., DiscordClient]
) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    token = fake_discord.new_interaction_token(bot)
    fake_discord.set_global_limit(1, 10.0)
    client = make_client(bot, global_limit=1, global_period=10.0)
    client.get_current_user()  # uses up the bot's only global slot for 10 s
    client.edit_original_interaction_response(bot.application_id, token, {"content": "Done"})
    edit = fake_discord.calls_to("PATCH", r"/webhooks/")[-1]
    assert "Authorization" not in edit.headers
    assert fake_discord.interaction_responses[token][-1]["data"]["content"] == "Done"
