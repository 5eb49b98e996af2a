"""Body validation for messages and commands, answering Discord's nested 50035 error objects.

Discord reports every problem at its JSON path (``{"embeds": {"0": {"title": {"_errors": [...]}}}}``),
so a client that shows ``errors`` to a store owner can point at the exact field.
"""

from __future__ import annotations

import re
from typing import Any

import flask_discord_roles.testing.protocol as p

__all__ = [
    "ALLOWED_MENTION_TYPES",
    "COMMAND_NAME",
    "MESSAGE_FLAGS",
    "Errors",
    "validate_commands",
    "validate_message",
]

COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
ALLOWED_MENTION_TYPES = frozenset({"roles", "users", "everyone"})
MESSAGE_FLAGS = 4 | 64 | 4096  # SUPPRESS_EMBEDS, EPHEMERAL (interactions only), SUPPRESS_NOTIFICATIONS


class Errors:
    """Collects errors at JSON paths and raises one 50035 with all of them."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def max_length(self, path: tuple[str | int, ...], value: Any, limit: int) -> None:
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def length_between(self, path: tuple[str | int, ...], value: Any, low: int, high: int) -> None:
        if not isinstance(value, str) or not low <= len(value) <= high:
            self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    def raise_if_any(self) -> None:
        if self.tree:
            raise p.invalid_form(self.tree)


def _embed_chars(embed: dict[str, Any]) -> int:
    parts = [embed.get("title"), embed.get("description")]
    parts += [(embed.get("footer") or {}).get("text"), (embed.get("author") or {}).get("name")]
    for item in embed.get("fields") or []:
        parts += [item.get("name"), item.get("value")]
    return sum(len(x) for x in parts if isinstance(x, str))


def _check_embed(errors: Errors, index: int, embed: Any) -> None:
    path: tuple[str | int, ...] = ("embeds", index)
    if not isinstance(embed, dict):
        errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    errors.max_length((*path, "title"), embed.get("title"), 256)
    errors.max_length((*path, "description"), embed.get("description"), 4096)
    errors.max_length((*path, "footer", "text"), (embed.get("footer") or {}).get("text"), 2048)
    errors.max_length((*path, "author", "name"), (embed.get("author") or {}).get("name"), 256)
    fields = embed.get("fields") or []
    if len(fields) > 25:
        errors.add((*path, "fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for i, item in enumerate(fields[:25]):
        errors.length_between((*path, "fields", i, "name"), item.get("name"), 1, 256)
        errors.length_between((*path, "fields", i, "value"), item.get("value"), 1, 1024)


def _check_button(errors: Errors, path: tuple[str | int, ...], button: dict[str, Any]) -> None:
    errors.max_length((*path, "label"), button.get("label"), 80)
    if button.get("style") == 5:
        if not button.get("url"):
            errors.add((*path, "url"), "BASE_TYPE_REQUIRED", "This field is required")
        if "custom_id" in button:
            errors.add((*path, "custom_id"), "COMPONENT_CUSTOM_ID_NOT_ALLOWED", "Not allowed")
    elif button.get("style") in (1, 2, 3, 4):
        errors.length_between((*path, "custom_id"), button.get("custom_id"), 1, 100)
    else:
        errors.add((*path, "style"), "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5}.")


def _check_components(errors: Errors, rows: Any) -> None:
    if not isinstance(rows, list) or len(rows) > 5:
        errors.add(("components",), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        return
    for r, row in enumerate(rows):
        children = row.get("components") if isinstance(row, dict) else None
        if not isinstance(row, dict) or row.get("type") != 1 or not isinstance(children, list):
            errors.add(("components", r), "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "Invalid action row")
            continue
        if not 1 <= len(children) <= 5:
            errors.add(
                ("components", r, "components"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            )
        for c, child in enumerate(children):
            path: tuple[str | int, ...] = ("components", r, "components", c)
            if isinstance(child, dict) and child.get("type") == 2:
                _check_button(errors, path, child)
            elif isinstance(child, dict) and child.get("type") in (3, 5, 6, 7, 8):
                errors.length_between((*path, "custom_id"), child.get("custom_id"), 1, 100)


def validate_message(body: dict[str, Any], *, allow_empty: bool = False) -> None:
    """Raise 50035 (or 50006 for an empty message) for anything Discord would refuse."""
    errors = Errors()
    errors.max_length(("content",), body.get("content"), 2000)
    embeds = body.get("embeds") or []
    if not isinstance(embeds, list) or len(embeds) > 10:
        errors.add(("embeds",), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        embeds = []
    for i, embed in enumerate(embeds):
        _check_embed(errors, i, embed)
    if sum(_embed_chars(e) for e in embeds if isinstance(e, dict)) > 6000:
        errors.add(("embeds",), "MESSAGE_EMBED_TOO_LONG", "Embed size exceeds maximum size of 6000")
    if body.get("components") is not None:
        _check_components(errors, body["components"])
    mentions = body.get("allowed_mentions")
    if mentions is not None:
        parse = mentions.get("parse", []) if isinstance(mentions, dict) else None
        if not isinstance(parse, list) or not set(parse) <= ALLOWED_MENTION_TYPES:
            errors.add(("allowed_mentions", "parse"), "BASE_TYPE_CHOICES", "Invalid parse value")
    flags = body.get("flags")
    if flags is not None and (not isinstance(flags, int) or flags & ~MESSAGE_FLAGS):
        errors.add(("flags",), "MESSAGE_FLAGS_INVALID", "Invalid flags")
    errors.raise_if_any()
    has_payload = body.get("content") or embeds or body.get("components") or body.get("sticker_ids")
    if not allow_empty and not has_payload:
        raise p.discord_error(400, 50006, "Cannot send an empty message")


def _check_option(errors: Errors, path: tuple[str | int, ...], option: Any, depth: int) -> None:
    if not isinstance(option, dict):
        errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    _check_chat_name(errors, (*path, "name"), option.get("name"))
    errors.length_between((*path, "description"), option.get("description"), 1, 100)
    kind = option.get("type")
    if kind not in range(1, 12):
        errors.add((*path, "type"), "BASE_TYPE_CHOICES", "Value must be one of 1..11.")
    if len(option.get("choices") or []) > 25:
        errors.add((*path, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    _check_options(errors, path, option.get("options"), depth + 1)


def _check_options(errors: Errors, path: tuple[str | int, ...], options: Any, depth: int) -> None:
    if options is None:
        return
    if not isinstance(options, list) or len(options) > 25 or depth > 2:
        errors.add((*path, "options"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        return
    for i, option in enumerate(options):
        _check_option(errors, (*path, "options", i), option, depth)


def _check_chat_name(errors: Errors, path: tuple[str | int, ...], name: Any) -> None:
    if not isinstance(name, str) or not COMMAND_NAME.match(name) or name != name.lower():
        errors.add(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def validate_commands(body: Any) -> list[dict[str, Any]]:
    """Check a bulk-overwrite body; return it as a list of command dicts."""
    if not isinstance(body, list):
        raise p.invalid_form(p.field_error("LIST_TYPE_CONVERT", "Only iterables may be used"))
    errors = Errors()
    seen: set[tuple[int, str]] = set()
    for i, command in enumerate(body):
        if not isinstance(command, dict):
            errors.add((i,), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        kind = command.get("type", 1)
        name = command.get("name")
        if kind == 1:
            _check_chat_name(errors, (i, "name"), name)
            errors.length_between((i, "description"), command.get("description"), 1, 100)
        elif kind in (2, 3):
            errors.length_between((i, "name"), name, 1, 32)
            if command.get("description"):
                errors.add((i, "description"), "BASE_TYPE_MAX_LENGTH", "Must be empty.")
        else:
            errors.add((i, "type"), "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3}.")
        _check_options(errors, (i,), command.get("options"), 0)
        permissions = command.get("default_member_permissions")
        if permissions is not None and not (isinstance(permissions, str) and permissions.isdigit()):
            errors.add((i, "default_member_permissions"), "NUMBER_TYPE_COERCE", "Invalid bitfield")
        contexts = command.get("contexts")
        if contexts is not None and (not isinstance(contexts, list) or not set(contexts) <= {0, 1, 2}):
            errors.add((i, "contexts"), "BASE_TYPE_CHOICES", "Value must be one of {0, 1, 2}.")
        if isinstance(name, str):
            if (kind, name) in seen:
                errors.add((), "APPLICATION_COMMANDS_DUPLICATE_NAME", f"Duplicate name: {name}")
            seen.add((kind, name))
    if len(body) > 110:
        errors.add((), "BASE_TYPE_MAX_LENGTH", "Must be 110 or fewer in length.")
    errors.raise_if_any()
    return body
