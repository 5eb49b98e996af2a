"""The ``DiscordRoles`` extension object: configuration, per-app state and wiring into the host app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from blinker import Signal
from flask import Flask, current_app, has_app_context
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._cli import discord_roles_cli
from flask_discord_roles._core.grants import end_revoked_grants, record_order
from flask_discord_roles._core.linked_roles import queue_connection, queue_for_order
from flask_discord_roles._core.queue import enqueue_order, revoke_order
from flask_discord_roles._engine.executors import make_executor
from flask_discord_roles._metrics.endpoint import install_endpoint, turn_on
from flask_discord_roles._runtime.api_limits import ApiRateLimiter
from flask_discord_roles._runtime.bot_cache import BotCache
from flask_discord_roles._runtime.clients import ClientPool
from flask_discord_roles._runtime.command_line import finding_a_command
from flask_discord_roles._runtime.config import (
    Settings,
    build_cipher,
    fill_in_settings,
    load_settings,
    naming_the_environment,
)
from flask_discord_roles._runtime.dispatch import dispatch_after_commit
from flask_discord_roles._runtime.models import Models, define_models
from flask_discord_roles._runtime.settings_guard import guard_settings
from flask_discord_roles._runtime.state import DiscordRolesState, Loaders, UnconfiguredApp, get_state
from flask_discord_roles._runtime.telemetry import Telemetry
from flask_discord_roles._runtime.version import __version__
from flask_discord_roles._web.api import tenant_api
from flask_discord_roles._web.interactions import interactions
from flask_discord_roles._web.linking import linking
from flask_discord_roles.checkout import install_template_helpers
from flask_discord_roles.errors import ConfigurationError
from flask_discord_roles.migrations import register_with_flask_migrate
from flask_discord_roles.orders import OrderAdapter, default_adapter
from flask_discord_roles.signals import order_completed, order_revoked

if TYPE_CHECKING:
    from flask_discord_roles._runtime.api_grant import ApiGrant

logger = logging.getLogger("flask_discord_roles")


class DiscordRoles:
    """Delivers Discord roles to the people who buy them.

    Create it with the app, or later with :meth:`init_app` (app factories)::

        db = SQLAlchemy()
        discord_roles = DiscordRoles()

        def create_app():
            app = Flask(__name__)
            db.init_app(app)
            discord_roles.init_app(app, db=db)

    Settings are ``DISCORD_ROLES_*`` keys in ``app.config``, or environment variables of the same names
    for keys the config lacks, each listed with its default on the docs' *Configuration* page,
    which is generated from the one table of them (``SETTINGS`` in
    ``flask_discord_roles/_runtime/config.py``). All are optional but two: ``DISCORD_ROLES_ENCRYPTION_KEYS``
    (unless ``TESTING``) and ``DISCORD_ROLES_PUBLIC_BASE_URL`` (unless ``TESTING`` or debug). They are read
    once, by ``init_app``: changing one in ``app.config`` afterwards raises :class:`ConfigurationError`.

    The extension keeps no state on itself: one object may serve several apps.
    """

    def __init__(self, app: Flask | None = None, db: SQLAlchemy | None = None) -> None:
        self._db = db
        self._loaders = Loaders()
        if app is not None:
            self.init_app(app, db)

    def init_app(
        self,
        app: Flask,
        db: SQLAlchemy | None = None,
        *,
        order_completed_signal: Signal | None = None,
        order_revoked_signal: Signal | None = None,
        order_adapter: OrderAdapter | None = None,
    ) -> None:
        """Validate the settings, map the tables on ``db``, listen for orders and register CLI commands.

        ``db`` defaults to the one given to the constructor, then to the app's Flask-SQLAlchemy
        extension. A host that already has its own order signals passes them as
        ``order_completed_signal`` / ``order_revoked_signal`` with an ``order_adapter`` that turns
        ``(sender, kwargs)`` into an :class:`~.orders.OrderEvent`. Raises :class:`ConfigurationError`
        naming the key when a setting is wrong.
        """
        if (order_completed_signal or order_revoked_signal) is not None and order_adapter is None:
            raise ConfigurationError(
                "a host order signal needs an order_adapter that turns its payload into an OrderEvent"
            )
        signals = (order_completed_signal or order_completed, order_revoked_signal or order_revoked)
        from_environment = fill_in_settings(app.config)
        try:
            with naming_the_environment(from_environment):
                state = _make_state(app, _find_db(app, db or self._db), self._loaders)
        except ConfigurationError as error:
            if not finding_a_command():
                raise
            # `flask discord-roles generate-key` must work on an app that has no key yet; anything
            # else that needs us raises this error (see UnconfiguredApp).
            _hold_back(app, str(error), signals)
            return
        app.extensions["discord_roles"] = state
        adapter = order_adapter or default_adapter
        _listen_for_orders(app, state, signals[0], adapter, revoke=False)
        _listen_for_orders(app, state, signals[1], adapter, revoke=True)
        _register_blueprints(app, state.settings)
        if state.settings.metrics_path is not None:
            install_endpoint(app, state.settings.metrics_path, app.config["DISCORD_ROLES_METRICS_TOKEN"])
        _join_the_host(app, state.settings)
        guard_settings(app.config)

    def store_loader(self, loader: Callable[[str], object | None]) -> Callable[[str], object | None]:
        """Register how a store slug in an interactions URL maps to your store id.

        ``loader(slug)`` returns the store id (any value, used as text) or None for no such store::

            @discord_roles.store_loader
            def store_for_slug(slug):
                store = Store.query.filter_by(slug=slug).first()
                return store.id if store else None

        Without one, the slug *is* the store id: ``/webhook/discord/interactions/<store_id>``. With one,
        register :meth:`store_slug_loader` too, so the tenant API can show each store its URL.
        """
        self._loaders.slug_to_store = loader
        return loader

    def store_slug_loader(self, loader: Callable[[str], object | None]) -> Callable[[str], object | None]:
        """Register the inverse of :meth:`store_loader`: ``loader(store_id)`` returns the store's slug."""
        self._loaders.store_to_slug = loader
        return loader

    def api_token_loader(self, loader: Callable[[str], ApiGrant | None]) -> Callable[[str], ApiGrant | None]:
        """Register how the tenant API checks a bearer token, for a host that issues its own tokens.

        ``loader(token)`` returns an :class:`~flask_discord_roles.ApiGrant` (the store the token is
        for and its scopes) or None when the token is not valid::

            @discord_roles.api_token_loader
            def load_token(token):
                key = ApiKey.find_active(token)
                return ApiGrant.for_token(token, key.store_id, key.scopes) if key else None

        Without one, the tokens made by ``flask discord-roles tokens create`` (or
        :func:`~flask_discord_roles.tokens.create_token`) are the ones accepted.
        """
        self._loaders.api_token = loader
        return loader

    def customer_loader(self, loader: Callable[[], object | None]) -> Callable[[], object | None]:
        """Register who the customer of the current request is, for account linking and checkout.

        ``loader()`` returns the customer's id (any value, used as text) or None for a guest::

            @discord_roles.customer_loader
            def current_customer():
                return session.get("customer_id")

        Without one, Flask-Login's ``current_user`` is used when Flask-Login is set up (its
        ``get_id()``, when authenticated); otherwise every visitor is a guest.
        """
        self._loaders.current_customer = loader
        return loader

    def current_store_loader(self, loader: Callable[[], object | None]) -> Callable[[], object | None]:
        """Register which store the current request is for (a multi-store host), for account linking.

        ``loader()`` returns the store id or None. Without one, ``DISCORD_ROLES_STORE_ID`` is used.
        """
        self._loaders.current_store = loader
        return loader

    def store_name_loader(self, loader: Callable[[str], object | None]) -> Callable[[str], object | None]:
        """Register how to name a store in Discord messages (``/link``'s answer, for one).

        ``loader(store_id)`` returns the name, or None to fall back to the store id.
        """
        self._loaders.store_to_name = loader
        return loader

    @property
    def models(self) -> Models:
        """The mapped model classes for the current app."""
        return get_state().models

    def shutdown(self, app: Flask | None = None, *, wait: bool = True) -> None:
        """Stop ``app``'s background deliveries (default: the current app): calls in flight finish,
        rows claimed but not started go back to the queue for the next process.

        The thread executor also stops at interpreter exit; call this when an app is torn down sooner
        (a test, an embedded server). Work committed afterwards restarts it.
        """
        get_state(app).executor.shutdown(wait=wait)


