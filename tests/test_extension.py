"""The extension object: settings read at init_app, clear start-up errors, per-app state."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import ConfigurationError, DiscordRoles
from flask_discord_roles._runtime.crypto import generate_key
from flask_discord_roles._runtime.state import get_state


def _app(**config: object) -> Flask:
    app = Flask("host")
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", **config)
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
