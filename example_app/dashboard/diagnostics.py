"""``/dashboard/diagnostics``: every check the extension makes, and the fix for each failing one."""

from __future__ import annotations

from flask import render_template

from flask_discord_roles import diagnostics, guilds

from . import dashboard
from .common import store_id
from .servers import linked_guilds

CHECK_TITLES = {
    "bot_configured": "A bot is saved and switched on",
    "token_valid": "Discord accepts the bot's token",
    "platform_bot_reachable": "The platform's shared bot answers",
    "commands_registered": "/claim, /check and /help are registered",
    "interactions_received": "Discord reaches the interactions URL",
    "guild_linked": "A server is linked",
    "bot_in_guild": "The bot is in the server",
    "manage_roles": "The bot can manage roles",
    "create_invite": "The bot can add customers to the server",
    "role_assignable": "The bot can give the role",
    "notification_channel": "The bot can post purchase notifications",
}


@dashboard.get("/diagnostics", endpoint="diagnostics")
def diagnostics_page() -> str:
    store = store_id()
    diagnosis = diagnostics.run_diagnostics(store)
    # Names for the servers and roles the checks mention: the cached server names, and the role names
    # the mappings remember, so this page asks Discord nothing beyond the checks themselves.
    guild_names = {guild.guild_id: guild.name for guild in linked_guilds(store)}
    role_names = {mapping.role_id: mapping.role_name for mapping in guilds.list_mappings(store)}
    return render_template(
        "dashboard/diagnostics.html",
        diagnosis=diagnosis,
        failing=sum(not check.ok for check in diagnosis.checks),
        titles=CHECK_TITLES,
        guild_names=guild_names,
        role_names=role_names,
    )
