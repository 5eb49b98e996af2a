"""Linked Roles as Discord defines them: an application's role-connection metadata records, and the role
connection it keeps for each user.

A guild's admin makes a role require, say, "purchases ≥ 3"; the application declares the field
(:class:`RoleConnectionMetadata`, up to 5 of them, with a bot token) and writes each user's values
(:class:`RoleConnection`, with the user's OAuth2 token and its ``role_connections.write`` scope).
Discord then grants the role to whoever meets the requirement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum
from typing import Any

__all__ = [
    "MAX_METADATA_RECORDS",
    "MetadataValue",
    "RoleConnection",
    "RoleConnectionMetadata",
    "RoleConnectionMetadataType",
    "metadata_value",
]

MAX_METADATA_RECORDS = 5

MetadataValue = str | int | bool | date | datetime


class RoleConnectionMetadataType(IntEnum):
    """How a guild compares a user's value with the value it configured for a role."""

    INTEGER_LESS_THAN_OR_EQUAL = 1
    INTEGER_GREATER_THAN_OR_EQUAL = 2
    INTEGER_EQUAL = 3
    INTEGER_NOT_EQUAL = 4
    #: The user's value is an ISO 8601 date; the guild's is a number of days before today.
    DATETIME_LESS_THAN_OR_EQUAL = 5
    DATETIME_GREATER_THAN_OR_EQUAL = 6
    #: The user's value is 1 or 0.
    BOOLEAN_EQUAL = 7
    BOOLEAN_NOT_EQUAL = 8


def _metadata_type(value: Any) -> RoleConnectionMetadataType | int:
    # A type Discord adds later must not make the whole list unreadable: it stays a plain int.
    try:
        return RoleConnectionMetadataType(value)
    except ValueError:
        return int(value)


@dataclass(frozen=True)
class RoleConnectionMetadata:
    """One field an application declares: ``key`` (``a-z``, ``0-9``, ``_``; 1 to 50 characters) is what
    user values are keyed by, ``name`` (1 to 100) and ``description`` (1 to 200) are what admins read.

    The translations map a Discord locale (``"fr"``, ``"pt-BR"``…) to the text in that language.
    """

    key: str
    name: str
    description: str
    type: RoleConnectionMetadataType | int
    name_localizations: Mapping[str, str] | None = None
    description_localizations: Mapping[str, str] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoleConnectionMetadata:
        names = data.get("name_localizations")
        descriptions = data.get("description_localizations")
        return cls(
            key=str(data["key"]),
            name=str(data["name"]),
            description=str(data["description"]),
            type=_metadata_type(data["type"]),
            name_localizations=dict(names) if names is not None else None,
            description_localizations=dict(descriptions) if descriptions is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": int(self.type),
            "key": self.key,
            "name": self.name,
            "description": self.description,
        }
        if self.name_localizations is not None:
            body["name_localizations"] = dict(self.name_localizations)
        if self.description_localizations is not None:
            body["description_localizations"] = dict(self.description_localizations)
        return body


@dataclass(frozen=True)
class RoleConnection:
    """What the application keeps for one user: where the account is (``platform_name``, shown on the
    user's profile), who they are there, and their value for each declared key, as strings."""

    platform_name: str | None = None
    platform_username: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoleConnection:
        name = data.get("platform_name")
        username = data.get("platform_username")
        return cls(
            platform_name=str(name) if name is not None else None,
            platform_username=str(username) if username is not None else None,
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        )


def metadata_value(value: MetadataValue) -> str:
    """A user's metadata value as Discord takes it: a string (at most 100 characters).

    Integers are written in decimal, booleans as ``"1"`` / ``"0"``, dates and datetimes in ISO 8601; a
    string is sent as it is.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: a bool is an int
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    raise TypeError(
        f"a role-connection metadata value is a str, int, bool or date, not {type(value).__name__}"
    )
