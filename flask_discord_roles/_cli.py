"""``flask discord-roles …``: operator commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask.cli import with_appcontext
from sqlalchemy import select

import flask_discord_roles.migrations as migrations
from flask_discord_roles._runtime.crypto import DecryptionError, generate_key
from flask_discord_roles._runtime.state import get_state
from flask_discord_roles.errors import ConfigurationError

T = TypeVar("T")


class _Commands(click.Group):
    """Our commands: a wrong or missing setting ends one with its message, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as error:
            raise click.ClickException(str(error)) from None


@click.group("discord-roles", cls=_Commands, help="flask-discord-roles: Discord role delivery.")
def discord_roles_cli() -> None:
    """The command group; each command runs inside the app."""


@discord_roles_cli.command("generate-key")
def generate_key_command() -> None:
    """Print a new encryption key for DISCORD_ROLES_ENCRYPTION_KEYS (needs no app, nor a key).

    Also ``python -m flask_discord_roles generate-key``, without any app.
    """
    click.echo(generate_key())


@discord_roles_cli.command("rotate-keys")
@with_appcontext
def rotate_keys_command() -> None:
    """Re-encrypt every stored secret under the first key in DISCORD_ROLES_ENCRYPTION_KEYS.

    Put the new key first, run this, then remove the old key from the list.
    """
    state = get_state()
    session = state.db.session
    models = state.models
    rotated = 0
    try:
        for bot in session.scalars(select(models.StoreBot)):
            bot.token_ciphertext = state.cipher.rotate(bot.token_ciphertext)
            if bot.client_secret_ciphertext:
                bot.client_secret_ciphertext = state.cipher.rotate(bot.client_secret_ciphertext)
            rotated += 1
        for account in session.scalars(select(models.DiscordAccount)):
            if account.access_token_ciphertext:
                account.access_token_ciphertext = state.cipher.rotate(account.access_token_ciphertext)
            if account.refresh_token_ciphertext:
                account.refresh_token_ciphertext = state.cipher.rotate(account.refresh_token_ciphertext)
            rotated += 1
    except DecryptionError as exc:
        session.rollback()
        raise click.ClickException(f"{exc} Nothing was changed.") from None
    session.commit()
    click.echo(f"Re-encrypted the secrets of {rotated} record(s) under the first key.")


@discord_roles_cli.command("register-commands")
@click.option("--store", "store_id", help="Only this store's bot (default: every saved bot).")
@with_appcontext
def register_commands_command(store_id: str | None) -> None:
    """Register /claim, /check, /help and /link with Discord again, for one store's bot or all of them.

    Run it after upgrading flask-discord-roles (commands may have changed) or when a store's bot shows
    slash_commands_registered false. Exits 1 if any bot could not be registered.
    """
    from flask_discord_roles._core.bots import register_commands, register_platform_commands

    state = get_state()
    session = state.db.session
    bot_model = state.models.StoreBot
    # Stores on the shared bot have its commands: registered once below, not once per store.
    query = select(bot_model).where(bot_model.uses_platform_bot.is_(False)).order_by(bot_model.store_id)
    if store_id is not None:
        query = query.where(bot_model.store_id == store_id)
    bots = list(session.scalars(query))
    platform = state.settings.platform_application_id is not None and store_id is None
    if not bots and not platform:
        raise click.ClickException(
            f"No bot is saved for store {store_id!r}." if store_id else "No bot is saved."
        )
    failed = 0
    if platform:
        problem = register_platform_commands(state)
        if problem is None:
            click.echo("platform's shared bot: commands registered")
        else:
            failed += 1
            click.echo(f"platform's shared bot: not registered: {problem}", err=True)
    for bot in bots:
        problem = register_commands(state, bot)
        session.commit()
        if problem is None:
            click.echo(f"{bot.store_id}: commands registered")
        else:
            failed += 1
            click.echo(f"{bot.store_id}: not registered: {problem}", err=True)
    if failed:
        raise SystemExit(1)


@discord_roles_cli.group("tokens")
def tokens_cli() -> None:
    """Tenant-API tokens: create (shown once), list, revoke."""


