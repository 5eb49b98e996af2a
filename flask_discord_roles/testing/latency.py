"""Simulated network distance between a client and the fake: each request sleeps half a round trip on
the way in (that is when "Discord" sees and counts it) and the other half on the way out.

Each request sleeps in its own server thread, so a slow trip never holds back another request.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

__all__ = ["Latency"]


@dataclass
class Latency:
    """How far away the fake is: ``round_trip`` seconds, each leg varying by up to ``jitter`` / 2.

    ``seed`` makes the draws repeatable (in the order requests make them).
    """

    round_trip: float = 0.0
    jitter: float = 0.0
    seed: int | None = None
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.round_trip < 0 or self.jitter < 0:
            raise ValueError("round_trip and jitter are seconds, >= 0")
        if self.jitter > self.round_trip:
            raise ValueError("jitter may not exceed round_trip: a leg cannot take less than no time")
        self._random = random.Random(self.seed)

    def leg(self) -> float:
        """Seconds one leg (request in, or response out) takes this time."""
        if not self.jitter:
            return self.round_trip / 2
        with self._lock:
            spread = self._random.uniform(-self.jitter / 2, self.jitter / 2)
        return self.round_trip / 2 + spread
