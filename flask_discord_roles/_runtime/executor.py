"""What the state holds as its executor, and the work handed to it after a commit.

The executors themselves live in the engine; this module only names what they promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from flask import Flask


@dataclass
class Work:
    """Rows for an executor: deliveries and purchase notifications a commit made due, and deferred
    /claim answers whose deferral has been sent."""

    delivery_ids: set[int] = field(default_factory=set)
    notification_ids: set[int] = field(default_factory=set)
    reply_ids: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.delivery_ids or self.notification_ids or self.reply_ids)


class Executor(Protocol):
    """Runs committed work. ``submit`` is called after the commit, from the committing thread."""

    name: str

    def submit(self, app: Flask, work: Work) -> None: ...

    def ensure_started(self, app: Flask) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...