def _find_db(app: Flask, db: SQLAlchemy | None) -> SQLAlchemy:
    """The Flask-SQLAlchemy ``db`` our tables are mapped on: the one given, else the app's."""
    db = db or app.extensions.get("sqlalchemy")
    if not isinstance(db, SQLAlchemy):
        raise ConfigurationError(
            "DiscordRoles needs Flask-SQLAlchemy: call db.init_app(app) before "
            "discord_roles.init_app(app), or pass db=... to DiscordRoles/init_app."
        )
    return db


def _make_state(app: Flask, db: SQLAlchemy, loaders: Loaders) -> DiscordRolesState:
    """Check the settings (defaults already applied) and build what one app needs to deliver roles."""
    cipher, ephemeral = build_cipher(app.config, testing=app.testing)
    settings = load_settings(
        app.config,
        version=__version__,
        ephemeral_key=ephemeral,
        production=not (app.testing or app.debug),
    )
    if ephemeral:
        logger.info(
            "DISCORD_ROLES_ENCRYPTION_KEYS is not set; TESTING is on, so a throwaway key is used "
            "and stored tokens will not survive a restart."
        )
    telemetry = Telemetry()
    state = DiscordRolesState(
        settings=settings,
        db=db,
        models=define_models(db),
        cipher=cipher,
        clients=ClientPool(settings, telemetry.discord_request),
        telemetry=telemetry,
        executor=make_executor(settings),
        loaders=loaders,
        claim_secret=_claim_secret(app),
        bot_cache=BotCache(settings.bot_cache_seconds),
        # The secrets stay out of Settings (and so out of its repr): the state holds them apart.
        platform_token=app.config.get("DISCORD_ROLES_BOT_TOKEN")
        if settings.platform_application_id
        else None,
        oauth_client_secret=app.config.get("DISCORD_ROLES_OAUTH_CLIENT_SECRET")
        if settings.oauth_client_id
        else None,
        api_limiter=ApiRateLimiter(settings.api_rate_limit, settings.api_rate_limit_storage)
        if settings.tenant_api
        else None,
    )
    if settings.metrics_path is not None:
        turn_on(state)  # raises, naming the [metrics] extra, without prometheus-client
    return state


