"""Hierarchy and permission math as Discord does it, and snowflake helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flask_discord_roles.discord.permissions import (
    ADMINISTRATOR,
    MANAGE_ROLES,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    base_permissions,
    can_assign,
    can_manage_role,
    has_permission,
    highest_role,
    missing_permissions,
)
from flask_discord_roles.discord.snowflake import avatar_url, created_at, default_avatar_url, is_snowflake

GUILD = "100000000000000000"


def role(role_id: str, position: int, permissions: int = 0, managed: bool = False) -> dict[str, object]:
    return {
        "id": role_id,
        "name": f"r{role_id}",
        "position": position,
        "permissions": str(permissions),
        "managed": managed,
    }


ROLES = [
    role(GUILD, 0),
    role("200000000000000001", 1),  # VIP
    role("200000000000000002", 2, MANAGE_ROLES, managed=True),  # the bot's own role
    role("200000000000000003", 3),  # Moderator, above the bot
]
BOT = ["200000000000000002"]


def test_a_role_below_the_bot_can_be_assigned() -> None:
    assert can_assign(GUILD, BOT, ROLES[1], ROLES).ok


@pytest.mark.parametrize(
    ("target", "bot_roles", "roles", "code"),
    [
        (ROLES[3], BOT, ROLES, "role_above_bot"),
        (ROLES[2], BOT, ROLES, "managed_role"),
        (ROLES[0], BOT, ROLES, "everyone_role"),
        (ROLES[1], BOT, [*ROLES[:2], role("200000000000000002", 2), ROLES[3]], "missing_manage_roles"),
        (  # administrator does not bypass the hierarchy
            ROLES[3],
            BOT,
            [*ROLES[:2], role("200000000000000002", 2, ADMINISTRATOR), ROLES[3]],
            "role_above_bot",
        ),
        (  # equal positions: the lower id is the higher role
            role("200000000000000001", 2),
            ["200000000000000009"],
            [role(GUILD, 0), role("200000000000000001", 2), role("200000000000000009", 2, MANAGE_ROLES)],
            "role_above_bot",
        ),
    ],
)
def test_unassignable_roles_say_why_and_how_to_fix_it(
    target: dict[str, object], bot_roles: list[str], roles: list[dict[str, object]], code: str
) -> None:
    verdict = can_assign(GUILD, bot_roles, target, roles)
    assert not verdict.ok
    assert verdict.reason_code == code
    assert verdict.fix


def test_highest_role_breaks_position_ties_by_lower_id() -> None:
    tied = [role("300000000000000005", 4), role("300000000000000002", 4)]
    top = highest_role(GUILD, ["300000000000000005", "300000000000000002"], tied)
    assert top is not None
    assert top["id"] == "300000000000000002"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("175928847299117063", True),
        ("18446744073709551615", True),
        ("18446744073709551616", False),
        ("1234", False),
        ("17592884729911706a", False),
        ("١٧٥٩٢٨٨٤٧٢٩٩١١٧٠٦٣", False),
    ],
)
def test_is_snowflake(value: str, valid: bool) -> None:
    assert is_snowflake(value) is valid


def test_created_at_and_avatar_urls() -> None:
    assert created_at("175928847299117063") == datetime(2016, 4, 30, 11, 18, 25, 796000, tzinfo=UTC)
    assert avatar_url("175928847299117063", "a_abc").endswith("/175928847299117063/a_abc.gif")
    assert avatar_url("175928847299117063", None).startswith("https://cdn.discordapp.com/embed/avatars/")


def test_base_permissions_are_everyone_or_each_held_role() -> None:
    roles = [role(GUILD, 0, VIEW_CHANNEL), role("200000000000000001", 1, SEND_MESSAGES), ROLES[3]]
    assert base_permissions(GUILD, ["200000000000000001"], roles) == VIEW_CHANNEL | SEND_MESSAGES
    assert base_permissions(GUILD, [], roles) == VIEW_CHANNEL, "@everyone applies to every member"


def test_has_and_missing_permissions() -> None:
    assert has_permission(ADMINISTRATOR, MANAGE_ROLES), "administrator means every permission"
    assert not has_permission(VIEW_CHANNEL, VIEW_CHANNEL | SEND_MESSAGES), "every bit asked for is needed"
    assert missing_permissions(VIEW_CHANNEL, VIEW_CHANNEL | SEND_MESSAGES) == ["Send Messages"]
    assert missing_permissions(ADMINISTRATOR, MANAGE_ROLES) == []


def test_can_manage_role_answers_with_a_reason_code() -> None:
    assert can_manage_role(GUILD, BOT, ROLES[1], ROLES) == (True, None)
    assert can_manage_role(GUILD, BOT, ROLES[3], ROLES) == (False, "role_above_bot")


def test_default_avatar_is_picked_from_the_id() -> None:
    assert default_avatar_url("175928847299117063") == "https://cdn.discordapp.com/embed/avatars/2.png"
    assert avatar_url("175928847299117063", "abc") == (
        "https://cdn.discordapp.com/avatars/175928847299117063/abc.png"
    )
