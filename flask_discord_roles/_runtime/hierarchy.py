"""A server's role order as the store's bot last read it, kept a few seconds to explain refusals.

A burst of role changes refused for one cause (a role dragged above the bot) would otherwise read the
server's roles and the bot's member once per refusal, and the reads of a busy server queue behind each
other until one cannot be made at all. The first read explains the rest. An entry is only trusted to
explain a refusal Discord has just given: one that says the role *could* be given contradicts Discord
and is read again (see :mod:`.failures`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MEMO_SECONDS = 10.0
"""How long a read explains later refusals: about one of Discord's rate-limit windows for the reads."""
MAX_ENTRIES = 1024


@dataclass(frozen=True)
class Hierarchy:
    """The guild's roles and the roles the bot holds there, as read together."""

    roles: list[dict[str, Any]]
    bot_role_ids: list[str]


class HierarchyMemo:
    """(bot user id, guild id) → :class:`Hierarchy` read at most ``ttl`` seconds ago. Thread safe."""

    def __init__(self, ttl: float = MEMO_SECONDS, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[float, Hierarchy]] = OrderedDict()

    def __repr__(self) -> str:
        return f"<HierarchyMemo ttl={self.ttl:g}s entries={len(self._entries)}>"

    def get(self, bot_user_id: str, guild_id: str) -> Hierarchy | None:
        with self._lock:
            entry = self._entries.get((bot_user_id, guild_id))
            if entry is None or self._clock() - entry[0] >= self.ttl:
                return None
            return entry[1]

    def put(self, bot_user_id: str, guild_id: str, hierarchy: Hierarchy) -> None:
        with self._lock:
            key = (bot_user_id, guild_id)
            self._entries[key] = (self._clock(), hierarchy)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
