"""Run a service on uvloop until SIGTERM or SIGINT, then stop it gracefully.

Every service's ``__main__`` builds its ``App`` and hands it to ``run_service``.
The first SIGTERM/SIGINT asks the app to stop (it drains, acks, flushes); a
second one, or a stop that outlasts ``stop_timeout``, ends the process at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol

from shared.log import configure_logging, get_logger, is_configured

log = get_logger(__name__)


class Service(Protocol):
    """What ``run_service`` runs.

    ``start`` returns once the service is serving (ports bound, subscriptions
    made) and raises if it cannot start. ``stop`` is called once, after a
    successful ``start``, and must finish in-flight work it has taken on.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def install_uvloop() -> None:
    """Use uvloop when it is installed (it is on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve_until_signalled(
    service: Service, *, stop_timeout: float = 30.0, stop_event: asyncio.Event | None = None
) -> None:
    """Start ``service``, wait for SIGTERM/SIGINT (or ``stop_event``), then stop it."""
    stopping = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(signum: int) -> None:
        if stopping.is_set():
            log.warning("second signal, exiting at once", signal=signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("stopping", signal=signal.Signals(signum).name)
        stopping.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await service.start()
        await stopping.wait()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            async with asyncio.timeout(stop_timeout):
                await service.stop()
        except TimeoutError:
            log.error("cannot stop gracefully: timed out, exiting", timeout_s=stop_timeout)
    finally:
        for sig in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


def run_service(
    make: Callable[[], Service | Awaitable[Service]], *, stop_timeout: float = 30.0
) -> int:
    """Build the service inside the loop and serve it; the process exit status."""

    async def main() -> None:
        made = make()
        service = (
            await made if asyncio.iscoroutine(made) or isinstance(made, asyncio.Future) else made
        )
        await serve_until_signalled(service, stop_timeout=stop_timeout)  # type: ignore[arg-type]

    if not is_configured():
        configure_logging()
    install_uvloop()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # pragma: no cover - a signal before handlers were installed
        return 130
    except Exception as exc:  # noqa: BLE001 - the top of a process: report and exit non-zero
        log.error("service failed", error=str(exc), exc_type=type(exc).__name__)
        sys.stderr.flush()
        return 1
    return 0