@tokens_cli.command("create")
@click.option("--store", "store_id", required=True, help="The store the token acts for.")
@click.option("--name", required=True, help="What the token is for, to tell it apart later.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(["read", "write"]),
    default=("read", "write"),
    show_default=True,
    help="Repeat for several.",
)
@click.option("--expires-in-days", type=click.IntRange(1), help="Default: never expires.")
@with_appcontext
def create_token_command(
    store_id: str, name: str, scopes: tuple[str, ...], expires_in_days: int | None
) -> None:
    """Create a token and print it once: only its hash is kept."""
    from datetime import timedelta

    from flask_discord_roles._core.api_tokens import create_token
    from flask_discord_roles._runtime.models import utcnow
    from flask_discord_roles.errors import ValidationError

    state = get_state()
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        issued = create_token(state, store_id, name, list(scopes), expires_at=expires_at)
    except ValidationError as error:
        raise click.ClickException(
            "; ".join(message for messages in error.errors.values() for message in messages)
        ) from None
    state.db.session.commit()
    click.echo(issued.token)
    click.echo(
        f"Token {issued.info.id} ({issued.info.prefix}…) for store {store_id}, scopes "
        f"{' '.join(issued.info.scopes)}. Copy it now: it cannot be shown again.",
        err=True,
    )


@tokens_cli.command("list")
@click.option("--store", "store_id", required=True)
@with_appcontext
def list_tokens_command(store_id: str) -> None:
    """The store's tokens (never their secrets)."""
    from flask_discord_roles._core.api_tokens import list_tokens

    rows = list_tokens(get_state(), store_id)
    if not rows:
        click.echo(f"Store {store_id} has no API tokens.")
    for info in rows:
        status = "revoked" if info.revoked_at else "active"
        used = info.last_used_at.isoformat(timespec="seconds") if info.last_used_at else "never"
        click.echo(
            f"{info.id}\t{info.prefix}…\t{info.name}\t{' '.join(info.scopes)}\t{status}\tlast used {used}"
        )


@tokens_cli.command("revoke")
@click.option("--store", "store_id", required=True)
@click.argument("token_id", type=int)
@with_appcontext
def revoke_token_command(store_id: str, token_id: int) -> None:
    """Revoke a token at once."""
    from flask_discord_roles._core.api_tokens import revoke_token

    state = get_state()
    if not revoke_token(state, store_id, token_id):
        raise click.ClickException(f"Store {store_id} has no token {token_id}.")
    state.db.session.commit()
    click.echo(f"Token {token_id} revoked.")


