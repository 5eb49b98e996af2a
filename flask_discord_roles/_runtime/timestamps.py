"""How every time leaves us as text: UTC, whole seconds, ``Z``, e.g. ``2025-01-20T14:30:00Z``.

The custom-bot document writes its times this way, and a client written from it may parse them with
``%Y-%m-%dT%H:%M:%SZ``; the tenant API, the JSON-ready views of the Python API (``to_dict``) and the
OpenAPI description all use this one formatter and its pattern.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

__all__ = ["EXAMPLE", "FORMAT", "PATTERN", "format_timestamp", "json_ready"]

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
"""What every formatted time matches (a JSON-schema ``pattern``)."""
EXAMPLE = "2025-01-20T14:30:00Z"


def format_timestamp(value: datetime) -> str:
    """``value`` in UTC to the second (truncated: a time is never reported later than it was).

    A naive ``value`` is taken to be UTC already, as our models store it.
    """
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.strftime(FORMAT)


def json_ready(record: Any) -> dict[str, Any]:
    """A record (a dataclass instance) as a dict whose times are formatted by :func:`format_timestamp`."""
    data: dict[str, Any] = asdict(record)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = format_timestamp(value)
    return data
