"""Discord's published OpenAPI description, held against every exchange with FakeDiscord.

The spec (``discord_spec/openapi.json``, vendored byte for byte from ``discord/discord-api-spec``) is read
with the conventions its own README states:

- a union (``oneOf`` or ``anyOf``) may match more than one branch, so every ``oneOf`` is read as ``anyOf``;
- a field typed integer also accepts a string that parses as one ("Our API accepts strings for int fields
  if they are parseable as ints");

and with the corrections listed in :mod:`flask_discord_roles.testing.spec_errata`, where Discord's docs and
the spec disagree and the README says to follow the docs.

Each JSON Schema is compiled once (jsonschema-rs) and cached; the 1.2 MB document is parsed once per
process, on first use.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, quote

from flask_discord_roles.testing.spec_errata import ERRATA, FROM_THE_DOCS, exemption_for

__all__ = [
    "INSTALL_HINT",
    "DiscordSpec",
    "Operation",
    "Part",
    "Side",
    "SpecBreak",
    "SpecUnavailable",
    "form_errors",
    "load_spec",
    "spec_source",
]

INSTALL_HINT = (
    "checking exchanges against Discord's OpenAPI spec needs jsonschema-rs: "
    "pip install flask-discord-roles[testing]"
)
SPEC_URI = "https://discord.com/api/v10/openapi.json"
API_PREFIX = re.compile(r"^/api(?:/v10)?(?=/)")
INTEGER_STRING = r"^-?[0-9]+$"
NUMBER = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")

# Discord's own codes for a field's error, keyed by the JSON Schema keyword the value broke. Discord's docs
# show these in their "Error Messages" examples; a keyword without one gets the generic BASE_TYPE_INVALID.
FIELD_ERROR_CODES = {
    "Required": "BASE_TYPE_REQUIRED",
    "MaxLength": "BASE_TYPE_MAX_LENGTH",
    "MinLength": "BASE_TYPE_MIN_LENGTH",
    "MaxItems": "BASE_TYPE_MAX_LENGTH",
    "MinItems": "BASE_TYPE_MIN_LENGTH",
    "Enum": "BASE_TYPE_CHOICES",
    "Constant": "BASE_TYPE_CHOICES",
    "Maximum": "NUMBER_TYPE_MAX",
    "Minimum": "NUMBER_TYPE_MIN",
    "Pattern": "BASE_TYPE_BAD_VALUE",
    "AdditionalProperties": "BASE_TYPE_BAD_FIELD",
}
MESSAGE_LIMIT = 200
REQUIRED = "This field is required"  # Discord's own wording for BASE_TYPE_REQUIRED
TYPE_ERROR_CODES = {
    "integer": "NUMBER_TYPE_COERCE",
    "number": "NUMBER_TYPE_COERCE",
    "string": "STRING_TYPE_CONVERT",
    "boolean": "BOOLEAN_TYPE_CONVERT",
    "object": "DICT_TYPE_CONVERT",
    "array": "LIST_TYPE_CONVERT",
}


class SpecUnavailable(RuntimeError):
    """jsonschema-rs is not installed, so exchanges cannot be checked against the spec."""


class Side(enum.StrEnum):
    """Which half of an exchange broke the spec."""

    REQUEST = "request"  # what the code under test sent to the fake
    RESPONSE = "response"  # what the fake answered
    INTERACTION_RESPONSE = "interaction response"  # what an app answered to an interaction the fake sent


class Part(enum.StrEnum):
    """Which part of a message broke the spec."""

    BODY = "body"
    QUERY = "query"
    PATH = "path"  # a path parameter
    STATUS = "status"
    CONTENT_TYPE = "content-type"
    OPERATION = "operation"  # the call itself: the spec has no such operation


@dataclass(frozen=True)
class SpecBreak:
    """One way an exchange breaks the spec: ``part`` (body, query, path, status, content-type, operation)
    and ``location`` (the JSON path inside it) say where, ``reason`` what, ``code`` Discord's error code.

    ``discord_refuses`` is False for a request Discord serves anyway (a body it ignores, a path it does not
    have): ``strict_spec`` answers 50035 only for the others.
    """

    side: Side
    method: str
    path: str
    operation: str | None
    part: Part
    location: tuple[str | int, ...]
    reason: str
    code: str = "BASE_TYPE_INVALID"
    status: int | None = None
    discord_refuses: bool = True

    @property
    def where(self) -> str:
        """``body $.embeds[0].title``, ``query limit``, ``status`` ... as a person would point at it."""
        if self.part in (Part.QUERY, Part.PATH):
            return f"{self.part} {'.'.join(str(x) for x in self.location)}"
        if self.part != Part.BODY:
            return self.part
        return "body " + json_path(self.location)

    def __str__(self) -> str:
        status = f" ({self.status})" if self.status is not None else ""
        return f"{self.method} {self.path}{status}: {self.side} {self.where}: {self.reason}"


def json_path(location: Sequence[str | int]) -> str:
    text = "$"
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


@dataclass(frozen=True)
class Operation:
    """One operation of the spec: ``template`` is its path as the spec writes it, without ``/api/v10``."""

    method: str
    template: str
    operation_id: str
    pointer: str
    node: dict[str, Any]
    parameters: tuple[dict[str, Any], ...]


def spec_source() -> dict[str, str]:
    """Where the vendored spec came from: repository, commit, date, path."""
    data: dict[str, str] = json.loads((files(__package__) / "discord_spec" / "SOURCE.json").read_text())
    return data


@functools.cache
def load_spec() -> DiscordSpec:
    """The vendored spec with its conventions and errata applied, parsed once per process."""
    try:
        import jsonschema_rs  # noqa: F401  (optional: the `testing` extra)
    except ImportError:
        raise SpecUnavailable(INSTALL_HINT) from None
    raw = (files(__package__) / "discord_spec" / "openapi.json").read_bytes()
    return DiscordSpec(json.loads(raw))


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _apply_conventions(node: Any) -> None:
    """The README's reading of unions and integers, applied in place to every schema in the document."""
    if isinstance(node, list):
        for item in node:
            _apply_conventions(item)
        return
    if not isinstance(node, dict):
        return
    if "oneOf" in node:
        branches = node.pop("oneOf")
        if "anyOf" in node:
            node.setdefault("allOf", []).append({"anyOf": branches})
        else:
            node["anyOf"] = branches
    kinds = node.get("type")
    names = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
    if "integer" in names and "string" not in names:
        node["type"] = [*names, "string"]
        node["pattern"] = INTEGER_STRING
        if "enum" in node:
            node["enum"] = [*node["enum"], *(str(v) for v in node["enum"] if _is_integer(v))]
    # Enumerations are an integer type with one `const` branch per value: each value as a string too.
    if _is_integer(node.get("const")):
        node["enum"] = [node["const"], str(node.pop("const"))]
    for value in node.values():
        _apply_conventions(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class DiscordSpec:
    """Matches a call to its operation and checks each part of it; thread-safe."""

    def __init__(self, document: dict[str, Any]) -> None:
        """Takes ownership of ``document`` (a freshly parsed spec): corrections are made in place."""
        import jsonschema_rs

        self._jsonschema = jsonschema_rs
        for erratum in ERRATA:
            erratum.apply(document)
        _apply_conventions(document)
        self.document = document
        self._registry = jsonschema_rs.Registry([(SPEC_URI, document)], draft=jsonschema_rs.Draft202012)
        self._validators: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._operations: dict[int, list[tuple[tuple[str | None, ...], dict[str, Operation]]]] = {}
        self._index(document["paths"])

    # -- matching -------------------------------------------------------------------------------

    def _index(self, paths: Mapping[str, Any]) -> None:
        for template, item in paths.items():
            shared = tuple(item.get("parameters", ()))
            by_method: dict[str, Operation] = {}
            for method, node in item.items():
                if method == "parameters":
                    continue
                own = tuple(node.get("parameters", ()))
                names = {(x["name"], x["in"]) for x in own}
                parameters = own + tuple(x for x in shared if (x["name"], x["in"]) not in names)
                by_method[method.upper()] = Operation(
                    method.upper(),
                    template,
                    node.get("operationId", f"{method} {template}"),
                    _pointer("paths", template, method),
                    node,
                    parameters,
                )
            segments = tuple(None if s.startswith("{") else s for s in template.strip("/").split("/"))
            self._operations.setdefault(len(segments), []).append((segments, by_method))
        # A literal segment wins over a parameter in the same place (/users/@me before /users/{user_id}).
        for candidates in self._operations.values():
            candidates.sort(key=lambda c: tuple(s is None for s in c[0]))

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation ``method path`` calls (``path`` with or without ``/api/v10``), or None."""
        parts = API_PREFIX.sub("", path).strip("/").split("/")
        for segments, by_method in self._operations.get(len(parts), ()):
            if all(s is None or s == part for s, part in zip(segments, parts, strict=True)):
                return by_method.get(method.upper())
        return None

    def path_parameters(self, operation: Operation, path: str) -> dict[str, str]:
        parts = API_PREFIX.sub("", path).strip("/").split("/")
        names = operation.template.strip("/").split("/")
        return {n[1:-1]: v for n, v in zip(names, parts, strict=True) if n.startswith("{")}

    # -- validation -----------------------------------------------------------------------------

    def validator(self, pointer: str) -> Any:
        """The compiled validator for the schema at ``pointer`` in the (corrected) document."""
        found = self._validators.get(pointer)
        if found is None:
            # Formats too (date-time, uri, …): Discord sends real timestamps, not just strings.
            found = self._jsonschema.Draft202012Validator(
                {"$ref": SPEC_URI + quote(pointer, safe="#/~@")},
                registry=self._registry,
                validate_formats=True,
            )
            with self._lock:
                self._validators[pointer] = found
        return found

    def errors(self, pointer: str, instance: Any) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
        """(location, reason, Discord code) for each way ``instance`` breaks the schema at ``pointer``."""
        yield from _explain(self.validator(pointer).iter_errors(instance))

    def check_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Sequence[str]],
        content_type: str | None,
        body: bytes,
    ) -> list[SpecBreak]:
        """How a request breaks the spec (empty when it conforms, or when it is exempt)."""
        method = method.upper()
        if exemption_for(method, path) is not None:
            return []
        operation = self.operation(method, path)
        if operation is None:
            reason = "the spec has no such operation"
            return [
                SpecBreak(Side.REQUEST, method, path, None, Part.OPERATION, (), reason, discord_refuses=False)
            ]
        found = [
            *self._check_path(operation, method, path),
            *self._check_query(operation, method, path, query),
        ]
        found += self._check_body(operation, method, path, content_type, body)
        if operation.node.get(FROM_THE_DOCS):
            # Not Discord's JSON API: it answers these with its own errors, never 50035.
            found = [dataclasses.replace(b, discord_refuses=False) for b in found]
        return found

    def check_response(
        self, method: str, path: str, status: int, content_type: str | None, body: bytes
    ) -> list[SpecBreak]:
        """How an answer breaks the spec for its operation and status."""
        method = method.upper()
        if exemption_for(method, path, status) is not None:
            return []
        operation = self.operation(method, path)
        if operation is None:
            return []  # the request already broke the spec; its answer has nothing to be held to
        responses = operation.node.get("responses", {})
        key = next(
            (k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses),
            None,
        )

        def broken(
            part: Part, location: tuple[str | int, ...], reason: str, code: str = "BASE_TYPE_INVALID"
        ) -> SpecBreak:
            operation_id = operation.operation_id
            return SpecBreak(Side.RESPONSE, method, path, operation_id, part, location, reason, code, status)

        if key is None:
            return [
                broken(Part.STATUS, (), f"{status} is not an answer the spec lists ({', '.join(responses)})")
            ]
        content = self._resolve(responses[key]).get("content") or {}
        if not content:
            return [broken(Part.BODY, (), "the spec says this answer has no body")] if body else []
        media = (content_type or "").split(";")[0].strip()
        if media not in content:
            return [broken(Part.CONTENT_TYPE, (), f"{media or 'no content type'}, not {', '.join(content)}")]
        try:
            instance = json.loads(body)
        except ValueError:
            return [broken(Part.BODY, (), "the body is not JSON")]
        pointer = _pointer("paths", operation.template, operation.method.lower(), "responses", key)
        if "$ref" in responses[key]:
            pointer = responses[key]["$ref"]
        pointer += "/" + _pointer("content", media, "schema")[2:]
        return [
            broken(Part.BODY, where, reason, code) for where, reason, code in self.errors(pointer, instance)
        ]

    def check_interaction_response(self, url: str, body: Any) -> list[SpecBreak]:
        """An app's answer to an interaction, held to the spec's interaction-callback request body."""
        operation = self.operation("POST", "/interactions/{interaction_id}/{interaction_token}/callback")
        if operation is None:
            raise LookupError("the spec has no interaction callback operation")
        pointer = (
            operation.pointer + "/" + _pointer("requestBody", "content", "application/json", "schema")[2:]
        )
        return [
            SpecBreak(
                Side.INTERACTION_RESPONSE, "POST", url, operation.operation_id, Part.BODY, where, reason, code
            )
            for where, reason, code in self.errors(pointer, body)
        ]

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _check_path(self, operation: Operation, method: str, path: str) -> list[SpecBreak]:
        values = self.path_parameters(operation, path)
        found = []
        for index, parameter in enumerate(operation.parameters):
            if parameter["in"] != "path" or parameter["name"] not in values:
                continue
            pointer = self._parameter_pointer(operation, parameter, index)
            for _, reason, code in self.errors(pointer, values[parameter["name"]]):
                found.append(
                    SpecBreak(
                        Side.REQUEST,
                        method,
                        path,
                        operation.operation_id,
                        Part.PATH,
                        (parameter["name"],),
                        reason,
                        code,
                    )
                )
        return found

    def _parameter_pointer(self, operation: Operation, parameter: dict[str, Any], index: int) -> str:
        own = operation.node.get("parameters", ())
        if any(x is parameter for x in own):
            return operation.pointer + f"/parameters/{index}/schema"
        shared = self.document["paths"][operation.template]["parameters"]
        position = next(i for i, x in enumerate(shared) if x is parameter)
        return _pointer("paths", operation.template, "parameters", str(position), "schema")

    def _check_query(
        self, operation: Operation, method: str, path: str, query: Mapping[str, Sequence[str]]
    ) -> list[SpecBreak]:
        declared = {x["name"]: (i, x) for i, x in enumerate(operation.parameters) if x["in"] == "query"}
        found = []

        def broken(name: str, reason: str, code: str) -> None:
            found.append(
                SpecBreak(
                    Side.REQUEST, method, path, operation.operation_id, Part.QUERY, (name,), reason, code
                )
            )

        for name, (_, parameter) in declared.items():
            if parameter.get("required") and name not in query:
                broken(name, "this query parameter is required", "BASE_TYPE_REQUIRED")
        for name, values in query.items():
            if name not in declared:
                broken(name, f"not a query parameter of {operation.operation_id}", "BASE_TYPE_BAD_FIELD")
                continue
            index, parameter = declared[name]
            pointer = self._parameter_pointer(operation, parameter, index)
            for value in values:
                problems = [list(self.errors(pointer, c)) for c in _query_readings(value)]
                if all(problems):
                    _, reason, code = problems[0][0]
                    broken(name, reason, code)
        return found

    def _check_body(
        self, operation: Operation, method: str, path: str, content_type: str | None, body: bytes
    ) -> list[SpecBreak]:
        def broken(
            location: tuple[str | int, ...], reason: str, code: str, part: Part = Part.BODY
        ) -> SpecBreak:
            return SpecBreak(Side.REQUEST, method, path, operation.operation_id, part, location, reason, code)

        spec_body = operation.node.get("requestBody")
        if spec_body is None:
            if not body:
                return []
            ignored = broken((), "this operation takes no body", "BASE_TYPE_BAD_FIELD")
            return [dataclasses.replace(ignored, discord_refuses=False)]
        if not body:
            required = spec_body.get("required", False)
            return [broken((), "this operation needs a body", "BASE_TYPE_REQUIRED")] if required else []
        media = (content_type or "").split(";")[0].strip()
        content = spec_body.get("content", {})
        if media not in content:
            reason = f"{media or 'no content type'}, not {', '.join(content)}"
            return [broken((), reason, "CONTENT_TYPE_INVALID", Part.CONTENT_TYPE)]
        instance = _parse_body(media, content_type or "", body)
        if instance is _UNREADABLE:
            return [broken((), f"the body is not valid {media}", "BASE_TYPE_INVALID")]
        pointer = operation.pointer + "/" + _pointer("requestBody", "content", media, "schema")[2:]
        return [broken(where, reason, code) for where, reason, code in self.errors(pointer, instance)]


_UNREADABLE = object()


def _parse_body(media: str, content_type: str, body: bytes) -> Any:
    if media == "application/json":
        try:
            return json.loads(body)
        except ValueError:
            return _UNREADABLE
    if media == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return _UNREADABLE
        return {k: v[0] if len(v) == 1 else v for k, v in pairs.items()}
    # multipart/form-data: the JSON part (payload_json) is what the schema describes; files are opaque.
    from email import policy
    from email.parser import BytesParser

    head = b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
    message = BytesParser(policy=policy.default).parsebytes(head + body)
    for part in message.iter_parts() if message.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == "payload_json":
            payload = part.get_payload(decode=True)
            try:
                return json.loads(payload if isinstance(payload, bytes) else b"")
            except ValueError:
                return _UNREADABLE
    return {}


def _query_readings(value: str) -> Iterator[Any]:
    """A query value as the schema may mean it: the text itself, or the boolean/number it spells."""
    yield value
    if value.lower() in ("true", "false"):
        yield value.lower() == "true"
    if NUMBER.match(value):
        yield float(value)


def _explain(errors: Iterable[Any]) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    for error in errors:
        kind = error.kind
        name = type(kind).__name__
        location = tuple(error.instance_path)
        if name == "AnyOf":
            # Report the branch that came closest, so the path points at the field: the one whose first
            # error lies deepest (it got furthest before failing), then the one with fewest errors.
            branches = [list(_explain(branch)) for branch in kind.context]
            closest = max(
                (b for b in branches if b),
                key=lambda b: (min(len(c[0]) for c in b), -len(b)),
                default=[],
            )
            if closest and all(len(c[0]) > len(location) for c in closest):
                yield from closest
                continue
            # Every branch failed right here: say what each wanted (but "or null" goes without saying).
            here = [c for b in branches for c in b if c[0] == location and "null" not in c[1]]
            if here:
                yield location, " or ".join(dict.fromkeys(c[1] for c in here)), here[0][2]
            else:
                yield location, "matches none of the union's branches", "BASE_TYPE_INVALID"
            continue
        if name == "Required":
            yield (*location, kind.property), REQUIRED, FIELD_ERROR_CODES[name]
            continue
        if name == "Type":
            types = [str(t) for t in (kind.types if isinstance(kind.types, list) else [kind.types])]
            wanted = next((t for t in types if t != "null"), "")
            code = TYPE_ERROR_CODES.get(wanted, "BASE_TYPE_INVALID")
            yield location, _shorten(error.message), code
            continue
        yield location, _message(name, kind, error.message), FIELD_ERROR_CODES.get(name, "BASE_TYPE_INVALID")


def _message(name: str, kind: Any, fallback: str) -> str:
    """Discord's own wording where we know it (lengths), else the validator's, cut to a readable size."""
    if name in ("MaxLength", "MaxItems"):
        return f"Must be {kind.limit} or fewer in length."
    if name in ("MinLength", "MinItems"):
        return f"Must be {kind.limit} or more in length."
    return _shorten(fallback)


def _shorten(message: str) -> str:
    # The validator quotes the whole value: a 5 kB string would drown the break it explains.
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"


def form_errors(breaks: Iterable[SpecBreak]) -> dict[str, Any]:
    """Discord's nested ``errors`` object of a 50035 answer for the breaks Discord refuses (may be empty)."""
    tree: dict[str, Any] = {}
    for found in breaks:
        if not found.discord_refuses:
            continue
        node = tree
        for part in found.location:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": found.code, "message": found.reason})
    return tree
