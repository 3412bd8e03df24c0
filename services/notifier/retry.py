"""When to try a failed delivery again: exponential backoff with full jitter, Retry-After first.

Full jitter (a uniform delay between 0 and the exponential cap) spreads the retries of many
deliveries that failed together, so a receiver coming back is not hit by all of them at once.
A server's ``Retry-After`` is a floor: we never come back earlier than it asked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 2.0  # cap of the first retry's delay
    factor: float = 2.0
    max_delay_s: float = 600.0
    max_attempts: int = 8  # attempts in all (the first one included), then `dead`
    max_retry_after_s: float = 3600.0  # a server asking for more is capped here
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 = the first)."""
        cap = min(self.max_delay_s, self.base_s * self.factor ** max(attempts - 1, 0))
        # Full jitter, but never below a tenth of the cap so a retry is never immediate.
        wait = self.rng.uniform(cap * 0.1, cap)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after_s))
        return wait

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
