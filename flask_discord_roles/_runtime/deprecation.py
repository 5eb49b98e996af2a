"""Import paths we moved: the old name still answers, with a warning that says where it lives now.

A deprecated module keeps its ``__all__`` and hands each name to :class:`MovedNames`::

    _MOVED = MovedNames(__name__, generate_key=(generate_key, "import it from flask_discord_roles"))

    def __getattr__(name: str) -> Any:
        return _MOVED.get(name)

The warning is raised when a name is read (``from old.path import name`` reads it), pointing at the
caller's line, so a host sees which of its imports to change.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["REMOVED_IN", "MovedNames"]

REMOVED_IN = "1.0"


class MovedNames:
    """The names a deprecated module still offers: each maps to (the object, what to write instead)."""

    def __init__(self, module: str, **names: tuple[Any, str]) -> None:
        self.module = module
        self.names = names

    def get(self, name: str) -> Any:
        try:
            value, advice = self.names[name]
        except KeyError:
            raise AttributeError(f"module {self.module!r} has no attribute {name!r}") from None
        warnings.warn(
            f"{self.module}.{name} is deprecated and goes away in {REMOVED_IN}: {advice}",
            DeprecationWarning,
            stacklevel=3,  # the caller of the module's __getattr__
        )
        return value