@discord_roles_cli.command("worker")
@click.option("--once", is_flag=True, help="Process what is due now, then exit (for cron).")
@click.option(
    "--concurrency", "-c", type=click.IntRange(1, 256), help="Threads (default DISCORD_ROLES_THREADS)."
)
@click.option("--batch-size", type=click.IntRange(1, 1000), help="Rows claimed at a time.")
@click.option("--poll-interval", type=click.FloatRange(0.05), help="Seconds between looks at the queue.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve /metrics (Prometheus) and /healthz on this port (needs the [metrics] extra).",
)
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="The address to serve them on.")  # noqa: S104
@with_appcontext
def worker_command(
    once: bool,
    concurrency: int | None,
    batch_size: int | None,
    poll_interval: float | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run due deliveries and purchase notifications until SIGTERM (or once).

    Several workers may run at once, on several machines: each row is claimed by exactly one of them
    (SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite run a single worker). SIGTERM or Ctrl-C
    finishes the Discord calls in flight and hands back the rows not started.
    """
    import logging
    import signal
    import threading

    from flask import current_app

    from flask_discord_roles._engine.worker import Worker

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("flask_discord_roles").setLevel(logging.INFO)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        logging.getLogger("flask_discord_roles.worker").info(
            "%s received: finishing calls in flight", signal.Signals(signum).name
        )
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker = Worker(
            app, threads=concurrency, batch_size=batch_size, poll_interval=poll_interval, stop=stop
        )
        server = (
            _serve_worker_metrics(worker, metrics_host, metrics_port) if metrics_port is not None else None
        )
        try:
            totals = worker.run(once=once)
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(
        f"worker done: {totals.completed} completed, {totals.retried} retried, {totals.failed} failed, "
        f"{totals.expired} expired"
    )


def _serve_worker_metrics(worker: Any, host: str, port: int) -> Any:
    """Switch metrics on and serve /metrics and /healthz for ``worker`` (see ``_metrics.worker_server``)."""
    from flask import current_app

    from flask_discord_roles._metrics.endpoint import turn_on
    from flask_discord_roles._metrics.worker_server import WorkerHealth, serve_worker_metrics, stale_after

    state = get_state()
    turn_on(state)
    engine = state.db.engine
    health = WorkerHealth(
        lambda: worker.last_beat,
        engine,
        stale_after=stale_after(worker.poll_interval, state.settings.lease_seconds),
    )
    server = serve_worker_metrics(
        state,
        engine,
        health,
        host=host,
        port=port,
        token=current_app.config.get("DISCORD_ROLES_METRICS_TOKEN"),
    )
    click.echo(f"metrics on http://{host}:{server.server_port}/metrics, health check at /healthz", err=True)
    return server


@discord_roles_cli.command("reconcile")
@click.option("--store", "store_id", help="Only this store (even if its reconcile_mode is off: then report).")
@click.option("--guild", "guild_id", help="Only this linked server (with --store).")
@click.option("--page-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@with_appcontext
def reconcile_command(store_id: str | None, guild_id: str | None, page_size: int) -> None:
    """Compare members' roles with their purchases in every linked server, to completion (for cron).

    Every store whose reconcile_mode is not off, one run per linked server; repairs are queued and then
    run like any delivery (one worker pass runs them before the command exits). Needs the bot's Server
    Members Intent.
    """
    from flask import current_app

    from flask_discord_roles._core import reconcile as service
    from flask_discord_roles._engine.runner import new_runner_id
    from flask_discord_roles._engine.worker import Worker

    if guild_id is not None and store_id is None:
        raise click.UsageError("--guild needs --store.")
    state = get_state()
    try:
        if store_id is None:
            runs = service.start_scheduled_runs(state)
        else:
            runs = service.start_runs(state, store_id, guild_id)
    except service.GuildNotLinked as error:
        raise click.ClickException(str(error)) from None
    run_ids = [run.id for run in runs]
    state.db.session.commit()
    service.run_to_completion(state, state.db.engine, new_runner_id(), run_ids, page_size=page_size)
    infos = [service.get_run(state, run.store_id, run.id) for run in runs]
    if any(info.repairs for info in infos):
        Worker(current_app._get_current_object(), name="reconcile").run(once=True)  # type: ignore[attr-defined]
    for info in infos:
        found = ", ".join(f"{kind} {count}" for kind, count in info.drift.items())
        outcome = info.status if info.reason_code is None else f"{info.status} ({info.reason_code})"
        click.echo(
            f"store {info.store_id} server {info.guild_id} [{info.mode}]: {outcome}, "
            f"{info.members_seen} members, drift: {found}, {info.repairs} repairs queued"
        )
    if not infos:
        click.echo("nothing to reconcile: no store has reconcile_mode report or repair and a linked server")


@discord_roles_cli.group("db")
def db_cli() -> None:
    """Our tables' migrations, recorded in their own version table (discord_roles_alembic_version).

    Your own `flask db` commands never see them: run `flask discord-roles db upgrade` next to
    `flask db upgrade` on every deploy.
    """


@db_cli.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade_command(revision: str) -> None:
    """Create or update our tables up to REVISION (default: head, the newest)."""
    before, after = _run_migration(migrations.upgrade, revision)
    if after == before:
        click.echo(f"flask-discord-roles' tables are already at {_describe(after)}.")
    else:
        click.echo(f"Upgraded flask-discord-roles' tables from {_describe(before)} to {_describe(after)}.")


@db_cli.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade_command(revision: str) -> None:
    """Take our tables back to REVISION; `base` drops them all."""
    before, after = _run_migration(migrations.downgrade, revision)
    click.echo(f"Downgraded flask-discord-roles' tables from {_describe(before)} to {_describe(after)}.")


@db_cli.command("current")
@with_appcontext
def db_current_command() -> None:
    """Print the revision our tables are at."""
    revision = _run_migration(migrations.current)
    if revision is None:
        click.echo("None: no flask-discord-roles tables yet; run `flask discord-roles db upgrade`.")
    elif revision == migrations.head():
        click.echo(f"{revision} (head)")
    else:
        click.echo(f"{revision} (head is {migrations.head()}: run `flask discord-roles db upgrade`)")


@db_cli.command("stamp")
@click.argument("revision")
@with_appcontext
def db_stamp_command(revision: str) -> None:
    """Record REVISION as our tables' revision without changing them (`head` after db.create_all())."""
    _, after = _run_migration(migrations.stamp, revision)
    click.echo(f"Recorded flask-discord-roles' tables as at {_describe(after)}; no table was changed.")


def _run_migration(command: Callable[..., T], *args: str) -> T:
    try:
        return command(*args)
    except migrations.MigrationError as error:
        raise click.ClickException(str(error)) from None


def _describe(revision: str | None) -> str:
    if revision is None:
        return "nothing (no tables)"
    return f"{revision} (head)" if revision == migrations.head() else revision
