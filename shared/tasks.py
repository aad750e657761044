"""Stopping what a service started: background tasks and its NATS connection.

Every service's ``App.stop`` ends the same way; this is that ending, once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from nats.aio.client import Client


async def cancel_all(tasks: Iterable[asyncio.Task[object]] | Iterable[asyncio.Task[None]]) -> None:
    """Cancel every task and wait for each to end; their errors are theirs, not the stop's."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def close_nats(nc: Client | None) -> None:
    """Flush what is written (acks, results) and close, without drain's long wait.

    ``drain()`` would wait out its timeout on ordered consumers and KV watchers.
    """
    if nc is None:
        return
    with contextlib.suppress(Exception):
        await nc.flush(timeout=2)
    with contextlib.suppress(Exception):
        await nc.close()
