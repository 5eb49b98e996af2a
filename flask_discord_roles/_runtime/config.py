"""Every ``DISCORD_ROLES_*`` setting: its default, its validation, and the typed view services read.

:data:`SETTINGS` describes each key once: ``init_app`` applies its defaults, and the docs' configuration
page is generated from it when the docs are built.
A key the app's config lacks is read from the environment variable of the same name. Settings are checked
once, at ``init_app``, so a mistake fails the app's start-up with a message naming the key and the fix,
instead of a 500 inside some later request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask_discord_roles._runtime.crypto import EncryptionKeyError, TokenCipher, generate_key, parse_keys
from flask_discord_roles.discord.oauth import authorize_endpoint_for
from flask_discord_roles.discord.signature import is_public_key
from flask_discord_roles.discord.snowflake import cdn_for, is_snowflake
from flask_discord_roles.errors import ConfigurationError


@dataclass(frozen=True)
class Setting:
    """One ``DISCORD_ROLES_*`` key: its default and what it does, as the docs' configuration page says."""

    key: str
    default: Any
    description: str
    """Markdown, one sentence or two: what the setting changes, and when to change it."""
    shown_default: str | None = None
    """How the reference writes the default when the value alone would mislead (a required key)."""
    text: bool = False
    """Read from the environment as written, never as JSON: a secret or an id of digits is not a number."""

    @property
    def default_in_words(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if isinstance(self.default, str):
            return f'`"{self.default}"`'
        return f"`{self.default!r}`"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DISCORD_ROLES_ENCRYPTION_KEYS",
        None,
        "Fernet keys, newest first, as a list or comma-separated text (so in the environment: "
        "`DISCORD_ROLES_ENCRYPTION_KEYS=newkey,oldkey`): the first encrypts, all decrypt (rotating "
        "them: *Deploying*, *Encryption key*). `flask discord-roles generate-key` or `python -m "
        "flask_discord_roles generate-key` makes one.",
        shown_default="required (unless `TESTING`)",
    ),
    Setting(
        "DISCORD_ROLES_API_BASE_URL",
        "https://discord.com/api/v10",
        "Discord's REST API. Tests and the demo point it at FakeDiscord (`fake_discord.api_base_url`), in "
        "the config the app is built with.",
    ),
    Setting(
        "DISCORD_ROLES_CDN_URL",
        None,
        "Where avatar and server-icon URLs point; by default Discord's CDN for Discord's API, else the "
        "API's own host (FakeDiscord serves them offline).",
    ),
    Setting(
        "DISCORD_ROLES_HTTP_TIMEOUT",
        10.0,
        "Seconds to wait on Discord to connect and to answer each request.",
    ),
    Setting(
        "DISCORD_ROLES_HTTP_MAX_RETRIES",
        5,
        "Retries of one call on 5xx, timeouts and connection errors before it counts as failed.",
    ),
    Setting(
        "DISCORD_ROLES_GLOBAL_RATE_LIMIT",
        50,
        "Discord's global limit per bot, in requests per `DISCORD_ROLES_GLOBAL_RATE_PERIOD`. Lower it if "
        "other software shares your bot.",
    ),
    Setting("DISCORD_ROLES_GLOBAL_RATE_PERIOD", 1.0, "The period of that limit, in seconds."),
    Setting(
        "DISCORD_ROLES_USER_AGENT",
        "DiscordBot (https://github.com/flask-discord-roles/flask-discord-roles, {version})",
        "The User-Agent Discord asks bots to send; `{version}` is replaced by ours.",
    ),
    Setting(
        "DISCORD_ROLES_REGISTER_MIGRATIONS",
        True,
        "Hook into the app's Flask-Migrate: its `flask db migrate` skips our `discord_roles_*` tables, and "
        "its `flask db` commands first move a revision of ours left in `alembic_version` (by the old "
        "`discord_roles` branch) into our own version table. Our tables are migrated by "
        "`flask discord-roles db upgrade` either way.",
    ),
    Setting(
        "DISCORD_ROLES_EXECUTOR",
        "thread",
        "Who runs deliveries: `thread` (a small pool in the app process), `worker` (only "
        "`flask discord-roles worker`), `celery` (a Celery task) or `inline` (right after commit; tests). "
        "See *How deliveries run*.",
    ),
    Setting(
        "DISCORD_ROLES_THREADS",
        4,
        "Threads of the thread executor, and of each `flask discord-roles worker` unless `--concurrency`.",
    ),
    Setting(
        "DISCORD_ROLES_POLL_INTERVAL",
        5.0,
        "Seconds between looks at the queue for retries that came due (thread executor and worker).",
    ),
    Setting(
        "DISCORD_ROLES_MAX_ATTEMPTS",
        8,
        "Attempts of one delivery on transient errors (5xx, timeouts, rate limits) before it is `failed`.",
    ),
    Setting(
        "DISCORD_ROLES_RETRY_BASE",
        15.0,
        "Backoff between attempts: `base * 2**(attempt - 1)` seconds with jitter, never under Discord's "
        "`retry_after`.",
    ),
    Setting("DISCORD_ROLES_RETRY_CAP", 3600.0, "The longest backoff between two attempts, in seconds."),
    Setting(
        "DISCORD_ROLES_LEASE_SECONDS",
        120.0,
        "How long a runner owns the rows it claimed; a killed runner's rows come back after this. At least "
        "3 * (`DISCORD_ROLES_HTTP_TIMEOUT` + `DISCORD_ROLES_RATE_LIMIT_WAIT`).",
    ),
    Setting(
        "DISCORD_ROLES_RATE_LIMIT_WAIT",
        2.0,
        "Seconds one Discord call may queue behind a rate limit before its delivery is rescheduled instead.",
    ),
    Setting("DISCORD_ROLES_BATCH_SIZE", 20, "Rows one runner claims at a time."),
    Setting(
        "DISCORD_ROLES_BACKFILL_WINDOW",
        50,
        "A backfill (granting a mapping to the customers who already hold its package) keeps at most this "
        "many of its deliveries queued for the runners at once, so new purchases never wait behind it; "
        "each worker pass (or Celery `process_due`) tops it up.",
    ),
    Setting(
        "DISCORD_ROLES_INTERACTIONS_PATH",
        "/webhook/discord/interactions",
        "Where Discord posts interactions; a store's own bot uses `<path>/<store_slug>`.",
    ),
    Setting(
        "DISCORD_ROLES_BOT_CACHE_SECONDS",
        10.0,
        "How long each process remembers a store's bot (its public key) between interactions. Saving a bot "
        "forgets it at once in that process, and a signature that fails against a remembered key is checked "
        "again against the database; `0` reads it every time.",
    ),
    Setting(
        "DISCORD_ROLES_INTERACTION_MAX_BYTES",
        65536,
        "Interactions are small: a larger request body is refused (413) unread.",
    ),
    Setting(
        "DISCORD_ROLES_APPLICATION_ID",
        None,
        "The platform's shared bot, for stores without one of their own: its application id. Give all "
        "three of this, `DISCORD_ROLES_PUBLIC_KEY` and `DISCORD_ROLES_BOT_TOKEN`, or none; it answers at "
        "`DISCORD_ROLES_INTERACTIONS_PATH` itself, and `/link` there ties a server to a store.",
        text=True,
    ),
    Setting("DISCORD_ROLES_PUBLIC_KEY", None, "The shared bot's public key (64 hex characters).", text=True),
    Setting("DISCORD_ROLES_BOT_TOKEN", None, "The shared bot's token.", text=True),
    Setting(
        "DISCORD_ROLES_CLAIM_CODE_SECRET",
        None,
        "Keys the HMAC of order claim codes (`/claim code:…`); changing it invalidates codes already shown "
        "to customers.",
        shown_default="`None` (uses `SECRET_KEY`)",
        text=True,
    ),
    Setting(
        "DISCORD_ROLES_INTERACTION_MAX_AGE",
        300.0,
        "Seconds a signed interaction's timestamp may be from now, either way, before the request counts "
        "as a replay (401).",
    ),
    Setting(
        "DISCORD_ROLES_TENANT_API",
        True,
        "Mount the tenant API (your dashboard's HTTP API) at `DISCORD_ROLES_API_PREFIX`; `False` leaves it "
        "out.",
    ),
    Setting("DISCORD_ROLES_API_PREFIX", "/api/v1/tenant/discord", "Where the tenant API lives."),
    Setting(
        "DISCORD_ROLES_API_RATE_LIMIT",
        "60/minute",
        'Requests per API token, in `limits` notation (`"60/minute;1000/hour"` for several).',
    ),
    Setting(
        "DISCORD_ROLES_API_RATE_LIMIT_STORAGE",
        "memory://",
        "Where the counts live: `memory://` is per process, `redis://host:6379/0` shares them between "
        "processes. If it is unreachable, requests are let through and a warning is logged.",
    ),
    Setting(
        "DISCORD_ROLES_METRICS_PATH",
        None,
        "Serve Prometheus metrics (queue depth, delivery latency, outcomes, Discord requests and 429s, "
        "interaction latency, drift) at this path of the app, e.g. `/metrics`; `None` serves none. Needs "
        "the `[metrics]` extra. See *Metrics* for gunicorn's `PROMETHEUS_MULTIPROC_DIR`.",
    ),
    Setting(
        "DISCORD_ROLES_METRICS_TOKEN",
        None,
        "When set, the metrics path answers only `Authorization: Bearer <this token>` (Prometheus' "
        "`authorization` setting); anyone else gets 401.",
        text=True,
    ),
    Setting(
        "DISCORD_ROLES_PUBLIC_BASE_URL",
        None,
        "This app's public `https://host` (with its path prefix, if mounted under one). Every address we "
        "hand out is built from it, never from a request's `Host` header: the interactions URL the API "
        "shows, the OAuth redirect URI. A `TESTING` or debug app may leave it unset and use the request's "
        "own address, but a `Host` header that is not a plain `host[:port]` is then refused (400), never "
        "made into a URL.",
        shown_default="required (unless `TESTING` or debug)",
    ),
    Setting(
        "DISCORD_ROLES_GUILD_CACHE_SECONDS",
        300.0,
        "How long a linked server's name and member count, read from Discord, are reused by listings.",
    ),
    Setting(
        "DISCORD_ROLES_OAUTH_PREFIX",
        "/discord",
        "Where customers link their Discord account (`/link`, `/callback`, `/unlink`).",
    ),
    Setting(
        "DISCORD_ROLES_OAUTH_CLIENT_ID",
        None,
        "The OAuth2 application customers authorise when their store saved no client secret of its own "
        "(the platform's); defaults to `DISCORD_ROLES_APPLICATION_ID`.",
        text=True,
    ),
    Setting("DISCORD_ROLES_OAUTH_CLIENT_SECRET", None, "That application's client secret.", text=True),
    Setting(
        "DISCORD_ROLES_OAUTH_AUTHORIZE_URL",
        None,
        "Discord's consent page; by default derived from `DISCORD_ROLES_API_BASE_URL` "
        "(`https://discord.com/oauth2/authorize`; FakeDiscord's in tests).",
    ),
    Setting(
        "DISCORD_ROLES_STORE_ID",
        None,
        "The store of a single-store shop, for account linking when no `current_store_loader` is registered.",
        text=True,
    ),
)
"""Every setting, once: ``init_app`` applies the defaults; the docs' configuration page is made from it."""

