"""``/dashboard/mappings``: which Discord role each package gives, per linked server.

The add form only offers roles the bot can give; the others are listed with what to change in Discord.
The extension checks again when the mapping is made, since the server may have changed meanwhile.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import render_template, request
from werkzeug.wrappers import Response

from flask_discord_roles import guilds
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
    return render_template(
        "dashboard/mappings.html",
        servers=servers_with_roles(store),
        mappings=by_guild,
        packages=package_names(),
    )


@dashboard.post("/mappings")
def create_mapping() -> Response:
    form = request.form
    package_id, guild_id, role_id = (form.get(name, "") for name in ("package_id", "guild_id", "role_id"))
    package = package_names().get(package_id)
    if package is None:
        return refused("Choose one of the shop's packages.", "dashboard.mappings")
    try:
        mapping = guilds.create_mapping(store_id(), package_id, guild_id, role_id)
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
