"""The extension's per-app state, kept at ``app.extensions["discord_roles"]``, and the host's loaders.

This module imports no service: every layer above reads the state through :func:`get_state`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._runtime.api_grant import ApiGrant
from flask_discord_roles._runtime.api_limits import ApiRateLimiter
from flask_discord_roles._runtime.bot_cache import BotCache
from flask_discord_roles._runtime.clients import ClientPool
from flask_discord_roles._runtime.config import Settings
from flask_discord_roles._runtime.crypto import TokenCipher
from flask_discord_roles._runtime.executor import Executor
from flask_discord_roles._runtime.hierarchy import HierarchyMemo
from flask_discord_roles._runtime.models import Models
from flask_discord_roles._runtime.telemetry import Telemetry
from flask_discord_roles.errors import ConfigurationError


class Loaders:
    """The host's callbacks registered on :class:`DiscordRoles`; shared by every app it serves."""

    def __init__(self) -> None:
        self.slug_to_store: Callable[[str], object | None] | None = None
        self.store_to_name: Callable[[str], object | None] | None = None
        self.api_token: Callable[[str], ApiGrant | None] | None = None
        self.store_to_slug: Callable[[str], object | None] | None = None
        self.current_customer: Callable[[], object | None] | None = None
        self.current_store: Callable[[], object | None] | None = None

    def store_for_slug(self, slug: str) -> str | None:
        """The store id behind ``slug`` in an interactions URL; by default the slug is the store id."""
        if self.slug_to_store is None:
            return slug
        store_id = self.slug_to_store(slug)
        return None if store_id is None else str(store_id)

    def customer_id(self) -> str | None:
        """The current request's customer id, or None for a guest."""
        loader = self.current_customer or _flask_login_user_id
        customer = loader()
        return None if customer is None or customer == "" else str(customer)

    def store_id(self, default: str | None) -> str | None:
        """The current request's store id: the loader's answer, else ``default``."""
        store = self.current_store() if self.current_store is not None else default
        return None if store is None or store == "" else str(store)

    def slug_of_store(self, store_id: str) -> str:
        """The slug in ``store_id``'s interactions URL; by default the store id itself."""
        slug = self.store_to_slug(store_id) if self.store_to_slug is not None else None
        return str(slug) if slug else store_id

    def name_of_store(self, store_id: str) -> str:
        """What to call the store in Discord messages; by default its id."""
        name = self.store_to_name(store_id) if self.store_to_name is not None else None
        return str(name) if name else store_id


def _flask_login_user_id() -> object | None:
    """Flask-Login's current user's id when the app uses Flask-Login and they are signed in."""
    if getattr(current_app, "login_manager", None) is None:  # set by LoginManager.init_app
        return None
    try:
        from flask_login import current_user
    except ImportError:
        return None
    if not getattr(current_user, "is_authenticated", False):
        return None
    get_id = getattr(current_user, "get_id", None)
    return get_id() if callable(get_id) else None


@dataclass(eq=False)
class DiscordRolesState:
    """Everything the extension keeps for one app, stored at ``app.extensions["discord_roles"]``."""

    settings: Settings
    db: SQLAlchemy
    models: Models
    cipher: TokenCipher = field(repr=False)
    clients: ClientPool = field(repr=False)
    executor: Executor
    loaders: Loaders = field(default_factory=lambda: Loaders(), repr=False)
    # Keys claim codes; None when neither DISCORD_ROLES_CLAIM_CODE_SECRET nor SECRET_KEY is set.
    claim_secret: bytes | None = field(default=None, repr=False)
    bot_cache: BotCache = field(default_factory=lambda: BotCache(0.0), repr=False)
    # Servers' role order as last read, to explain a burst of refused role changes with one read.
    hierarchy: HierarchyMemo = field(default_factory=HierarchyMemo, repr=False)
    first_request_seen: bool = field(default=False, repr=False)
    # The shared bot's token (DISCORD_ROLES_BOT_TOKEN), when the platform has one.
    platform_token: str | None = field(default=None, repr=False)
    # The shared bot's user id, asked of Discord when first needed (to explain a refused role change).
    platform_user_id: str | None = field(default=None, repr=False)
    # The platform application's OAuth2 client secret for account linking (…_OAUTH_CLIENT_SECRET).
    oauth_client_secret: str | None = field(default=None, repr=False)
    # The tenant API's per-token rate limit; None when the API is not mounted.
    api_limiter: ApiRateLimiter | None = field(default=None, repr=False)
    # What the app reports for operator metrics; a no-op until metrics are switched on (_metrics).
    telemetry: Telemetry = field(default_factory=Telemetry, repr=False)
    # Signal receivers are connected weakly and owned here, so they live exactly as long as the app.
    receivers: list[Callable[..., None]] = field(default_factory=list, repr=False)


class UnconfiguredApp:
    """Kept at ``app.extensions["discord_roles"]`` instead of the state when ``init_app`` found a wrong or
    missing setting while the ``flask`` command line was only loading the app to find a command.

    A command that needs nothing of ours (``flask discord-roles generate-key``) still runs; anything that
    asks for the state, sends an order signal or makes a request raises the error ``init_app`` found.
    """

    def __init__(self, message: str) -> None:
        self.message = message
        # The order-signal receivers that raise it, owned here as the state owns its receivers.
        self.receivers: list[Callable[..., None]] = []

    def __repr__(self) -> str:
        return "<UnconfiguredApp>"

    def refuse(self, *_args: object, **_kwargs: object) -> NoReturn:
        raise ConfigurationError(self.message)


def get_state(app: Flask | None = None) -> DiscordRolesState:
    """The extension's state for ``app`` (default: the current app), with a clear error if missing."""
    target: Any = app if app is not None else current_app
    try:
        state = target.extensions["discord_roles"]
    except KeyError:
        raise ConfigurationError(
            "flask-discord-roles is not initialised on this app: call DiscordRoles(app) or "
            "discord_roles.init_app(app)."
        ) from None
    if not isinstance(state, DiscordRolesState):
        assert isinstance(state, UnconfiguredApp)
        state.refuse()
    return state
