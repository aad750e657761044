"""Which rollup buckets an ingest commit touched, recorded in that same transaction.

The writer calls ``mark_touched`` inside the transaction that stores the
samples, so a commit and its record of touched buckets are atomic: data that
arrives hours late (a spool replay) is rolled up too, and a crash between
the two cannot happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


async def mark_touched(conn: Any, minute_starts_ms: Iterable[int]) -> None:
    """Record the one-minute buckets (start, ms since the epoch, multiple of 60,000) just written.

    ``conn`` is an asyncpg connection inside the writer's open transaction.
    Must not contend between replicas (no row both may update) and must be
    cheap: it runs on every commit.
    """
    # Placeholder until the rollup jobs land: nothing consumes the record yet.
    del conn, minute_starts_ms
