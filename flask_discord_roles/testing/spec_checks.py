"""How each exchange with FakeDiscord measured up to Discord's spec: the switches, the breaks, the counts.

Kept apart from :mod:`flask_discord_roles.testing.spec` so a fake that checks nothing never parses the spec
nor needs jsonschema-rs.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from flask_discord_roles.testing.spec import DiscordSpec, Side, SpecBreak, load_spec

__all__ = ["SpecChecks"]


class SpecChecks:
    """``check`` records breaks; ``strict`` also refuses a request that breaks the spec (400, 50035).

    Thread-safe: the fake's server thread records while a test reads. ``counts`` holds, per side, how
    many exchanges were checked and how many broke (an exchange with several breaks counts once).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.check = False
        self.strict = False
        self._breaks: list[SpecBreak] = []
        self._counts: Counter[str] = Counter()
        # Bumped by clear(): an exchange that began before (a fault still sleeping) lands in no later test.
        self.generation = 0

    @property
    def active(self) -> bool:
        return self.check or self.strict

    @property
    def spec(self) -> DiscordSpec:
        return load_spec()

    def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Sequence[str]],
        content_type: str | None,
        body: bytes,
        generation: int,
    ) -> list[SpecBreak]:
        found = self.spec.check_request(method, path, query, content_type, body)
        self._note(Side.REQUEST, found, generation)
        return found

    def response(
        self, method: str, path: str, status: int, content_type: str | None, body: bytes, generation: int
    ) -> list[SpecBreak]:
        found = self.spec.check_response(method, path, status, content_type, body)
        self._note(Side.RESPONSE, found, generation)
        return found

    def interaction_response(self, url: str, answer: Any) -> list[SpecBreak]:
        found = self.spec.check_interaction_response(url, answer)
        self._note(Side.INTERACTION_RESPONSE, found, self.generation)
        return found

    def _note(self, side: Side, found: list[SpecBreak], generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            self._counts[f"{side} checked"] += 1
            if found:
                self._counts[f"{side} broken"] += 1
                self._breaks.extend(found)

    @property
    def breaks(self) -> list[SpecBreak]:
        with self._lock:
            return list(self._breaks)

    def counts(self) -> dict[str, int]:
        """``{"request checked": n, "request broken": n, "response checked": ...}`` since the last clear."""
        with self._lock:
            return {
                f"{side} {what}": self._counts[f"{side} {what}"]
                for side in Side
                for what in ("checked", "broken")
            }

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._breaks.clear()
            self._counts.clear()
