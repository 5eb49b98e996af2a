"""Tier groups as SQL: which mapping a delivery came through, and whether a higher tier outranks it.

A mapping may sit in a ``tier_group`` with a ``tier_rank``. Within a group (one store, one server, one
person) a grant entitles its member to its role only while no *completed*, unrevoked grant of a
higher-ranked role of the same group exists: the higher role has been given, so the lower one steps
aside. A pending higher grant outranks nothing yet, so a member is never left between tiers with
neither role.

The mapping of a delivery is found by (store, package, server, role), the mapping's unique key; a
delivery without a package (a change by hand) or whose mapping was deleted is in no group.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flask_discord_roles._core.aliases import alias
from flask_discord_roles._runtime.models import Models
from flask_discord_roles.codes import Action, Status

TIER_KEY_PREFIX = "tier:"
"""How the idempotency keys of tier removals begin (see :mod:`.tier_changes`)."""


def mapping_of(mapping: Any, delivery: Any) -> sa.ColumnElement[bool]:
    """JOIN condition: the mapping ``delivery`` was queued through."""
    return sa.and_(
        mapping.store_id == delivery.store_id,
        mapping.package_id == delivery.package_id,
        mapping.guild_id == delivery.guild_id,
        mapping.role_id == delivery.role_id,
    )


def outranked(models: Models, grant: Any, mapping: Any) -> sa.ColumnElement[bool]:
    """``grant`` (queued through ``mapping``) is outranked: its member holds a higher tier of its group.

    False (never NULL, so it negates safely) when the mapping is in no group or missing (an outer
    join's NULL row), or the grant has no Discord user yet.
    """
    higher = alias(models.Delivery, "higher_grant")
    higher_mapping = alias(models.RoleMapping, "higher_mapping")
    # The plain checks first: a row in no group (most of them) is answered without the subquery.
    return sa.and_(
        mapping.tier_group.is_not(None),
        grant.discord_user_id.is_not(None),
        sa.exists(
            sa.select(higher.id)
            .join(higher_mapping, mapping_of(higher_mapping, higher))
            .where(
                higher.store_id == grant.store_id,
                higher.guild_id == grant.guild_id,
                higher.discord_user_id == grant.discord_user_id,
                higher.action == Action.ADD,
                higher.status == Status.COMPLETED,
                higher.revoked_at.is_(None),
                higher_mapping.tier_group == mapping.tier_group,
                higher_mapping.tier_rank > mapping.tier_rank,
            )
        ),
    )