DEFAULTS: dict[str, Any] = {setting.key: setting.default for setting in SETTINGS}


def fill_in_settings(config: MutableMapping[str, Any], environ: Mapping[str, str] = os.environ) -> set[str]:
    """Give ``config`` every setting it lacks: from the environment variable of that name, else the
    default. Returns the keys taken from the environment, so an error can say where a value came from."""
    from_environment = set()
    for setting in SETTINGS:
        if setting.key in config:
            continue
        if setting.key in environ:
            config[setting.key] = _parse_environment(setting, environ[setting.key])
            from_environment.add(setting.key)
        else:
            config[setting.key] = setting.default
    return from_environment


def _parse_environment(setting: Setting, text: str) -> Any:
    """As Flask's ``Config.from_prefixed_env`` parses a variable: JSON when it is JSON, else the text."""
    if setting.text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


@contextmanager
def naming_the_environment(from_environment: set[str]) -> Iterator[None]:
    """Add to a :class:`ConfigurationError` which of the keys it names came from the environment."""
    try:
        yield
    except ConfigurationError as error:
        named = sorted(key for key in from_environment if key in str(error))
        if not named:
            raise
        variables = f"variable {named[0]}" if len(named) == 1 else f"variables {', '.join(named)}"
        raise ConfigurationError(f"{error} (read from the environment {variables})") from None


