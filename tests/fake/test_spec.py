"""FakeDiscord against Discord's OpenAPI spec: matching calls to operations, catching breaks where they are,
refusing them under ``strict_spec`` as Discord does, the errata, and re-vendoring the spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from flask_discord_roles.testing.spec import (
    INSTALL_HINT,
    DiscordSpec,
    Side,
    SpecUnavailable,
    load_spec,
    spec_source,
)
from flask_discord_roles.testing.spec_errata import ERRATA, exemption_for
from tests.fake.helpers import Store

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT / "flask_discord_roles" / "testing" / "discord_spec"
REFRESH = ROOT / "scripts" / "refresh_discord_spec.py"
JSON = "application/json"


@pytest.fixture(scope="module")
def spec() -> DiscordSpec:
    return load_spec()


def where(breaks: list[Any]) -> list[str]:
    return [b.where for b in breaks]


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/api/v10/users/@me", "get_my_user"),
        ("GET", "/api/v10/users/80351110224678912", "get_user"),
        ("PUT", "/api/v10/guilds/1/members/2/roles/3", "add_guild_member_role"),
        ("DELETE", "/api/guilds/1/members/2/roles/3", "delete_guild_member_role"),
        ("PATCH", "/api/v10/webhooks/1/a-token/messages/@original", "update_original_webhook_message"),
        ("PATCH", "/api/v10/webhooks/1/a-token/messages/5", "update_webhook_message"),
        ("POST", "/api/v10/oauth2/token", "oauth2_token"),
    ],
)
def test_a_call_is_matched_to_its_operation(
    spec: DiscordSpec, method: str, path: str, operation: str
) -> None:
    found = spec.operation(method, path)
    assert found is not None, f"{method} {path} matched no operation"
    assert found.operation_id == operation


def test_a_literal_segment_wins_over_a_parameter_and_unknown_calls_match_nothing(spec: DiscordSpec) -> None:
    me = spec.operation("GET", "/users/@me")
    assert me is not None
    assert me.template == "/users/@me"
    assert spec.operation("GET", "/api/v10/nowhere") is None
    assert spec.operation("POST", "/api/v10/users/@me") is None, "a method the path does not have"


def test_a_response_missing_a_required_field_is_caught_at_its_path(spec: DiscordSpec) -> None:
    member = {
        "user": {"id": "80351110224678912", "discriminator": "0", "public_flags": 0, "flags": 0},
        "roles": [],
        "joined_at": "2026-12-07T10:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
    }
    breaks = spec.check_response("GET", "/api/v10/guilds/1/members/2", 200, JSON, json.dumps(member).encode())
    assert "body $.user.username" in where(breaks), [str(b) for b in breaks]
    username = next(b for b in breaks if b.location == ("user", "username"))
    assert username.side is Side.RESPONSE
    assert username.operation == "get_guild_member"
    assert (username.reason, username.code) == ("This field is required", "BASE_TYPE_REQUIRED")
    assert str(username).startswith("GET /api/v10/guilds/1/members/2 (200): response body $.user.username")


def test_a_response_is_held_to_the_schema_of_its_status(spec: DiscordSpec) -> None:
    role_url = "/api/v10/guilds/1/members/2/roles/3"
    assert spec.check_response("PUT", role_url, 204, None, b"") == []
    [has_body] = spec.check_response("PUT", role_url, 204, JSON, b"{}")
    assert has_body.reason == "the spec says this answer has no body"
    # 4XX answers fall back to the spec's ClientErrorResponse: Discord's error shape.
    assert (
        spec.check_response("PUT", role_url, 404, JSON, b'{"message": "Unknown Role", "code": 10011}') == []
    )
    [no_code] = spec.check_response("PUT", role_url, 403, JSON, b'{"message": "Missing Permissions"}')
    assert no_code.where == "body $.code"
    [status] = spec.check_response("PUT", role_url, 302, None, b"")
    assert status.part == "status"


def test_the_readmes_conventions_unions_and_integer_strings(spec: DiscordSpec) -> None:
    # CreateMessageInteractionCallbackRequest's data may match several message shapes at once.
    answer = {"type": 4, "data": {"content": "Your role is on its way.", "flags": 64}}
    assert spec.check_interaction_response("http://shop.test/interactions", answer) == []
    # Integer fields accept strings that parse as integers ("flags": "64"), and nothing else.
    as_string = {"type": 4, "data": {"content": "hi", "flags": "64"}}
    assert spec.check_interaction_response("http://shop.test/interactions", as_string) == []
    # An enumeration (an integer type with a const branch per value) takes its values as strings too.
    assert spec.check_interaction_response("http://shop.test/interactions", {"type": "1"}) == []
    [word] = spec.check_interaction_response(
        "http://shop.test/interactions", {"type": 4, "data": {"content": "hi", "flags": "ephemeral"}}
    )
    assert (word.side, word.where) == (Side.INTERACTION_RESPONSE, "body $.data.flags")


def test_requests_are_checked_in_body_query_and_path(spec: DiscordSpec) -> None:
    body = json.dumps({"content": 5, "embeds": [{"title": "x" * 257}]}).encode()
    breaks = spec.check_request("POST", "/api/v10/channels/abc/messages", {"limit": ["1"]}, JSON, body)
    assert sorted(where(breaks)) == [
        "body $.content",
        "body $.embeds[0].title",
        "path channel_id",
        "query limit",
    ]
    commands = "/api/v10/applications/1/commands"
    assert spec.check_request("GET", commands, {"with_localizations": ["true"]}, None, b"") == []
    [flag] = spec.check_request("GET", commands, {"with_localizations": ["maybe"]}, None, b"")
    assert flag.where == "query with_localizations"


@pytest.mark.breaks_discord_spec
def test_strict_spec_refuses_a_request_the_spec_forbids_with_discords_50035(store: Store) -> None:
    store.fake.strict_spec = True
    channel = store.fake.create_channel(store.guild.id)
    answer = store.api.post(
        store.url(f"/channels/{channel.id}/messages"), json={"content": 5, "embeds": [{"title": "x" * 257}]}
    )

    assert answer.status_code == 400
    body = answer.json()
    assert (body["code"], body["message"]) == (50035, "Invalid Form Body")
    content_error = body["errors"]["content"]["_errors"][0]
    assert content_error["code"] == "STRING_TYPE_CONVERT"
    title_error = body["errors"]["embeds"]["0"]["title"]["_errors"][0]
    assert title_error["code"] == "BASE_TYPE_MAX_LENGTH"
    assert title_error["message"] == "Must be 256 or fewer in length."
    assert store.fake.messages(channel.id) == [], "a refused request changes nothing"
    assert sorted(b.where for b in store.fake.spec_breaks) == ["body $.content", "body $.embeds[0].title"]


@pytest.mark.breaks_discord_spec
def test_without_strict_spec_the_break_is_recorded_and_the_fake_answers_as_before(store: Store) -> None:
    store.fake.check_spec, store.fake.strict_spec = True, False
    answer = store.api.put(store.role_url(), json={"reason": "not a body this route takes"})

    assert answer.status_code == 204
    [ignored] = store.fake.spec_breaks
    assert (ignored.side, ignored.reason) == (Side.REQUEST, "this operation takes no body")
    assert store.fake.spec_counts()["request broken"] == 1


def test_a_body_discord_would_ignore_is_not_refused_even_under_strict_spec(spec: DiscordSpec) -> None:
    [ignored] = spec.check_request("PUT", "/api/v10/guilds/1/members/2/roles/3", {}, JSON, b"{}")
    assert not ignored.discord_refuses


@pytest.mark.parametrize("erratum", ERRATA, ids=lambda e: e.name)
def test_every_erratum_says_what_where_why_and_links_the_docs(erratum: Any) -> None:
    assert erratum.what
    assert erratum.why
    assert erratum.where.startswith("#/")
    assert erratum.docs.startswith("https://discord.com/developers/docs/")


def test_the_docs_list_every_erratum_with_its_link() -> None:
    page = (ROOT / "docs" / "fake-discord-spec.md").read_text()
    missing = [e.name for e in ERRATA if f"`{e.name}`" not in page or e.docs not in page]
    assert not missing, f"docs/fake-discord-spec.md does not list {missing} with their docs links"


def test_errata_field_error_codes_are_strings_and_a_429_has_no_code(spec: DiscordSpec) -> None:
    role_url = "/api/v10/guilds/1/members/2/roles/3"
    invalid_form = {
        "message": "Invalid Form Body",
        "code": 50035,
        "errors": {"nick": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Too long."}]}},
    }
    assert spec.check_response("PUT", role_url, 400, JSON, json.dumps(invalid_form).encode()) == []
    limited = {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}
    assert spec.check_response("PUT", role_url, 429, JSON, json.dumps(limited).encode()) == []

    # Upstream still says otherwise; when it stops, the erratum can go.
    raw = json.loads((VENDORED / "openapi.json").read_bytes())
    registry = jsonschema_rs.Registry([("urn:spec", raw)], draft=jsonschema_rs.Draft202012)

    def upstream_accepts(schema: str, instance: Any) -> bool:
        validator = jsonschema_rs.Draft202012Validator(
            {"$ref": f"urn:spec#/components/schemas/{schema}"}, registry=registry
        )
        return bool(validator.is_valid(instance))

    assert not upstream_accepts("ErrorResponse", invalid_form)
    assert not upstream_accepts("RatelimitedResponse", limited)


def test_oauth2_token_is_checked_per_the_docs_but_never_answered_50035(spec: DiscordSpec) -> None:
    form = "application/x-www-form-urlencoded"
    good = b"grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2Flocalhost%2Fcb"
    assert spec.check_request("POST", "/api/v10/oauth2/token", {}, form, good) == []
    [missing] = spec.check_request("POST", "/api/v10/oauth2/token", {}, form, b"grant_type=refresh_token")
    assert missing.where == "body $.refresh_token"
    assert not missing.discord_refuses
    [as_json] = spec.check_request("POST", "/api/v10/oauth2/token", {}, JSON, b'{"grant_type": "x"}')
    assert as_json.part == "content-type"
    token = {
        "access_token": "a",
        "token_type": "Bearer",
        "expires_in": 604800,
        "refresh_token": "r",
        "scope": "identify",
    }
    assert spec.check_response("POST", "/api/v10/oauth2/token", 200, JSON, json.dumps(token).encode()) == []
    assert exemption_for("GET", "/api/v10/oauth2/authorize") is not None, "the consent page is not the API"
    assert exemption_for("GET", "/avatars/1/a.png") is not None, "the CDN is not the API"


def test_without_jsonschema_rs_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema_rs", None)
    with pytest.raises(SpecUnavailable, match=r"pip install flask-discord-roles\[testing\]"):
        load_spec.__wrapped__()
    assert "flask-discord-roles[testing]" in INSTALL_HINT


def test_the_vendored_spec_names_its_source() -> None:
    source = spec_source()
    assert source["repository"] == "https://github.com/discord/discord-api-spec"
    assert len(source["commit"]) == 40
    assert (VENDORED / "LICENSE").read_text().startswith("MIT License")
    assert source["commit"] in (VENDORED / "README.md").read_text()


def _refresh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REFRESH), *args], capture_output=True, text=True, check=False)


def _git(*args: str, cwd: Path) -> str:
    stamp = "2026-12-01T12:00:00+00:00"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env)
    return done.stdout.strip()


def test_refresh_from_a_clone_writes_the_spec_byte_for_byte_and_pins_the_commit(tmp_path: Path) -> None:
    # A clone of discord-api-spec in miniature: the vendored files, committed at some date.
    clone = tmp_path / "discord-api-spec"
    (clone / "specs").mkdir(parents=True)
    (clone / "specs" / "openapi.json").write_bytes((VENDORED / "openapi.json").read_bytes())
    (clone / "LICENSE").write_bytes((VENDORED / "LICENSE").read_bytes())
    _git("init", "-q", cwd=clone)
    _git("add", ".", cwd=clone)
    identity = ["-c", "user.name=Discord", "-c", "user.email=spec@example.com"]
    _git(*identity, "commit", "-q", "-m", "Automated spec update", cwd=clone)
    commit = _git("rev-parse", "HEAD", cwd=clone)
    target = tmp_path / "vendored"

    done = _refresh("--from", str(clone), "--to", str(target))

    assert done.returncode == 0, done.stderr
    assert (target / "openapi.json").read_bytes() == (VENDORED / "openapi.json").read_bytes()
    assert (target / "LICENSE").read_bytes() == (VENDORED / "LICENSE").read_bytes()
    source = json.loads((target / "SOURCE.json").read_text())
    assert source["commit"] == commit, "HEAD is pinned by its full hash"
    assert source["date"].startswith("2026-12-01")
    assert commit in (target / "README.md").read_text()


def test_refresh_from_a_file_pins_the_given_commit(tmp_path: Path) -> None:
    download = tmp_path / "download" / "openapi.json"
    download.parent.mkdir()
    download.write_bytes((VENDORED / "openapi.json").read_bytes())
    target = tmp_path / "vendored"
    commit = "0123456789abcdef0123456789abcdef01234567"

    done = _refresh(commit, "--from", str(download), "--date", "2026-12-01T00:00:00Z", "--to", str(target))

    assert done.returncode == 0, done.stderr
    assert (target / "openapi.json").read_bytes() == download.read_bytes()
    assert json.loads((target / "SOURCE.json").read_text())["commit"] == commit
    assert commit in (target / "README.md").read_text()


def test_refresh_refuses_a_file_without_its_commit_or_that_is_not_a_spec(tmp_path: Path) -> None:
    download = tmp_path / "openapi.json"
    download.write_text('{"not": "a spec"}')
    target = tmp_path / "vendored"

    no_commit = _refresh("--from", str(download), "--to", str(target))
    assert no_commit.returncode == 1
    assert "full 40-character commit" in no_commit.stderr
    not_spec = _refresh("0" * 40, "--from", str(download), "--to", str(target))
    assert not_spec.returncode == 1
    assert "not an OpenAPI 3.1 document" in not_spec.stderr
    assert not target.exists(), "nothing is written when the refresh fails"


HOST_CONFTEST = """
import pytest

