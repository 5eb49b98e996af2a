"""``/dashboard/guilds``: the Discord servers linked to the store, linking another, and unlinking one."""

from __future__ import annotations

from flask import render_template
from werkzeug.wrappers import Response

from flask_discord_roles import guilds
from flask_discord_roles.guilds import GuildNotLinked, GuildSummary, Unlinked

from . import dashboard
from .common import refused, saved, store_id
from .servers import linked_guilds

NOT_LINKED = "That server is not linked to the store."


@dashboard.get("/guilds", endpoint="guilds")
def guilds_page() -> str:
    return render_template("dashboard/guilds.html", guilds=linked_guilds(store_id()))


@dashboard.post("/guilds/link-code")
def create_link_code() -> Response:
    issued = guilds.create_link_code(store_id())
    # Only the code's hash is kept: this message is the one time the owner sees it.
    return saved(
        f"Your link code is {issued.code}. In your server, run /link code:{issued.code} "
        f"before {issued.expires_at:%H:%M} UTC. It works once.",
        "dashboard.guilds",
    )


def _linked(guild_id: str) -> GuildSummary | None:
    return next((guild for guild in linked_guilds(store_id()) if guild.guild_id == guild_id), None)


@dashboard.get("/guilds/<guild_id>/unlink")
def confirm_unlink(guild_id: str) -> str | Response:
    guild = _linked(guild_id)
    if guild is None:
        return refused(NOT_LINKED, "dashboard.guilds")
    mappings = guilds.list_mappings(store_id(), guild_id=guild_id)
    return render_template("dashboard/unlink.html", guild=guild, mappings=len(mappings))


@dashboard.post("/guilds/<guild_id>/unlink")
def unlink(guild_id: str) -> Response:
    # Checked against the linked servers first, so an id typed into the URL never reaches a query.
    guild = _linked(guild_id)
    if guild is None:
        return refused(NOT_LINKED, "dashboard.guilds")
    try:
        result = guilds.unlink_guild(store_id(), guild_id)
    except GuildNotLinked:  # unlinked by someone else since the page was read
        return refused(NOT_LINKED, "dashboard.guilds")
    name = guild.name or f"server {guild_id}"
    return saved(_unlinked_message(name, result), "dashboard.guilds")


def _unlinked_message(name: str, result: Unlinked) -> str:
    parts = [
        f"Unlinked {name}.",
        f"{_count(result.mappings_deleted, 'role mapping')} deleted;",
        f"{_count(result.deliveries_stopped, 'waiting delivery', 'waiting deliveries')} stopped "
        "(relinking does not bring them back).",
        "Roles members already have stay theirs.",
    ]
    if result.notifications_unchecked:
        parts.append(
            "Purchase notifications are off: Discord could not say whether their channel was in this "
            f"server ({result.notifications_unchecked}). Switch them on again in Settings if it is not."
        )
    elif result.notifications_stopped:
        parts.append("Purchase notifications are off: their channel was in this server.")
    return " ".join(parts)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"1 {one}" if n == 1 else f"{n} {many or one + 's'}"
