"""While a test uses ``fake_discord``, a request of ours to the real Discord fails at once, offline.

A host test whose app still points at discord.com (the setting given too late, or not at all) must not
send the fake's tokens over the internet: the request is refused before it leaves, with the setting to
change, and the test fails even when the code under test swallowed the error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from flask_discord_roles.discord import DiscordClient
from flask_discord_roles.discord.oauth import OAuthClient
from flask_discord_roles.discord.sessions import RealDiscordRefused, refuse_real_discord
from flask_discord_roles.testing import FakeDiscord
from flask_discord_roles.testing.pytest_plugin import POINT_AT_THE_FAKE

ADVICE = "DISCORD_ROLES_API_BASE_URL = fake_discord.api_base_url"


class _NoNetwork(requests.Session):
    """A session that fails the test if anything reaches it."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        pytest.fail(f"{method!r} {url!r} reached the network")


@pytest.mark.parametrize(
    "base_url",
    ["https://discord.com/api/v10", "https://canary.discord.com/api", "https://discordapp.com/api/v9"],
)
def test_the_rest_client_is_refused_before_the_network(base_url: str) -> None:
    client = DiscordClient("a-bot-token", base_url=base_url, session=_NoNetwork(), max_retries=3)
    with refuse_real_discord(ADVICE) as refused, pytest.raises(RealDiscordRefused) as excinfo:
        client.get_current_user()
    assert ADVICE in str(excinfo.value), "the error says which setting to point at the fake"
    assert "a-bot-token" not in str(excinfo.value)
    assert len(refused) == 1, "refused once, not retried like a network error"


def test_a_webhook_url_is_refused_without_showing_its_token() -> None:
    client = DiscordClient("t", session=_NoNetwork())
    with refuse_real_discord(ADVICE), pytest.raises(RealDiscordRefused) as excinfo:
        client.create_followup_message("123", "interaction-token-secret", {"content": "hi"})
    assert "interaction-token-secret" not in str(excinfo.value)


def test_the_oauth_client_is_refused_too() -> None:
    client = OAuthClient("https://discord.com/api/v10", "1", "client-secret", session=_NoNetwork())
    with refuse_real_discord(ADVICE), pytest.raises(RealDiscordRefused, match=r"POST discord\.com"):
        client.refresh("refresh-token")


def test_the_fake_and_other_hosts_are_let_through(fake_discord: FakeDiscord) -> None:
    bot = fake_discord.create_bot("Shop Bot")
    with DiscordClient(bot.token, base_url=fake_discord.api_base_url) as client:
        assert client.get_current_user()["id"] == bot.user_id


def test_outside_fake_discord_nothing_is_refused() -> None:
    with pytest.raises(pytest.fail.Exception, match="reached the network"):
        DiscordClient("t", session=_NoNetwork()).get_current_user()


def test_an_app_left_on_discord_com_fails_with_the_setting_to_change(
    make_app: Any, tmp_path: Path, fake_discord_server: FakeDiscord
) -> None:
    """What ``fake_discord`` does around a test, here around a save_bot the test expects to be refused."""
    from flask_discord_roles import bots

    app, db, _ = make_app(f"sqlite:///{tmp_path / 'shop.sqlite'}")  # no DISCORD_ROLES_API_BASE_URL
    fake_discord_server.reset()
    bot = fake_discord_server.create_bot("Shop Bot")
    with app.app_context(), refuse_real_discord(POINT_AT_THE_FAKE) as refused:
        db.create_all()
        with pytest.raises(RealDiscordRefused) as excinfo:
            bots.save_bot(
                "1", application_id=bot.application_id, public_key=bot.public_key, bot_token=bot.token
            )
        db.engine.dispose()
    fake_discord_server.reset()
    assert "DISCORD_ROLES_API_BASE_URL = fake_discord.api_base_url" in str(excinfo.value)
    assert bot.token not in str(excinfo.value)
    assert refused == [str(excinfo.value)]


HOST_TESTS = """
from flask_discord_roles.discord import DiscordClient


def test_calls_discord_com(fake_discord):
    DiscordClient("t").get_current_user()


def test_swallows_the_refusal(fake_discord):
    try:
        DiscordClient("t").get_current_user()
    except Exception:
        pass  # as a delivery thread would log it and carry on
"""


def test_a_host_test_calling_discord_com_fails_even_when_the_code_swallowed_it(tmp_path: Path) -> None:
    (tmp_path / "test_host.py").write_text(HOST_TESTS, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_host.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "COLUMNS": "400"},
        check=False,
    )
    report = result.stdout
    assert "1 failed, 1 passed, 1 error" in report, f"one fails, one errors at teardown:\n{report}"
    assert "RealDiscordRefused: refused GET discord.com" in report, report
    swallowed = "ERROR test_host.py::test_swallows_the_refusal - Failed: 1 request(s) to the real Discord"
    assert swallowed in report, report
    assert report.count(ADVICE) >= 2, "both say which setting points the app at the fake"