def _hold_back(app: Flask, message: str, signals: tuple[Signal, Signal]) -> None:
    """Let the flask command line run commands that need nothing of ours, on an app with a wrong setting:
    our commands are there, and every use of the extension (state, a request, an order signal for this
    app) raises the error."""
    unconfigured = UnconfiguredApp(message)
    app.extensions["discord_roles"] = unconfigured
    app.before_request(unconfigured.refuse)
    app.cli.add_command(discord_roles_cli)

    def on_order(sender: Any, **_payload: Any) -> None:
        if sender is app or (has_app_context() and current_app._get_current_object() is app):  # type: ignore[attr-defined]
            unconfigured.refuse()

    unconfigured.receivers = [on_order]  # connected weakly: lives as long as the app
    for signal in signals:
        signal.connect(on_order, weak=True)


def _register_blueprints(app: Flask, settings: Settings) -> None:
    """Mount the interactions webhook, the tenant API (unless turned off) and account linking."""
    mounts = [
        (interactions, settings.interactions_path),
        *([(tenant_api, settings.api_prefix)] if settings.tenant_api else []),
        (linking, settings.oauth_prefix),
    ]
    for blueprint, prefix in mounts:
        if blueprint.name not in app.blueprints:  # init_app may run again on the same app
            app.register_blueprint(blueprint, url_prefix=prefix)


