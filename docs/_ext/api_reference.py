"""The API reference, in Markdown, from the public modules' ``__all__``: public names, each once.

A module's section documents what its ``__all__`` exports. A name several modules export (``ValidationError``
in every service module) is documented once, in its home: the public module that defines it, else the first
module below that exports it other than the package root; the others link there. The lists are read from
the code while the site builds, so a name added to ``__all__`` is documented without editing a page.
"""

from __future__ import annotations

import importlib
import inspect
import os
from types import ModuleType
from typing import Any

from blinker import Signal
from sphinx.pycode import ModuleAnalyzer

PACKAGE = "flask_discord_roles"
MODULES = (
    PACKAGE,
    f"{PACKAGE}.orders",
    f"{PACKAGE}.signals",
    f"{PACKAGE}.bots",
    f"{PACKAGE}.guilds",
    f"{PACKAGE}.store_settings",
    f"{PACKAGE}.tokens",
    f"{PACKAGE}.diagnostics",
    f"{PACKAGE}.customers",
    f"{PACKAGE}.deliveries",
    f"{PACKAGE}.grants",
    f"{PACKAGE}.backfills",
    f"{PACKAGE}.reconcile",
    f"{PACKAGE}.linked_roles",
    f"{PACKAGE}.checkout",
    f"{PACKAGE}.claim_codes",
    f"{PACKAGE}.celery",
    f"{PACKAGE}.metrics",
    f"{PACKAGE}.codes",
    f"{PACKAGE}.errors",
    f"{PACKAGE}.migrations",
    f"{PACKAGE}.testing",
    f"{PACKAGE}.discord",
)
"""The public modules, in the order the page shows them."""


def exported(module: ModuleType) -> list[tuple[str, Any]]:
    """``module``'s ``__all__``, with the objects; submodules are sections of their own, not members."""
    return [(name, obj) for name in module.__all__ if not inspect.ismodule(obj := getattr(module, name))]


def _shared(obj: Any) -> bool:
    """Whether ``obj`` is one thing however many modules export it (not a number or a string)."""
    return inspect.isclass(obj) or inspect.isroutine(obj) or isinstance(obj, Signal)


def homes() -> dict[int, str]:
    """For each class, function or signal exported, the full name it is documented under."""
    modules = [importlib.import_module(name) for name in MODULES]
    home: dict[int, str] = {}
    for module in modules:  # first, where the object is defined, if that is a public module
        for name, obj in exported(module):
            if _shared(obj) and getattr(obj, "__module__", None) == module.__name__:
                home.setdefault(id(obj), f"{module.__name__}.{name}")
    for module in [*modules[1:], modules[0]]:  # then the first module that exports it, the root last
        for name, obj in exported(module):
            if _shared(obj):
                home.setdefault(id(obj), f"{module.__name__}.{name}")
    return home


def directive(full_name: str, obj: Any, attribute_docs: set[str]) -> list[str]:
    """The autodoc directive for one exported object, named by the path a reader imports it from.

    ``attribute_docs``: the names the exporting module documents with a docstring or ``#:`` comment.
    """
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return [f".. autoexception:: {full_name}", "   :members:"]
    if inspect.isclass(obj):
        return [f".. autoclass:: {full_name}", "   :members:"]
    if inspect.isroutine(obj):
        return [f".. autofunction:: {full_name}"]
    if isinstance(obj, Signal):
        return [f".. autodata:: {full_name}", "   :no-value:"]
    if full_name.rpartition(".")[2] in attribute_docs:
        return [f".. autodata:: {full_name}"]
    # A constant the module imports has no docstring of its own here: autodoc would show its type's
    # (int's, tuple's), so the page shows just its value (not a path, which is only this machine's).
    if isinstance(obj, str) and os.path.isabs(obj):
        return [f".. py:data:: {full_name}"]
    return [f".. py:data:: {full_name}", f"   :value: {obj!r}"]


def reference() -> str:
    home = homes()
    sections = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        rst = [f".. automodule:: {module_name}", ""]
        attribute_docs = {name for _, name in ModuleAnalyzer.for_module(module_name).find_attr_docs()}
        elsewhere = []
        for name, obj in exported(module):
            full_name = f"{module_name}.{name}"
            if _shared(obj) and home[id(obj)] != full_name:
                elsewhere.append(f":py:obj:`{name} <{home[id(obj)]}>`")
            else:
                rst += [*directive(full_name, obj, attribute_docs), ""]
        if elsewhere:
            rst.append(f"Also exported here: {', '.join(elsewhere)}.")
        sections.append("\n".join([f"## `{module_name}`", "", "```{eval-rst}", *rst, "```", ""]))
    return "\n".join(sections)


def documented_names() -> set[str]:
    """Every public name, as ``module.name``, that the page documents or links to its home."""
    return {
        f"{module_name}.{name}"
        for module_name in MODULES
        for name, _ in exported(importlib.import_module(module_name))
    }
