"""Linked Roles state: each application's role-connection metadata records, and each user's role
connection to an application (what the app's bot says about them on its platform).

Plain dataclasses like :mod:`~flask_discord_roles.testing.state`; the world's lock guards them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MetadataRecord", "RoleConnection", "RoleConnections"]


@dataclass
class MetadataRecord:
    """One field an application declares for Linked Roles (``type`` 1 to 8 says how a guild compares it)."""

    type: int
    key: str
    name: str
    description: str
    name_localizations: dict[str, str] | None = None
    description_localizations: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "key": self.key,
            "name": self.name,
            "description": self.description,
        }
        # Discord leaves the translations out of a record that was saved without them.
        if self.name_localizations is not None:
            data["name_localizations"] = dict(self.name_localizations)
        if self.description_localizations is not None:
            data["description_localizations"] = dict(self.description_localizations)
        return data


@dataclass
class RoleConnection:
    """What an application last PUT for one user: all three fields, as Discord keeps them."""

    platform_name: str | None = None
    platform_username: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "platform_name": self.platform_name,
            "platform_username": self.platform_username,
            "metadata": dict(self.metadata),
        }


@dataclass
class RoleConnections:
    """Metadata records by application id; role connections by (user id, application id)."""

    metadata: dict[str, list[MetadataRecord]] = field(default_factory=dict)
    connections: dict[tuple[str, str], RoleConnection] = field(default_factory=dict)

    def records(self, application_id: str) -> list[MetadataRecord]:
        return list(self.metadata.get(application_id, []))

    def declared_types(self, application_id: str) -> dict[str, int]:
        """Each declared key with its type: what a user's metadata values are checked against."""
        return {record.key: record.type for record in self.metadata.get(application_id, [])}
