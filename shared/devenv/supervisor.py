"""Supervise the stack's service processes: start, restart with backoff, stop by PID.

``RestartPlan`` is the pure part: given when a child started and when it
exited, it says how long to wait before starting it again (exponential
backoff from ``base`` to ``cap``, reset once a child has stayed up for
``stable_after`` seconds). ``Supervisor`` does the I/O: it runs each child,
waits for it, follows the plan, and stops every child with SIGTERM (SIGKILL
after a grace period) when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.log import get_logger

log = get_logger(__name__)


@dataclass
class RestartPlan:
    """Backoff between restarts of one child; pure, the clock is passed in."""

    base: float = 1.0
    cap: float = 30.0
    stable_after: float = 60.0
    failures: int = 0

    def after_exit(self, started_at: float, exited_at: float) -> float:
        """Seconds to wait before the next start."""
        if exited_at - started_at >= self.stable_after:
            self.failures = 0
        delay: float = min(self.cap, self.base * 2.0**self.failures)
        self.failures += 1
        return delay


@dataclass(frozen=True)
class ChildSpec:
    """One supervised command."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Child:
    spec: ChildSpec
    plan: RestartPlan
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0


class Supervisor:
    """Runs children until ``stop()``; a child that exits is started again after its backoff."""

    def __init__(self, specs: Sequence[ChildSpec], *, grace: float = 15.0) -> None:
        self._children = [_Child(spec, RestartPlan()) for spec in specs]
        self._grace = grace
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def pids(self) -> dict[str, int | None]:
        return {c.spec.name: c.proc.pid if c.proc else None for c in self._children}

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep_running(c), name=c.spec.name) for c in self._children
        ]

    async def _keep_running(self, child: _Child) -> None:
        env = {**os.environ, **child.spec.env}
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                child.proc = await asyncio.create_subprocess_exec(*child.spec.argv, env=env)
            except OSError as exc:
                log.error("cannot start service", service=child.spec.name, error=str(exc))
                code: int | None = None
            else:
                code = await child.proc.wait()
            if self._stopping.is_set():
                return
            delay = child.plan.after_exit(started, time.monotonic())
            child.restarts += 1
            log.warning(
                "service exited, restarting", service=child.spec.name, status=code, in_s=delay
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def stop(self) -> None:
        """SIGTERM every running child (by PID), wait ``grace``, then SIGKILL what remains."""
        self._stopping.set()
        running = [
            c.proc for c in self._children if c.proc is not None and c.proc.returncode is None
        ]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                async with asyncio.timeout(self._grace):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