def _join_the_host(app: Flask, settings: Settings) -> None:
    """Template helpers, the host's CSRF and rate-limit guards, a hook per request, CLI, migrations."""
    install_template_helpers(app)
    # Discord signs its requests and API clients send a bearer token; neither has a CSRF token.
    # Exempt our blueprints from Flask-WTF's CSRFProtect and from the host's Flask-Limiter (we
    # keep our own limit) whether the host set those up before us (now) or after (_before_request).
    _exempt_from_host_guards(app)
    app.before_request(_before_request)
    app.cli.add_command(discord_roles_cli)
    if settings.register_migrations:
        # Keeps our tables out of the host's `flask db migrate`, whenever the host sets Flask-Migrate up.
        register_with_flask_migrate(app)


def _listen_for_orders(
    app: Flask, state: DiscordRolesState, signal: Signal, adapter: OrderAdapter, *, revoke: bool
) -> None:
    """Queue deliveries (or removals) when ``signal`` fires for this app, and only this app."""

    def on_order(sender: Any, **payload: Any) -> None:
        if isinstance(sender, Flask):
            if sender is not app:
                return
        elif not has_app_context():
            raise RuntimeError("send the order signal inside an app context (the host's request or job)")
        elif current_app._get_current_object() is not app:  # type: ignore[attr-defined]
            return
        event = adapter(sender, payload)
        if revoke:
            queued = revoke_order(state, event)
            ended = end_revoked_grants(state, event)
            queued.due += ended.due
        elif event.is_time_limited:
            queued = record_order(state, event).queued
        else:
            queued = enqueue_order(state, event)
            # The plain checkout learnt from its one statement whether Linked Roles apply: no query more.
            if queued.role_connection and event.customer_id is not None:
                queue_connection(state, event.store_id, event.customer_id)
        if revoke or event.is_time_limited:
            queue_for_order(state, event.store_id, event.order_id, event.customer_id, revoked=revoke)
        if queued.due or queued.notifications:
            dispatch_after_commit(
                state.db.session(), app, delivery_ids=queued.due, notification_ids=queued.notifications
            )

    state.receivers.append(on_order)
    signal.connect(on_order, weak=True)


def _claim_secret(app: Flask) -> bytes | None:
    secret = app.config.get("DISCORD_ROLES_CLAIM_CODE_SECRET") or app.config.get("SECRET_KEY")
    if secret is None:
        return None
    if not isinstance(secret, str | bytes) or not secret:
        raise ConfigurationError("DISCORD_ROLES_CLAIM_CODE_SECRET (or SECRET_KEY) must be non-empty text")
    return secret.encode() if isinstance(secret, str) else secret


def _exempt_from_host_guards(app: Flask) -> None:
    ours = [interactions] + ([tenant_api] if tenant_api.name in app.blueprints else [])
    csrf = app.extensions.get("csrf")
    exempt = getattr(csrf, "exempt", None)
    if exempt is not None:
        for blueprint in ours:
            if blueprint not in getattr(csrf, "_exempt_blueprints", ()):
                exempt(blueprint)
    for limiter in app.extensions.get("limiter", ()):
        for blueprint in ours:
            limiter.exempt(blueprint)


def _before_request() -> None:
    """Runs before every request of the host's app, so it does almost nothing after the first."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = get_state(app)
    if not state.first_request_seen:
        # Extensions are set up before an app serves: CSRFProtect and Flask-Limiter, if any, are there.
        _exempt_from_host_guards(app)
        state.first_request_seen = True
    # Lazily, but not only on a commit: rows due for a retry after a restart need the thread
    # executor's poller, and a celery executor without a Celery app should fail a request, loudly.
    # Cheap once started (a thread and pid check), and a forked child starts its own.
    state.executor.ensure_started(app)
