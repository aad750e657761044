"""Series ids for series keys not in the cache: one bulk upsert per fetch.

``resolve(conn, missing)`` sends every missing series in one statement,
``INSERT ... SELECT FROM unnest(...) ORDER BY hash ON CONFLICT (hash) DO
UPDATE SET last_seen = now() RETURNING id, hash``: new series get an id,
known ones return theirs, and two replicas resolving overlapping sets lock
the rows in the same (hash) order, so they cannot deadlock. It runs on its
own (autocommit), before the samples transaction: a series row without
samples is harmless, and holding its row locks through the whole COPY
would serialise replicas that see a new host at once.

``series.last_seen`` is therefore refreshed when a replica resolves a
series (a cache miss: start-up, eviction), not on every sample; it is
"seen at least until", precise to the cache's turnover.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from ingest.rows import FastKey
from ingest.seriesid import SeriesKey

_UPSERT = """
INSERT INTO series (metric, labels, hash)
SELECT m, l::jsonb, h FROM unnest($1::text[], $2::text[], $3::bytea[]) AS u(m, l, h)
ORDER BY h
ON CONFLICT (hash) DO UPDATE SET last_seen = now()
RETURNING id, hash
"""


async def resolve(
    conn: asyncpg.Connection, missing: Mapping[FastKey, SeriesKey]
) -> dict[FastKey, int]:
    """Ids for every key of ``missing``; raises asyncpg errors (the writer translates them)."""
    if not missing:
        return {}
    unique: dict[bytes, SeriesKey] = {}
    for key in missing.values():
        unique.setdefault(key.hash, key)  # label order differs, same series: one row
    keys = list(unique.values())
    records = await conn.fetch(
        _UPSERT,
        [k.metric for k in keys],
        [k.labels_json() for k in keys],
        [k.hash for k in keys],
    )
    by_hash = {bytes(r["hash"]): int(r["id"]) for r in records}
    return {fast: by_hash[key.hash] for fast, key in missing.items()}
