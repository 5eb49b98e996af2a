"""Every request the fake answered, so tests can assert on what our code actually sent."""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["INVALID_STATUSES", "CallLog", "RecordedCall"]

INVALID_STATUSES = frozenset({401, 403, 429})


@dataclass(frozen=True)
class RecordedCall:
    """One answered request. ``auth`` is bot, bearer, basic or none; ``token_suffix`` its last 6 chars.

    ``path`` is the full URL path (``/api/v10/...``); ``audit_log_reason`` is the URL-decoded header.
    ``rate_limit_scope`` is set on 429s (user, global or shared) so tests can tell them apart.
    ``time`` is when the request reached the fake (``time.monotonic()``, after any simulated latency's
    inbound half), ``discord_time`` the same instant on Discord's clock (epoch seconds, what the
    ``Date`` header and the global limit's windows go by).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    form: dict[str, str] | None
    status: int
    time: float
    auth: str
    token_suffix: str | None
    audit_log_reason: str | None = None
    rate_limit_scope: str | None = None
    body: bytes = b""
    discord_time: float = 0.0


class CallLog:
    """A thread-safe list of calls plus counters Discord itself keeps (invalid requests per IP)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []
        self._statuses: Counter[int] = Counter()
        self._invalid = 0
        # Bumped by clear(): a request that began before (a fault still sleeping) must not land in the
        # next test's log.
        self.generation = 0

    def add(self, call: RecordedCall, *, generation: int | None = None) -> None:
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            self._calls.append(call)
            self._statuses[call.status] += 1
            # Discord does not count shared-scope 429s against the invalid-request limit.
            if call.status in INVALID_STATUSES and call.rate_limit_scope != "shared":
                self._invalid += 1

    def snapshot(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def matching(self, method: str, path_pattern: str) -> list[RecordedCall]:
        pattern = re.compile(path_pattern)
        return [
            c for c in self.snapshot() if c.method == method.upper() and pattern.search(c.path) is not None
        ]

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._calls.clear()
            self._statuses.clear()
            self._invalid = 0

    def statuses(self) -> dict[int, int]:
        with self._lock:
            return dict(self._statuses)

    @property
    def invalid_requests(self) -> int:
        with self._lock:
            return self._invalid