from flask_discord_roles.testing.spec import Side


@pytest.fixture(scope="session")
def fake_discord_server(fake_discord_server):
    fake_discord_server.check_spec = True
    fake_discord_server.strict_spec = True
    return fake_discord_server


@pytest.fixture
def discord_spec_failing_sides():
    return {Side.REQUEST}  # this host holds only its own requests to the spec
"""

HOST_TESTS = """
import pytest
import requests


def post_message(fake, body):
    bot = fake.create_bot()
    guild = fake.create_guild()
    fake.add_bot_to_guild(bot, guild.id)
    channel = fake.create_channel(guild.id)
    url = f"{fake.api_base_url}/channels/{channel.id}/messages"
    return requests.post(url, json=body, headers={"Authorization": f"Bot {bot.token}"}, timeout=10)


def test_sends_a_number_as_content(fake_discord):
    assert post_message(fake_discord, {"content": 5}).status_code == 400


@pytest.mark.breaks_discord_spec
def test_handles_discords_refusal_on_purpose(fake_discord):
    assert post_message(fake_discord, {"content": "x" * 2001}).json()["code"] == 50035


def test_conforms(fake_discord):
    assert post_message(fake_discord, {"content": "Thanks!"}).status_code == 200
"""


def test_a_hosts_test_whose_request_breaks_the_spec_fails_at_teardown_with_each_break(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(HOST_CONFTEST)
    (tmp_path / "test_host.py").write_text(HOST_TESTS)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_ROLES_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    report = result.stdout + result.stderr
    assert "3 passed, 1 error" in report, report
    assert "ERROR at teardown of test_sends_a_number_as_content" in report, report
    assert "1 break(s) of Discord's OpenAPI spec" in report, report
    assert "POST /api/v10/channels/" in report, report
    assert "request body $.content" in report, report
    assert "response" not in report.split("ERRORS")[1], "only the sides the host chose fail its tests"
