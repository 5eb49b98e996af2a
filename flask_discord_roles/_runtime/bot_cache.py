"""Which bot answers for a store, remembered for a few seconds per process.

Every interaction needs the store's public key before it may read anything else, PING included. Reading
it from the database each time would cost a round trip on the one request Discord times most closely,
and let anyone make us query the database by posting to made-up slugs. Bots change rarely (a store
saves a new token, or Discord revokes one), so an entry lives ``DISCORD_ROLES_BOT_CACHE_SECONDS``;
saving a bot forgets its entry in this process at once, other processes notice within that time.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_ENTRIES = 4096
"""Stores remembered at most (least recently used go first), so made-up slugs cannot grow it."""


@dataclass(frozen=True)
class InteractionBot:
    """The store's bot as an interaction needs it: who it is and whether it may answer."""

    id: int
    store_id: str
    application_id: str
    public_key: str
    is_enabled: bool


class BotCache:
    """Store id → its :class:`InteractionBot` (or None: no bot), for ``ttl`` seconds."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        # store id -> (when it was read, the bot or None)
        self._entries: OrderedDict[str, tuple[float, InteractionBot | None]] = OrderedDict()

    def __repr__(self) -> str:
        return f"<BotCache ttl={self.ttl:g}s entries={len(self._entries)}>"

    def get(
        self,
        store_id: str,
        load: Callable[[], InteractionBot | None],
        *,
        max_age: float | None = None,
    ) -> InteractionBot | None:
        """The bot of ``store_id`` read at most ``max_age`` (default: the TTL) seconds ago, else ``load()``.

        A caller that finds the cached bot wrong (a signature it cannot verify, no bot at all) asks
        again with a small ``max_age``: a bot saved in another process is then seen at once, while
        junk requests still cannot make more than one database read per ``max_age``.
        """
        now = self._clock()
        limit = self.ttl if max_age is None else min(max_age, self.ttl)
        with self._lock:
            entry = self._entries.get(store_id)
            if entry is not None and now - entry[0] < limit:
                self._entries.move_to_end(store_id)
                return entry[1]
        bot = load()
        if self.ttl > 0:
            with self._lock:
                self._entries[store_id] = (now, bot)
                self._entries.move_to_end(store_id)
                while len(self._entries) > MAX_ENTRIES:
                    self._entries.popitem(last=False)
        return bot

    def forget(self, store_id: str) -> None:
        """Drop ``store_id``'s entry (its bot was just saved or switched off in this process)."""
        with self._lock:
            self._entries.pop(store_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
