"""Interaction payloads and answers, as Discord defines them: types, flags and message shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ACTION_ROW",
    "APPLICATION_COMMAND",
    "AUTOCOMPLETE",
    "AUTOCOMPLETE_RESULT",
    "BRAND_COLOUR",
    "BUTTON",
    "CHANNEL_MESSAGE",
    "DEFERRED_CHANNEL_MESSAGE",
    "EPHEMERAL",
    "MAX_CONTENT",
    "MAX_EMBED_DESCRIPTION",
    "MESSAGE_COMPONENT",
    "MODAL_SUBMIT",
    "PING",
    "PONG",
    "PRIMARY",
    "button_row",
    "command_name",
    "custom_id_of",
    "deferred_ephemeral",
    "embed",
    "ephemeral_message",
    "guild_id_of",
    "invoking_user_id",
    "member_permissions",
    "no_choices",
    "option_value",
    "pong",
]

# Interaction types Discord sends.
PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Answer types.
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
AUTOCOMPLETE_RESULT = 8

# Message components.
ACTION_ROW = 1
BUTTON = 2
PRIMARY = 1

EPHEMERAL = 1 << 6
"""Message flag: only the person who ran the command sees the answer."""

# Discord's limits on what a message may hold.
MAX_CONTENT = 2000
MAX_EMBED_DESCRIPTION = 4096

BRAND_COLOUR = 0x5865F2


def pong() -> dict[str, Any]:
    return {"type": PONG}


def ephemeral_message(
    content: str | None = None,
    *,
    embeds: Sequence[Mapping[str, Any]] = (),
    components: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """An answer only the invoking user sees; mentions never ping anyone."""
    data: dict[str, Any] = {"flags": EPHEMERAL, "allowed_mentions": {"parse": []}}
    if content is not None:
        data["content"] = content[:MAX_CONTENT]
    if embeds:
        data["embeds"] = [dict(embed) for embed in embeds]
    if components:
        data["components"] = [dict(component) for component in components]
    return {"type": CHANNEL_MESSAGE, "data": data}


def deferred_ephemeral() -> dict[str, Any]:
    """ "Thinking…", seen only by the invoking user; the answer comes later as an @original edit."""
    return {"type": DEFERRED_CHANNEL_MESSAGE, "data": {"flags": EPHEMERAL}}


def button_row(*buttons: tuple[str, str]) -> dict[str, Any]:
    """An action row of primary buttons, each given as ``(label, custom_id)``."""
    return {
        "type": ACTION_ROW,
        "components": [
            {"type": BUTTON, "style": PRIMARY, "label": label, "custom_id": custom_id}
            for label, custom_id in buttons
        ],
    }


def custom_id_of(payload: Mapping[str, Any]) -> str | None:
    """The ``custom_id`` of the button a component interaction is about."""
    data = payload.get("data")
    value = data.get("custom_id") if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else None


def embed(title: str, description: str, *, fields: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    return {
        "title": title,
        "description": description[:MAX_EMBED_DESCRIPTION],
        "color": BRAND_COLOUR,
        "fields": [{"name": name, "value": value, "inline": False} for name, value in fields],
    }


def no_choices() -> dict[str, Any]:
    """The answer to an autocomplete request when there is nothing to suggest."""
    return {"type": AUTOCOMPLETE_RESULT, "data": {"choices": []}}


def invoking_user_id(payload: Mapping[str, Any]) -> str | None:
    """Who ran the command: ``member.user`` in a server, ``user`` in a DM."""
    member = payload.get("member")
    user = member.get("user") if isinstance(member, Mapping) else payload.get("user")
    if isinstance(user, Mapping) and isinstance(user.get("id"), str):
        return str(user["id"])
    return None


def command_name(payload: Mapping[str, Any]) -> str | None:
    data = payload.get("data")
    name = data.get("name") if isinstance(data, Mapping) else None
    return name if isinstance(name, str) else None


def option_value(payload: Mapping[str, Any], name: str) -> Any:
    """The value of a top-level command option, or None when it was not given."""
    data = payload.get("data")
    options = data.get("options") if isinstance(data, Mapping) else None
    for option in options if isinstance(options, list) else ():
        if isinstance(option, Mapping) and option.get("name") == name:
            return option.get("value")
    return None


def member_permissions(payload: Mapping[str, Any]) -> int:
    """The invoking member's permissions in the channel (0 outside a server or when malformed)."""
    member = payload.get("member")
    value = member.get("permissions") if isinstance(member, Mapping) else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def guild_id_of(payload: Mapping[str, Any]) -> str | None:
    guild_id = payload.get("guild_id")
    return guild_id if isinstance(guild_id, str) else None
