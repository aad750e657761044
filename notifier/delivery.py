"""Delivering one notification to one integration: per-attempt timeout, retries, back-off.

The retry plan is pure (``RetryPolicy.next_delay``: the attempt number, the
time used so far, a random number and the server's ``Retry-After`` in; the
pause before the next attempt, or ``None`` to give up, out). Rules:

- exponential back-off, ``initial * multiplier**(n-1)`` capped at ``max_delay``,
  with jitter of ``±jitter`` of it so replicas and groups spread out;
- a ``Retry-After`` longer than that wins (capped at ``max_retry_after``);
- ``PermanentError`` (4xx but 429, refused URL) is never retried;
- no attempt starts after the deadline (the caller passes the route's
  ``group_interval``, as Alertmanager bounds a flush by it).

``deliver`` runs the loop for one integration; the caller starts one task per
integration, so a slow or failing receiver never delays another. Before each
retry it calls ``renew`` (when given) with the seconds the pause and the next
attempt may take: the caller extends its delivery lease by that much, and a
``False`` (another replica holds the lease now) ends the delivery as failed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from notifier.errors import DeliveryError, PermanentError, RetryableError
from notifier.receivers.base import Integration, Notification


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.5
    attempt_timeout: float = 10.0
    max_retry_after: float = 300.0

    def backoff(self, attempt: int, rand: float) -> float:
        """Pause after failed attempt ``attempt`` (1-based); ``rand`` in [0, 1)."""
        base = min(self.max_delay, self.initial * self.multiplier ** (attempt - 1))
        return base * (1.0 - self.jitter + 2.0 * self.jitter * rand)

    def next_delay(
        self,
        attempt: int,
        elapsed: float,
        deadline: float,
        rand: float,
        retry_after: float | None = None,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when it would pass the deadline."""
        delay = self.backoff(attempt, rand)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        if elapsed + delay >= deadline:
            return None
        return delay


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's result, for the notifications stream."""

    attempt: int
    outcome: Literal["success", "retrying", "failed"]
    error: str | None
    duration_seconds: float


Report = Callable[[Attempt], Awaitable[None]]
Renew = Callable[[float], Awaitable[bool]]


async def deliver(
    integration: Integration,
    notification: Notification,
    *,
    policy: RetryPolicy,
    deadline: float,
    report: Report,
    attempt_timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    renew: Renew | None = None,
) -> bool:
    """Send until success, a permanent failure or the deadline (seconds from now); True on success."""
    start = clock()
    timeout = attempt_timeout or policy.attempt_timeout
    attempt = 0
    while True:
        attempt += 1
        began = clock()
        error: DeliveryError | None = None
        try:
            async with asyncio.timeout(timeout):
                await integration.notify(notification)
        except TimeoutError:
            error = RetryableError(
                f"cannot notify {integration.kind} {notification.receiver}: "
                f"attempt timed out after {timeout:g}s"
            )
        except DeliveryError as exc:
            error = exc
        duration = clock() - began
        if error is None:
            await report(Attempt(attempt, "success", None, duration))
            return True
        delay = None
        if not isinstance(error, PermanentError):
            delay = policy.next_delay(attempt, clock() - start, deadline, rand(), error.retry_after)
        if delay is not None and renew is not None and not await renew(delay + timeout):
            await report(
                Attempt(
                    attempt, "failed", f"{error}; another replica took the delivery over", duration
                )
            )
            return False
        if delay is None:
            await report(Attempt(attempt, "failed", str(error), duration))
            return False
        await report(Attempt(attempt, "retrying", str(error), duration))
        await sleep(delay)
