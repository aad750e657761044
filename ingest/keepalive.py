"""Tell JetStream a long write is still in progress, so it does not redeliver meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from nats.aio.msg import Msg


@contextlib.asynccontextmanager
async def in_progress(msgs: Sequence[Msg], interval: float) -> AsyncIterator[None]:
    """While the block runs, send ``+WPI`` for every message each ``interval`` seconds.

    The first signal goes out after one interval: a write shorter than that
    costs nothing. Failures to signal are ignored (a lost link shows itself
    elsewhere; the worst outcome is a redelivery, which writes are idempotent to).
    """

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval)
            for msg in msgs:
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
