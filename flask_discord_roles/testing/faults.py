"""Injected failures: 5xx answers, hangs, slowness and spurious 429s, reproducible with a seed.

Faults apply after authentication and rate limiting (a 5xx still used up a request in its bucket, as on
Discord) and before any change is made: an error or spurious 429 never applies the request, while a
hang (timeout) sleeps and then applies it, the nastiest real case (the client gave up, Discord did it).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["NOT_FAULTED_BY_DEFAULT", "NO_FAULT", "Fault", "FaultInjector"]

# Interaction webhooks are Discord's own path to our app; breaking them is opt-in.
NOT_FAULTED_BY_DEFAULT = frozenset({"webhook", "interaction_callback", "authorize"})


@dataclass(frozen=True)
class Fault:
    """One decision: ``kind`` is none, error, timeout or rate_limit; ``delay`` is sleep before answering."""

    kind: str = "none"
    status: int = 0
    delay: float = 0.0
    retry_after: float = 0.0


NO_FAULT = Fault()


class FaultInjector:
    """Draws one random number per eligible request, in arrival order, from a seeded generator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.configure()

    def configure(
        self,
        *,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        timeout_seconds: float = 5.0,
        slow_seconds: float = 0.0,
        rate_limit_rate: float = 0.0,
        rate_limit_retry_after: float = 0.5,
        seed: int | None = None,
        routes: Iterable[str] | None = None,
    ) -> None:
        if error_rate + timeout_rate + rate_limit_rate > 1.0:
            raise ValueError("error_rate + timeout_rate + rate_limit_rate must not exceed 1")
        with self._lock:
            self.error_rate = error_rate
            self.timeout_rate = timeout_rate
            self.timeout_seconds = timeout_seconds
            self.slow_seconds = slow_seconds
            self.rate_limit_rate = rate_limit_rate
            self.rate_limit_retry_after = rate_limit_retry_after
            self.routes = frozenset(routes) if routes is not None else None
            self._random = random.Random(seed)

    def _applies_to(self, family: str) -> bool:
        if self.routes is not None:
            return family in self.routes
        return family not in NOT_FAULTED_BY_DEFAULT

    def decide(self, family: str) -> Fault:
        with self._lock:
            if not self._applies_to(family):
                return NO_FAULT
            if not (self.error_rate or self.timeout_rate or self.rate_limit_rate):
                return Fault(delay=self.slow_seconds) if self.slow_seconds else NO_FAULT
            draw = self._random.random()
            slow = self.slow_seconds
            if draw < self.rate_limit_rate:
                return Fault("rate_limit", 429, slow, self.rate_limit_retry_after)
            draw -= self.rate_limit_rate
            if draw < self.error_rate:
                return Fault("error", self._random.choice((500, 502, 503)), slow)
            draw -= self.error_rate
            if draw < self.timeout_rate:
                return Fault("timeout", 0, slow + self.timeout_seconds)
            return Fault(delay=slow) if slow else NO_FAULT
