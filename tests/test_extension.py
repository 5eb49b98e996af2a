"""The extension object: settings read at init_app (from the config, else the environment), clear
start-up errors, settings that cannot change afterwards, per-app state, and the key command that needs no
key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet
from flask import Flask
from flask.cli import FlaskGroup
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import ConfigurationError, DiscordRoles
from flask_discord_roles._runtime.config import DEFAULTS
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.signals import order_completed


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests say which settings come from the environment: none leaks in from the shell."""
    for key in DEFAULTS:
        monkeypatch.delenv(key, raising=False)


def _app(**config: object) -> Flask:
    app = Flask("host")
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", **config)
    return app


def _initialised(**config: object) -> Flask:
    app = _app(TESTING=True, **config)
    DiscordRoles(app, db=SQLAlchemy(app))
    return app


def test_init_app_registers_state_and_reads_defaults() -> None:
    app = _app(
        DISCORD_ROLES_ENCRYPTION_KEYS=generate_key(), DISCORD_ROLES_PUBLIC_BASE_URL="https://a.example"
    )
    db = SQLAlchemy(app)
    DiscordRoles(app, db=db)
    state = app.extensions["discord_roles"]
    assert state is get_state(app)
    assert state.settings.api_base_url == "https://discord.com/api/v10"
    assert state.settings.global_rate_limit == 50
    assert "0.1.0" in state.settings.user_agent
    assert app.config["DISCORD_ROLES_HTTP_TIMEOUT"] == 10.0, "defaults must be visible in app.config"
    assert state.settings.cdn_url == "https://cdn.discordapp.com", "Discord's API means Discord's CDN"


def test_the_cdn_follows_the_api_unless_set() -> None:
    fake = _app(TESTING=True, DISCORD_ROLES_API_BASE_URL="http://127.0.0.1:8123/api/v10")
    DiscordRoles(fake, db=SQLAlchemy(fake))
    assert get_state(fake).settings.cdn_url == "http://127.0.0.1:8123", "a FakeDiscord serves the images"
    proxied = _app(TESTING=True, DISCORD_ROLES_CDN_URL="https://images.example.com/discord/")
    DiscordRoles(proxied, db=SQLAlchemy(proxied))
    assert get_state(proxied).settings.cdn_url == "https://images.example.com/discord"


def test_factory_pattern_falls_back_to_the_apps_sqlalchemy() -> None:
    db = SQLAlchemy()
    discord_roles = DiscordRoles()
    app = _app(TESTING=True)
    db.init_app(app)
    discord_roles.init_app(app)
    assert get_state(app).db is db
    assert not hasattr(discord_roles, "app"), "the extension must keep no app on itself"


def test_one_extension_serves_two_apps_with_their_own_settings() -> None:
    db = SQLAlchemy()
    discord_roles = DiscordRoles(db=db)
    first = _app(TESTING=True, DISCORD_ROLES_API_BASE_URL="http://127.0.0.1:1/api/v10")
    second = _app(TESTING=True)
    for app in (first, second):
        db.init_app(app)
        discord_roles.init_app(app)
    assert get_state(first).settings.api_base_url == "http://127.0.0.1:1/api/v10"
    assert get_state(second).settings.api_base_url == "https://discord.com/api/v10"
    assert get_state(first).models is get_state(second).models, "one db maps the tables once"


def test_missing_sqlalchemy_fails_at_init_app_with_the_fix() -> None:
    with pytest.raises(ConfigurationError, match=r"db\.init_app\(app\)"):
        DiscordRoles(_app(TESTING=True))


def test_missing_encryption_key_outside_testing_names_the_key_and_the_command() -> None:
    app = _app()
    SQLAlchemy(app)
    with pytest.raises(ConfigurationError) as excinfo:
        DiscordRoles(app)
    message = str(excinfo.value)
    assert "DISCORD_ROLES_ENCRYPTION_KEYS" in message
    assert "flask discord-roles generate-key" in message
    assert "discord_roles" not in app.extensions, "a failed init_app must register nothing"


def test_testing_without_a_key_uses_a_throwaway_one() -> None:
    app = _app(TESTING=True)
    SQLAlchemy(app)
    DiscordRoles(app)
    assert get_state(app).settings.ephemeral_encryption_key


