"""A Sphinx extension: pages whose reference part is generated from the code while the site builds.

A page holds a marker, ``<!-- generated: NAME -->``, where its generated part goes; the marker is replaced
before MyST reads the page, so the reference is never a committed copy that can fall behind the code. A
marker with an unknown name, or a generated page that lost its marker, fails the build.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import api_reference
import configuration_reference
import tenant_api_reference
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

MARKER = re.compile(r"<!--\s*generated:\s*([\w-]+)\s*-->")

GENERATORS: dict[str, Callable[[], str]] = {
    "api": api_reference.reference,
    "tenant-api": tenant_api_reference.reference,
    "configuration": configuration_reference.reference,
}
"""Marker name → what replaces it. Each page named here must hold its marker."""


def fill_in(app: Sphinx, docname: str, source: list[str]) -> None:
    found = MARKER.findall(source[0])
    if docname in GENERATORS and docname not in found:
        raise ExtensionError(f"{docname}.md lost its <!-- generated: {docname} --> marker")
    for name in found:
        if name not in GENERATORS:
            raise ExtensionError(f"{docname}.md: no generator named {name!r} (known: {sorted(GENERATORS)})")
    source[0] = MARKER.sub(lambda match: GENERATORS[match.group(1)](), source[0])


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", fill_in)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
