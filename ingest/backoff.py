"""Back-off and retry plans: pure state, the clock passed in.

``Backoff`` answers "how long to wait after the n-th consecutive failure"
(exponential, capped, full jitter optional through the ``rand`` argument)
and tracks whether the failing condition was already reported, so the
caller logs a failure once when it starts and once when it recovers.

``RetryBudget`` bounds immediate retries of one transaction after a
deadlock or serialization failure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """Exponential back-off from ``initial`` seconds doubling up to ``maximum``."""

    initial: float
    maximum: float
    failures: int = 0
    failing_since: float | None = None

    def failed(self, now: float, rand: float = 1.0) -> tuple[float, bool]:
        """Record a failure at ``now``; return (delay in s, True if this failure starts an outage).

        ``rand`` in [0, 1] scales the delay (pass ``random.random()`` for
        jitter; the default keeps tests deterministic), never below a tenth of ``initial``.
        """
        first = self.failures == 0
        self.failures += 1
        if first:
            self.failing_since = now
        delay = min(self.maximum, self.initial * 2 ** min(self.failures - 1, 30))
        return max(self.initial / 10, delay * min(max(rand, 0.0), 1.0)), first

    def succeeded(self, now: float) -> float | None:
        """Record a success; return the outage length in s if one just ended, else None."""
        if self.failures == 0:
            return None
        since = self.failing_since if self.failing_since is not None else now
        self.failures = 0
        self.failing_since = None
        return now - since


@dataclass(slots=True)
class RetryBudget:
    """At most ``attempts`` tries of one unit of work (the first one included)."""

    attempts: int
    used: int = 0

    def try_again(self) -> bool:
        """Call after a retryable failure: True if another try is allowed."""
        self.used += 1
        return self.used < self.attempts