def test_malformed_key_is_refused_without_echoing_it() -> None:
    secret_looking = "not-a-fernet-key-but-still-secret"
    app = _app(DISCORD_ROLES_ENCRYPTION_KEYS=[generate_key(), secret_looking])
    SQLAlchemy(app)
    with pytest.raises(ConfigurationError) as excinfo:
        DiscordRoles(app)
    assert "key #2" in str(excinfo.value)
    assert secret_looking not in str(excinfo.value), "a key must never appear in an error"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("DISCORD_ROLES_API_BASE_URL", "discord.com/api", "http"),
        ("DISCORD_ROLES_HTTP_TIMEOUT", 0, "positive"),
        ("DISCORD_ROLES_HTTP_TIMEOUT", "soon", "positive"),
        ("DISCORD_ROLES_HTTP_MAX_RETRIES", -1, "≥ 0"),
        ("DISCORD_ROLES_GLOBAL_RATE_LIMIT", True, "positive"),
        ("DISCORD_ROLES_USER_AGENT", "", "non-empty"),
        ("DISCORD_ROLES_CDN_URL", "cdn.example.com", "http"),
    ],
)
def test_malformed_settings_fail_at_init_app_naming_the_key(key: str, value: object, expected: str) -> None:
    app = _app(TESTING=True, **{key: value})
    SQLAlchemy(app)
    with pytest.raises(ConfigurationError, match=key) as excinfo:
        DiscordRoles(app)
    assert expected in str(excinfo.value)


def test_get_state_without_init_app_says_what_to_call() -> None:
    with _app().app_context(), pytest.raises(RuntimeError, match="init_app"):
        get_state()


def test_tables_follow_the_naming_rules(app: Flask, db: SQLAlchemy) -> None:
    models = get_state(app).models
    inspector = sa.inspect(db.engine)
    names = set(inspector.get_table_names())
    ours = {table.name for table in models.tables}
    assert ours <= names
    assert all(name.startswith("discord_roles_") for name in ours)
    for table in models.tables:
        for constraint in table.constraints:
            name = str(constraint.name or "")
            assert name.startswith(("pk_discord_roles_", "uq_discord_roles_", "ck_discord_roles_")), (
                f"{table.name}: constraint {constraint!r} has no explicit discord_roles name"
            )


# -- settings from the environment -------------------------------------------------------------------


def test_a_setting_the_config_lacks_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    monkeypatch.setenv("DISCORD_ROLES_ENCRYPTION_KEYS", key)
    monkeypatch.setenv("DISCORD_ROLES_API_BASE_URL", "http://127.0.0.1:8123/api/v10")
    monkeypatch.setenv("DISCORD_ROLES_HTTP_TIMEOUT", "2.5")
    monkeypatch.setenv("DISCORD_ROLES_TENANT_API", "false")
    monkeypatch.setenv("DISCORD_ROLES_EXECUTOR", "inline")  # not JSON: taken as written
    app = _app(DISCORD_ROLES_PUBLIC_BASE_URL="https://shop.example")
    DiscordRoles(app, db=SQLAlchemy(app))
    settings = get_state(app).settings
    assert not settings.ephemeral_encryption_key, "the exported key must be used, not a throwaway one"
    assert get_state(app).cipher.decrypt(Fernet(key.encode()).encrypt(b"t").decode()) == "t"
    assert settings.api_base_url == "http://127.0.0.1:8123/api/v10"
    assert settings.http_timeout == 2.5, "a number in the environment is a number, as from_prefixed_env"
    assert settings.tenant_api is False, "false in the environment is False"
    assert settings.executor == "inline"
    assert app.config["DISCORD_ROLES_HTTP_TIMEOUT"] == 2.5, "what was read is visible in app.config"


def test_the_config_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_ROLES_API_BASE_URL", "http://127.0.0.1:1/api/v10")
    app = _initialised(DISCORD_ROLES_API_BASE_URL="http://127.0.0.1:2/api/v10")
    assert get_state(app).settings.api_base_url == "http://127.0.0.1:2/api/v10"


def test_several_keys_in_the_environment_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = generate_key(), generate_key()
    monkeypatch.setenv("DISCORD_ROLES_ENCRYPTION_KEYS", f"{new},{old}")
    app = _initialised()
    cipher = get_state(app).cipher
    assert cipher.key_count == 2
    assert cipher.decrypt(Fernet(old.encode()).encrypt(b"older").decode()) == "older"


