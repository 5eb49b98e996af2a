"""``/dashboard/bot``: the store's own Discord bot: its credentials, switch, commands and invite link.

The token and client secret go in and are never shown again: the page has no way to read them back.
"""

from __future__ import annotations

from flask import render_template, request
from werkzeug.wrappers import Response

from flask_discord_roles import bots
from flask_discord_roles.bots import BotNotConfigured, ConnectionCheck, ValidationError
from flask_discord_roles.discord.errors import TransientDiscordError

from .. import db
from . import dashboard
from .common import DISCORD_DOWN, refused, saved, store_id

NO_BOT = "This store has no bot yet: save its credentials first."
PUBLIC_FIELDS = ("application_id", "public_key")  # what the form may show again after a refusal


def _render(
    *, check: ConnectionCheck | None = None, errors: dict[str, list[str]] | None = None, status: int = 200
) -> tuple[str, int]:
    store = store_id()
    bot = bots.get_bot(store)
    typed = {name: request.form.get(name, "") for name in PUBLIC_FIELDS} if errors else {}
    page = render_template(
        "dashboard/bot.html",
        bot=bot,
        interactions_url=bots.interactions_url(store),
        invite_url=_invite_url(store),
        check=check,
        errors=errors or {},
        typed=typed,
    )
    return page, status


def _invite_url(store: str) -> str | None:
    """The store's own bot's invite, or the platform's shared bot's when it has none (if the app has one)."""
    try:
        return bots.invite_url(store)
    except BotNotConfigured:
        return None


@dashboard.get("/bot", endpoint="bot")
def bot_page() -> tuple[str, int]:
    return _render()


@dashboard.post("/bot")
def save_bot() -> Response | tuple[str, int]:
    form = request.form
    try:
        bot = bots.save_bot(
            store_id(),
            application_id=form.get("application_id", "").strip(),
            public_key=form.get("public_key", "").strip(),
            bot_token=form.get("bot_token", "").strip(),
            # Left empty: the store keeps no client secret (customers then link through the platform).
            client_secret=form.get("client_secret", "").strip() or None,
        )
    except ValidationError as error:
        db.session.rollback()
        return _render(errors=error.errors, status=422)
    except TransientDiscordError:
        return refused(DISCORD_DOWN, "dashboard.bot")
    commands = "" if bot.slash_commands_registered else " Its commands are not registered yet: register them."
    return saved(f"Saved the bot {bot.bot_name or bot.application_id}.{commands}", "dashboard.bot")


@dashboard.post("/bot/test")
def test_connection() -> Response | tuple[str, int]:
    try:
        check = bots.test_connection(store_id())
    except BotNotConfigured:
        return refused(NO_BOT, "dashboard.bot")
    return _render(check=check)


@dashboard.post("/bot/enabled")
def set_enabled() -> Response:
    enabled = request.form.get("enabled") == "on"
    try:
        bots.set_enabled(store_id(), enabled)
    except BotNotConfigured:
        return refused(NO_BOT, "dashboard.bot")
    if enabled:
        return saved("The bot is on: waiting deliveries go out now.", "dashboard.bot")
    return saved("The bot is off: deliveries wait until you switch it on again.", "dashboard.bot")


@dashboard.post("/bot/commands")
def register_commands() -> Response:
    try:
        problem = bots.register_commands(store_id())
    except BotNotConfigured:
        return refused(NO_BOT, "dashboard.bot")
    if problem is not None:
        db.session.commit()  # records that the commands are not registered
        return refused(f"The commands could not be registered: {problem}.", "dashboard.bot")
    return saved(
        "Registered /claim, /check and /help. Discord can take up to an hour to show them in servers.",
        "dashboard.bot",
    )


@dashboard.post("/bot/remove")
def remove_bot() -> Response:
    if not bots.remove_bot(store_id()):
        return refused("There was no bot to remove.", "dashboard.bot")
    return saved(
        "Removed the bot and its credentials. Deliveries wait until a bot is saved again.", "dashboard.bot"
    )
