"""When to publish again after a failure: a pure gate with exponential backoff and a probe.

States (the clock, in monotonic seconds, is passed in)::

    open ──failure──▶ waiting(until) ──time passes──▶ probing ──success──▶ open
                         ▲                               │
                         └──────────failure──────────────┘ (delay doubles, capped)

``window(now, max_inflight)`` says how many batches may be in flight: all of
them when open, none while waiting, one while probing, so a dead link costs
one timed-out batch per backoff step instead of a whole window of them.
Failures reported while already waiting (the rest of a window timing out
together) do not lengthen the delay. A success resets the delay.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RetryGate:
    base_s: float = 0.5
    cap_s: float = 30.0
    _delay: float = 0.0
    _until: float | None = None  # None: open (or probing once the wait is over)
    _failed: bool = False

    @property
    def failing(self) -> bool:
        return self._failed

    def failure(self, now: float) -> None:
        if self._until is not None and now < self._until:
            return  # the same outage, reported by another batch of the window
        self._delay = self.base_s if not self._failed else min(self._delay * 2, self.cap_s)
        self._until = now + self._delay
        self._failed = True

    def success(self) -> None:
        self._failed = False
        self._delay = 0.0
        self._until = None

    def window(self, now: float, max_inflight: int) -> int:
        if not self._failed:
            return max_inflight
        if self._until is not None and now < self._until:
            return 0
        return 1

    def wait_s(self, now: float) -> float:
        """Seconds until the gate lets a probe through (0 if it does now)."""
        if self._until is None:
            return 0.0
        return max(self._until - now, 0.0)