def test_secrets_and_ids_in_the_environment_are_text_even_when_they_look_like_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISCORD_ROLES_CLAIM_CODE_SECRET", "123456")
    monkeypatch.setenv("DISCORD_ROLES_STORE_ID", "1e3")
    app = _initialised()
    assert get_state(app).claim_secret == b"123456"
    assert get_state(app).settings.default_store_id == "1e3", "not 1000.0"


def test_a_wrong_setting_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_ROLES_HTTP_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="DISCORD_ROLES_HTTP_TIMEOUT") as excinfo:
        _initialised()
    assert "environment variable DISCORD_ROLES_HTTP_TIMEOUT" in str(excinfo.value)


def test_a_wrong_key_from_the_environment_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret_looking = "still-a-secret-even-when-malformed"
    monkeypatch.setenv("DISCORD_ROLES_ENCRYPTION_KEYS", f"{generate_key()},{secret_looking}")
    with pytest.raises(ConfigurationError) as excinfo:
        _initialised()
    message = str(excinfo.value)
    assert "key #2" in message
    assert "environment variable DISCORD_ROLES_ENCRYPTION_KEYS" in message
    assert secret_looking not in message, "a key must never appear in an error"


@pytest.mark.parametrize("storage", ["rediss//:hunter2@cache:6379/0", "http://:hunter2@cache:6379/0"])
def test_a_wrong_rate_limit_storage_never_shows_its_password(storage: str) -> None:
    with pytest.raises(ConfigurationError, match="DISCORD_ROLES_API_RATE_LIMIT_STORAGE") as excinfo:
        _initialised(DISCORD_ROLES_API_RATE_LIMIT_STORAGE=storage)
    assert "hunter2" not in str(excinfo.value), "a Redis URL's password must never appear in an error"


def test_flasks_prefixed_environment_works_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_DISCORD_ROLES_HTTP_MAX_RETRIES", "2")
    app = _app(TESTING=True)
    app.config.from_prefixed_env()
    DiscordRoles(app, db=SQLAlchemy(app))
    assert get_state(app).settings.http_max_retries == 2


# -- settings are read once --------------------------------------------------------------------------


def test_a_setting_changed_after_init_app_is_refused_with_where_to_set_it() -> None:
    app = _initialised()
    with pytest.raises(ConfigurationError) as excinfo:
        app.config["DISCORD_ROLES_API_BASE_URL"] = "http://127.0.0.1:9/api/v10"
    message = str(excinfo.value)
    assert "DISCORD_ROLES_API_BASE_URL cannot be changed after init_app" in message
    assert "fake_discord.api_base_url" in message, "the error says where a test sets it"
    assert app.config["DISCORD_ROLES_API_BASE_URL"] == "https://discord.com/api/v10", "nothing changed"
    assert get_state(app).settings.api_base_url == "https://discord.com/api/v10"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c.update(DISCORD_ROLES_HTTP_TIMEOUT=3.0, OTHER=1), id="update"),
        pytest.param(lambda c: c.update({"DISCORD_ROLES_HTTP_TIMEOUT": 3.0}), id="update-mapping"),
        pytest.param(lambda c: c.__ior__({"DISCORD_ROLES_HTTP_TIMEOUT": 3.0}), id="|="),
        pytest.param(lambda c: c.from_mapping(DISCORD_ROLES_HTTP_TIMEOUT=3.0), id="from_mapping"),
        pytest.param(lambda c: c.pop("DISCORD_ROLES_HTTP_TIMEOUT"), id="pop"),
        pytest.param(lambda c: c.__delitem__("DISCORD_ROLES_HTTP_TIMEOUT"), id="del"),
        pytest.param(lambda c: c.clear(), id="clear"),
    ],
)
def test_every_way_of_changing_a_setting_is_refused_and_changes_nothing(change: object) -> None:
    app = _initialised()
    before = dict(app.config)
    with pytest.raises(ConfigurationError, match=r"DISCORD_ROLES_[A-Z_]+ cannot be changed after init_app"):
        change(app.config)  # type: ignore[operator]
    assert dict(app.config) == before, "a refused change must leave the whole config as it was"


