"""The tenant API blueprint with every operation registered on it (see :mod:`.blueprint`)."""

from __future__ import annotations

from flask_discord_roles._web.api import (
    backfills,
    bot,
    customers,
    deliveries,
    diagnostics,
    grants,
    guilds,
    linked_roles,
    openapi,
    reconcile,
    settings,
)
from flask_discord_roles._web.api.blueprint import tenant_api

__all__ = ["tenant_api"]
# Imported for the routes they register on the blueprint.
_OPERATIONS = (
    backfills,
    bot,
    customers,
    deliveries,
    diagnostics,
    grants,
    guilds,
    linked_roles,
    openapi,
    reconcile,
    settings,
)
