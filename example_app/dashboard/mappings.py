"""``/dashboard/mappings``: which Discord role each package gives, per linked server.

The add form only offers roles the bot can give; the others are listed with what to change in Discord.
The extension checks again when the mapping is made, since the server may have changed meanwhile. A
mapping may belong to a tier group (with a rank) or keep its role for good; and a backfill gives a
mapping's role to the customers who already hold its package, with its progress shown here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import render_template, request
from werkzeug.wrappers import Response

from flask_discord_roles import backfills, guilds
from flask_discord_roles.discord.errors import TransientDiscordError
from flask_discord_roles.guilds import (
    BotUnavailable,
    DuplicateMapping,
    GuildNotLinked,
    MappingNotFound,
    ValidationError,
)

from . import dashboard
from .common import DISCORD_DOWN, refused, saved, store_id
from .servers import servers_with_roles
from .shop_names import package_names


@dashboard.get("/mappings", endpoint="mappings")
def mappings_page() -> str:
    store = store_id()
    by_guild: dict[str, list[Any]] = {}
    for mapping in guilds.list_mappings(store):
        by_guild.setdefault(mapping.guild_id, []).append(mapping)
    latest: dict[int, Any] = {}
    for job in backfills.list_backfills(store):  # newest first: the first seen is the latest
        latest.setdefault(job.mapping_id, job)
    return render_template(
        "dashboard/mappings.html",
        servers=servers_with_roles(store),
        mappings=by_guild,
        packages=package_names(),
        backfills=latest,
    )


def _tier_fields(form: Any) -> dict[str, Any] | str:
    """The form's tier group, rank and keep-on-end, as the extension takes them, or what is wrong."""
    group = form.get("group", "").strip() or None
    rank_text = form.get("rank", "").strip()
    if group is None and rank_text:
        return "A rank needs a tier group."
    if group is not None and not rank_text.isdigit():
        return "Give the tier a rank: a whole number, higher for a better tier."
    fields: dict[str, Any] = {"keep_on_end": form.get("keep_on_end") == "on"}
    if group is not None:
        fields.update(group=group, rank=int(rank_text))
    return fields


@dashboard.post("/mappings")
def create_mapping() -> Response:
    form = request.form
    package_id, guild_id, role_id = (form.get(name, "") for name in ("package_id", "guild_id", "role_id"))
    package = package_names().get(package_id)
    if package is None:
        return refused("Choose one of the shop's packages.", "dashboard.mappings")
    tier = _tier_fields(form)
    if isinstance(tier, str):
        return refused(tier, "dashboard.mappings")
    try:
        mapping = guilds.create_mapping(store_id(), package_id, guild_id, role_id, **tier)
    except ValidationError as error:
        return refused(error, "dashboard.mappings")
    # A twin made at the same moment by another request shows as the unique constraint's error instead.
    except (DuplicateMapping, sa.exc.IntegrityError):
        return refused(f"{package} already gives that role.", "dashboard.mappings")
    except BotUnavailable as unavailable:
        return refused(unavailable.fix, "dashboard.mappings")
    except GuildNotLinked:
        return refused("That server is not linked to the store.", "dashboard.mappings")
    except TransientDiscordError:
        return refused(DISCORD_DOWN, "dashboard.mappings")
    role = mapping.role_name or f"role {mapping.role_id}"
    return saved(f"Buyers of {package} now get the {role} role.", "dashboard.mappings")


@dashboard.post("/mappings/<int:mapping_id>/delete")
def delete_mapping(mapping_id: int) -> Response:
    try:
        guilds.delete_mapping(store_id(), mapping_id)
    except MappingNotFound:
        return refused("That mapping no longer exists.", "dashboard.mappings")
    return saved(
        "Deleted the mapping. Future purchases no longer give that role; roles already given stay.",
        "dashboard.mappings",
    )


@dashboard.post("/mappings/<int:mapping_id>/backfill")
def start_backfill(mapping_id: int) -> Response:
    """Give the mapping's role to every customer who already holds its package, a batch at a time; the
    worker (here, the thread executor's) steps it. A backfill already running for it is kept."""
    try:
        job = backfills.backfill_mapping(store_id(), mapping_id)
    except backfills.MappingNotFound:
        return refused("That mapping no longer exists.", "dashboard.mappings")
    return saved(f"Backfill #{job.id} started: its progress shows beside the mapping.", "dashboard.mappings")


@dashboard.post("/backfills/<int:backfill_id>/cancel")
def cancel_backfill(backfill_id: int) -> Response:
    try:
        backfills.cancel_backfill(store_id(), backfill_id)
    except backfills.BackfillNotFound:
        return refused("That backfill does not exist.", "dashboard.mappings")
    except backfills.BackfillFinished:
        return refused(
            "That backfill already completed: there is nothing left to cancel.", "dashboard.mappings"
        )
    return saved(
        "Backfill cancelled: nothing more is queued; roles already given stay.", "dashboard.mappings"
    )