EXECUTORS = ("thread", "worker", "celery", "inline")


@dataclass(frozen=True)
class Settings:
    """The validated settings of one app (see :data:`SETTINGS` for each). Holds no secrets in its repr."""

    api_base_url: str
    http_timeout: float
    http_max_retries: int
    global_rate_limit: int
    global_rate_period: float
    user_agent: str
    register_migrations: bool
    ephemeral_encryption_key: bool
    executor: str
    threads: int
    poll_interval: float
    max_attempts: int
    retry_base: float
    retry_cap: float
    lease_seconds: float
    rate_limit_wait: float
    batch_size: int
    backfill_window: int
    interactions_path: str
    interaction_max_bytes: int
    interaction_max_age: float
    bot_cache_seconds: float
    # The shared bot's public identity (its token is kept apart, never in settings).
    platform_application_id: str | None
    platform_public_key: str | None
    tenant_api: bool
    api_prefix: str
    api_rate_limit: str
    api_rate_limit_storage: str
    # Where the metrics are served; None: nowhere (their token is kept apart, never in settings).
    metrics_path: str | None
    public_base_url: str | None
    guild_cache_seconds: float
    oauth_prefix: str
    # The platform application's client id for account linking (its secret is kept apart).
    oauth_client_id: str | None
    oauth_authorize_url: str
    cdn_url: str
    default_store_id: str | None