def test_the_same_value_again_and_other_keys_are_fine() -> None:
    app = _initialised(DISCORD_ROLES_ENCRYPTION_KEYS=[key := generate_key()])
    app.config["DISCORD_ROLES_HTTP_TIMEOUT"] = 10.0
    app.config.update(DISCORD_ROLES_ENCRYPTION_KEYS=[key], SECRET_KEY="x", MY_SETTING=1)
    app.config.setdefault("DISCORD_ROLES_EXECUTOR", "worker")  # present: setdefault changes nothing
    app.testing = False
    assert (app.config["MY_SETTING"], app.config["DISCORD_ROLES_EXECUTOR"]) == (1, "thread")
    assert type(app.config).__name__ == "Config", "the host's config keeps its class name"


def test_a_test_pointing_the_app_at_the_fake_too_late_is_stopped_before_any_request(
    fake_discord: object,
) -> None:
    """The README's old testing snippet: the app was built, then pointed at FakeDiscord, then save_bot
    went to discord.com. Now the late setting itself is the error."""
    app = _initialised()
    with pytest.raises(ConfigurationError, match="read"):
        app.config["DISCORD_ROLES_API_BASE_URL"] = fake_discord.api_base_url  # type: ignore[attr-defined]
    assert get_state(app).settings.api_base_url == "https://discord.com/api/v10"


# -- generate-key needs no key -----------------------------------------------------------------------


def _flask_cli(**config: object) -> FlaskGroup:
    """``flask`` for a host whose factory builds a production app (no TESTING) with ``config``."""

    def create_app() -> Flask:
        app = _app(**config)
        DiscordRoles(app, db=SQLAlchemy(app))
        return app

    return FlaskGroup(create_app=create_app)


def test_generate_key_works_on_an_app_that_has_no_key_yet() -> None:
    result = CliRunner().invoke(_flask_cli(), ["discord-roles", "generate-key"])
    assert result.exit_code == 0, result.output
    Fernet(result.stdout.strip().encode())  # a usable key, and nothing else on stdout


def test_a_command_that_needs_the_missing_key_says_so_without_a_traceback() -> None:
    commands = (["discord-roles", "worker", "--once"], ["discord-roles", "tokens", "list", "--store", "1"])
    for command in commands:
        result = CliRunner().invoke(_flask_cli(), command)
        assert result.exit_code == 1, f"{command}: {result.output}"
        assert "Error: DISCORD_ROLES_ENCRYPTION_KEYS is not set" in result.output
        assert "config or environment" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{command} ended in {result.exception!r} instead of a one-line error"
        )


def test_outside_the_command_line_a_missing_key_still_fails_at_start_up() -> None:
    """Only Flask's command lookup defers the error: a server building the app fails at once."""
    app = _app()
    with pytest.raises(ConfigurationError, match="DISCORD_ROLES_ENCRYPTION_KEYS is not set"):
        DiscordRoles(app, db=SQLAlchemy(app))
    result = CliRunner().invoke(_flask_cli(), ["routes"])  # loads the app as `flask run` does
    assert isinstance(result.exception, ConfigurationError), "flask run/routes must not start without a key"


def test_an_unconfigured_app_refuses_requests_and_orders_with_the_error() -> None:
    """A host command that serves or sends orders on an app loaded without its key fails loudly."""
    loaded: list[Flask] = []

    def create_app() -> Flask:
        app = _app()
        DiscordRoles(app, db=SQLAlchemy(app))
        loaded.append(app)
        return app

    cli = FlaskGroup(create_app=create_app)
    CliRunner().invoke(cli, ["discord-roles", "generate-key"])
    (app,) = loaded
    with pytest.raises(ConfigurationError, match="DISCORD_ROLES_ENCRYPTION_KEYS is not set"):
        get_state(app)
    with app.app_context(), pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS"):
        order_completed.send(app, store_id="1", order_id="1", package_ids=["p"], discord_user_id="2")
    assert app.test_client().get("/anything").status_code == 500


def test_python_m_generate_key_needs_no_app() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flask_discord_roles", "generate-key"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FLASK_APP": "nowhere_to_be_found"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    Fernet(result.stdout.strip().encode())
