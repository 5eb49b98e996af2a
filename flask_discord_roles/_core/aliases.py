"""Aliases of our tables, made once per model (or table) and name, and shared by every statement.

An alias builds a proxy of each of its table's columns the first time a statement reads one of them
(about 25 µs a column; the deliveries table has thirty). Built afresh for each statement, the aliases of
the tier rule alone cost every ``/claim`` and every job the runner loaded two milliseconds of CPU.
Aliases are immutable, so statements can share them; one rule keeps that safe: a statement uses an alias
at one nesting level only (a subquery would otherwise correlate to the outer query's use of it), which
distinct names per purpose ensure.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased

T = TypeVar("T")

# Bounded: a process holds a few apps' models (tests make many); each name is one purpose.
_SIZE = 256


def alias(entity: type[T], name: str) -> type[T]:
    """``aliased(entity, name=name)``, the same object every time."""
    return cast("type[T]", _aliased(cast(Any, entity), name))


@lru_cache(maxsize=_SIZE)
def _aliased(entity: Any, name: str) -> Any:
    return aliased(entity, name=name)


@lru_cache(maxsize=_SIZE)
def table_alias(table: sa.Table, name: str) -> Any:
    """``table.alias(name)``, the same object every time."""
    return table.alias(name)