def _positive_number(config: Mapping[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    value = config[key]
    if isinstance(value, bool):
        raise ConfigurationError(f"{key} must be a positive number, got {value!r}")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a positive number, got {value!r}") from None
    if number <= 0:
        raise ConfigurationError(f"{key} must be a positive number, got {value!r}")
    return number


def _non_negative_int(config: Mapping[str, Any], key: str) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigurationError(f"{key} must be a whole number ≥ 0, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{key} must be a whole number ≥ 0, got {value!r}") from None
    if number < 0:
        raise ConfigurationError(f"{key} must be a whole number ≥ 0, got {value!r}")
    return number


PLATFORM_KEYS = ("DISCORD_ROLES_APPLICATION_ID", "DISCORD_ROLES_PUBLIC_KEY", "DISCORD_ROLES_BOT_TOKEN")


def _platform_identity(config: Mapping[str, Any]) -> dict[str, str | None]:
    """The shared bot's application id and public key: all three settings given, or none."""
    given = [key for key in PLATFORM_KEYS if config.get(key)]
    if not given:
        return {"platform_application_id": None, "platform_public_key": None}
    missing = [key for key in PLATFORM_KEYS if key not in given]
    if missing:
        raise ConfigurationError(
            f"the platform's shared bot needs all of {', '.join(PLATFORM_KEYS)}; missing {', '.join(missing)}"
        )
    application_id = str(config["DISCORD_ROLES_APPLICATION_ID"])
    public_key = str(config["DISCORD_ROLES_PUBLIC_KEY"]).lower()
    if not is_snowflake(application_id):
        raise ConfigurationError("DISCORD_ROLES_APPLICATION_ID must be the application's numeric id")
    if not is_public_key(public_key):
        raise ConfigurationError(
            "DISCORD_ROLES_PUBLIC_KEY must be the application's public key (64 hex characters)"
        )
    if not isinstance(config["DISCORD_ROLES_BOT_TOKEN"], str):
        raise ConfigurationError("DISCORD_ROLES_BOT_TOKEN must be text")
    return {"platform_application_id": application_id, "platform_public_key": public_key}


def _non_negative_float(config: Mapping[str, Any], key: str) -> float:
    value = config[key]
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not number >= 0:  # also refuses NaN
        raise ConfigurationError(f"{key} must be a number of seconds ≥ 0, got {value!r}")
    return number


def _http_url(config: Mapping[str, Any], key: str) -> str:
    value = config[key]
    parts = urlsplit(str(value)) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{key} must be an http(s) URL such as https://discord.com/api/v10, got {value!r}"
        )
    return str(value).rstrip("/")


def build_cipher(config: Mapping[str, Any], *, testing: bool) -> tuple[TokenCipher, bool]:
    """Make the cipher from DISCORD_ROLES_ENCRYPTION_KEYS; in testing, a throwaway key if none is set.

    Returns the cipher and whether its key is a throwaway one.
    """
    key = "DISCORD_ROLES_ENCRYPTION_KEYS"
    raw = config.get(key)
    if raw is not None and not isinstance(raw, str | list | tuple):
        raise ConfigurationError(f"{key} must be a list of keys or comma-separated text")
    keys = parse_keys(raw)
    if not keys:
        if testing:
            return TokenCipher([generate_key()]), True
        raise ConfigurationError(
            f"{key} is not set. Bot and OAuth tokens are encrypted at rest and need a key: run "
            "`flask discord-roles generate-key` (or `python -m flask_discord_roles generate-key`) and set "
            f"{key}=<that key> in the app's config or environment."
        )
    try:
        return TokenCipher(keys), False
    except EncryptionKeyError as exc:
        raise ConfigurationError(str(exc)) from None


def load_settings(
    config: Mapping[str, Any], *, version: str, ephemeral_key: bool, production: bool = False
) -> Settings:
    """Validate the non-secret settings (defaults must already be applied).

    ``production`` (neither ``TESTING`` nor debug) makes ``DISCORD_ROLES_PUBLIC_BASE_URL`` required.
    """
    lease = _positive_number(config, "DISCORD_ROLES_LEASE_SECONDS", float)
    timeout = _positive_number(config, "DISCORD_ROLES_HTTP_TIMEOUT", float)
    wait = _positive_number(config, "DISCORD_ROLES_RATE_LIMIT_WAIT", float)
    # A delivery makes up to three calls, each bounded by the timeout plus the rate-limit wait; a lease
    # shorter than that would hand a row still being worked on to a second runner.
    if lease < 3 * (timeout + wait):
        raise ConfigurationError(
            "DISCORD_ROLES_LEASE_SECONDS must be at least 3 * (DISCORD_ROLES_HTTP_TIMEOUT + "
            f"DISCORD_ROLES_RATE_LIMIT_WAIT) = {3 * (timeout + wait):g}, got {lease:g}"
        )
    user_agent = config["DISCORD_ROLES_USER_AGENT"]
    if not isinstance(user_agent, str) or not user_agent.strip():
        raise ConfigurationError("DISCORD_ROLES_USER_AGENT must be non-empty text")
    return Settings(
        api_base_url=_http_url(config, "DISCORD_ROLES_API_BASE_URL"),
        http_timeout=_positive_number(config, "DISCORD_ROLES_HTTP_TIMEOUT", float),
        http_max_retries=_non_negative_int(config, "DISCORD_ROLES_HTTP_MAX_RETRIES"),
        global_rate_limit=_positive_number(config, "DISCORD_ROLES_GLOBAL_RATE_LIMIT", int),
        global_rate_period=_positive_number(config, "DISCORD_ROLES_GLOBAL_RATE_PERIOD", float),
        user_agent=user_agent.replace("{version}", version),
        register_migrations=bool(config["DISCORD_ROLES_REGISTER_MIGRATIONS"]),
        ephemeral_encryption_key=ephemeral_key,
        executor=_choice(config, "DISCORD_ROLES_EXECUTOR", EXECUTORS),
        threads=_positive_number(config, "DISCORD_ROLES_THREADS", int),
        poll_interval=_positive_number(config, "DISCORD_ROLES_POLL_INTERVAL", float),
        max_attempts=_positive_number(config, "DISCORD_ROLES_MAX_ATTEMPTS", int),
        retry_base=_positive_number(config, "DISCORD_ROLES_RETRY_BASE", float),
        retry_cap=_positive_number(config, "DISCORD_ROLES_RETRY_CAP", float),
        lease_seconds=_positive_number(config, "DISCORD_ROLES_LEASE_SECONDS", float),
        rate_limit_wait=_positive_number(config, "DISCORD_ROLES_RATE_LIMIT_WAIT", float),
        batch_size=_positive_number(config, "DISCORD_ROLES_BATCH_SIZE", int),
        backfill_window=_positive_number(config, "DISCORD_ROLES_BACKFILL_WINDOW", int),
        interactions_path=_url_path(config, "DISCORD_ROLES_INTERACTIONS_PATH"),
        interaction_max_bytes=_positive_number(config, "DISCORD_ROLES_INTERACTION_MAX_BYTES", int),
        interaction_max_age=_positive_number(config, "DISCORD_ROLES_INTERACTION_MAX_AGE", float),
        bot_cache_seconds=_non_negative_float(config, "DISCORD_ROLES_BOT_CACHE_SECONDS"),
        **_platform_identity(config),
        tenant_api=bool(config["DISCORD_ROLES_TENANT_API"]),
        api_prefix=_url_path(config, "DISCORD_ROLES_API_PREFIX"),
        api_rate_limit=_rate_limit(config, "DISCORD_ROLES_API_RATE_LIMIT"),
        api_rate_limit_storage=_storage_uri(config, "DISCORD_ROLES_API_RATE_LIMIT_STORAGE"),
        metrics_path=_metrics_path(config),
        public_base_url=_public_base_url(config, required=production),
        guild_cache_seconds=_non_negative_float(config, "DISCORD_ROLES_GUILD_CACHE_SECONDS"),
        oauth_prefix=_url_path(config, "DISCORD_ROLES_OAUTH_PREFIX"),
        oauth_client_id=_oauth_client_id(config),
        oauth_authorize_url=_optional_http_url(config, "DISCORD_ROLES_OAUTH_AUTHORIZE_URL")
        or authorize_endpoint_for(_http_url(config, "DISCORD_ROLES_API_BASE_URL")),
        cdn_url=_optional_http_url(config, "DISCORD_ROLES_CDN_URL")
        or cdn_for(_http_url(config, "DISCORD_ROLES_API_BASE_URL")),
        default_store_id=None
        if config["DISCORD_ROLES_STORE_ID"] is None
        else str(config["DISCORD_ROLES_STORE_ID"]),
    )


def _url_path(config: Mapping[str, Any], key: str) -> str:
    value = config[key]
    if not isinstance(value, str) or not value.startswith("/") or "<" in value or value.endswith("/"):
        raise ConfigurationError(
            f"{key} must be a URL path such as /webhook/discord/interactions, got {value!r}"
        )
    return value


def _choice(config: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = config[key]
    if value not in choices:
        raise ConfigurationError(f"{key} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _rate_limit(config: Mapping[str, Any], key: str) -> str:
    from limits import parse_many

    value = config[key]
    try:
        if not isinstance(value, str) or not parse_many(value):
            raise ValueError(value)
    except ValueError:
        raise ConfigurationError(
            f"{key} must be a rate such as '60/minute' or '1000 per hour', got {value!r}"
        ) from None
    return value


def _storage_uri(config: Mapping[str, Any], key: str) -> str:
    value = config[key]
    scheme = value.split("://", 1)[0] if isinstance(value, str) and "://" in value else None
    if scheme not in ("memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster"):
        # Not the value itself: a Redis URL may hold a password.
        shown = f"a {scheme}:// URL" if scheme else "no URL scheme"
        raise ConfigurationError(f"{key} must be memory:// or a redis:// URL, got {shown}")
    return str(value)


def _optional_http_url(config: Mapping[str, Any], key: str) -> str | None:
    return None if config[key] is None else _http_url(config, key)


def _public_base_url(config: Mapping[str, Any], *, required: bool) -> str | None:
    key = "DISCORD_ROLES_PUBLIC_BASE_URL"
    if config[key] is None:
        if required:
            # Otherwise every address we hand out would follow the request's Host header, which
            # anyone can set: Discord and OAuth would be pointed wherever a caller liked.
            raise ConfigurationError(
                f"{key} is not set. Set it to the public address of this app, such as "
                "https://shop.example.com: the interactions URL store owners paste into Discord and the "
                "OAuth redirect URI are built from it. (Only TESTING or debug apps may leave it unset.)"
            )
        return None
    base = _http_url(config, key)
    parts = urlsplit(base)
    if "@" in parts.netloc or parts.query or parts.fragment or not parts.hostname:
        raise ConfigurationError(
            f"{key} must be a plain address such as https://shop.example.com (no user, query or "
            f"fragment), got {config[key]!r}"
        )
    return base


def _oauth_client_id(config: Mapping[str, Any]) -> str | None:
    """The platform application customers link through: its client id, when its secret is set."""
    client_id = config["DISCORD_ROLES_OAUTH_CLIENT_ID"] or config.get("DISCORD_ROLES_APPLICATION_ID")
    secret = config["DISCORD_ROLES_OAUTH_CLIENT_SECRET"]
    if secret is None:
        return None
    if not isinstance(secret, str) or not secret:
        raise ConfigurationError("DISCORD_ROLES_OAUTH_CLIENT_SECRET must be the application's client secret")
    if client_id is None or not is_snowflake(str(client_id)):
        raise ConfigurationError(
            "DISCORD_ROLES_OAUTH_CLIENT_SECRET needs DISCORD_ROLES_OAUTH_CLIENT_ID (or "
            "DISCORD_ROLES_APPLICATION_ID): the application's numeric id"
        )
    return str(client_id)


def _metrics_path(config: Mapping[str, Any]) -> str | None:
    """The metrics' path, or None; a token must be text, and is only useful with a path."""
    token = config["DISCORD_ROLES_METRICS_TOKEN"]
    if token is not None and (not isinstance(token, str) or not token):
        # Not the value itself: it is a secret.
        raise ConfigurationError("DISCORD_ROLES_METRICS_TOKEN must be non-empty text")
    if config["DISCORD_ROLES_METRICS_PATH"] is None:
        return None
    return _url_path(config, "DISCORD_ROLES_METRICS_PATH")
