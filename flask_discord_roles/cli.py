"""``flask discord-roles …``: operator commands."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from .crypto import DecryptionError, generate_key
from .extension import get_state


@click.group("discord-roles", help="flask-discord-roles: Discord role delivery.")
def discord_roles_cli() -> None:
    """The command group; each command runs inside the app."""


@discord_roles_cli.command("generate-key")
def generate_key_command() -> None:
    """Print a new encryption key for DISCORD_ROLES_ENCRYPTION_KEYS."""
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
