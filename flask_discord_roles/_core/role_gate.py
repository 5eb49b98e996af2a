"""May we change roles in this server for this store now? One answer, asked by every path.

A delivery row may change a member's roles only while:

1. **the server is linked to the store, under the link the row was made in.** Unlinking is destructive
   (the seed: it "stops automatic role assignments"; mappings must be recreated after a relink), so a row
   made before the current link — pending, failed, expired or completed — never changes roles there
   again: not by a retry, not by ``/claim``, not by ``/claim``'s re-sync of a role the member lost.
2. **for a grant from an order, the package is still mapped to that role in that server.** Deleting a
   mapping means "this package no longer gives this role"; what was queued for it stops too. Manual
   changes and removals need no mapping: a refund still takes back what we gave.

Whether the store has a bot and it is switched on is the runner's to check as well, but a missing or
switched-off bot makes a row *wait* (it goes out once the bot is back), where these rules *refuse* it.

The rules are one SQL expression, :func:`refusal`: ``NULL`` when a change is allowed, else the reason
code. Queries that bring rows back to life (retries, ``/claim``, linking at checkout) select with
:func:`allowed`; the runner reads :func:`refusal` with the row it is about to run, in the same SELECT,
just before it calls Discord — so no path can forget it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flask_discord_roles._runtime.models import Models
from flask_discord_roles.codes import Action, ReasonCode, Source

GUILD_UNLINKED = ReasonCode.GUILD_UNLINKED
MAPPING_REMOVED = ReasonCode.MAPPING_REMOVED

REFUSALS: dict[str, str] = {
    GUILD_UNLINKED: (
        "The server was unlinked from the store after this role change was queued; unlinking stops "
        "every role change that was waiting there, and relinking does not bring them back. If the "
        "member's roles should still change, change them by hand from the customer's page."
    ),
    MAPPING_REMOVED: (
        "The package is no longer mapped to this role in this server, so the role is not given. Map "
        "the package to the role again for new purchases, or give the role by hand."
    ),
}
"""Each refusal's reason code and what it means for the store owner, in plain words."""


def refusal(models: Models) -> sa.ColumnElement[Any]:
    """The reason code refusing the delivery row in scope (``models.Delivery``), or NULL: allowed.

    Correlates to the enclosing statement's delivery table, so it serves a SELECT of rows as well as
    the WHERE of an UPDATE over them.
    """
    delivery, link, mapping = models.Delivery, models.LinkedGuild, models.RoleMapping
    current_link = sa.exists().where(
        link.store_id == delivery.store_id,
        link.guild_id == delivery.guild_id,
        sa.or_(link.deliveries_from_id.is_(None), link.deliveries_from_id <= delivery.id),
    )
    still_mapped = sa.exists().where(
        mapping.store_id == delivery.store_id,
        mapping.package_id == delivery.package_id,
        mapping.guild_id == delivery.guild_id,
        mapping.role_id == delivery.role_id,
    )
    needs_mapping = sa.and_(
        delivery.action == Action.ADD, delivery.source != Source.MANUAL, delivery.package_id.is_not(None)
    )
    return sa.case(
        (~current_link, sa.literal(str(GUILD_UNLINKED))),
        (sa.and_(needs_mapping, ~still_mapped), sa.literal(str(MAPPING_REMOVED))),
        else_=sa.null(),
    )


def allowed(models: Models) -> sa.ColumnElement[bool]:
    """The delivery row in scope may change roles now (see :func:`refusal`)."""
    return refusal(models).is_(None)


def first_delivery_id_of_new_link(models: Models) -> sa.ScalarSelect[Any]:
    """What a new link's ``deliveries_from_id`` is: the next delivery id, so every older row is not its."""
    delivery = models.Delivery
    return sa.select(sa.func.coalesce(sa.func.max(delivery.id), 0) + 1).scalar_subquery()
