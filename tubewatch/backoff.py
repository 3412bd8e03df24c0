"""Exponential backoff with jitter, for whatever is retried after a transient failure.

The poller retries rate limits and 5xx answers with it (they clear up on their own; retrying
at once would hit the same wall and spend a quota unit each time), and the change engine
waits with it after aborted transactions. Delays grow ``base_s · factor^attempt`` up to
``max_s``, and each one is drawn uniformly from the upper half of that ("equal jitter"), so
several instances do not retry in lockstep while a retry still waits at least half the
nominal delay.

``sleep`` and ``rng`` are injectable so tests run without waiting; the poller passes its stop
event's ``wait`` so shutdown interrupts a backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    attempts: int = 4  # tries in all, the first one included
    sleep: Callable[[float], object] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        nominal = min(self.max_s, self.base_s * self.factor**retry)
        return self.rng.uniform(nominal / 2, nominal)

    def wait(self, retry: int) -> float:
        """Sleeps before retry ``retry``; returns the delay used."""
        seconds = self.delay(retry)
        self.sleep(seconds)
        return seconds
