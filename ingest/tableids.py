"""Series ids per (host, series table): a batch whose table was seen before skips all lookups.

Agents send the same series table with every batch, and
``shared.codec.BatchDecoder`` hands such batches a ``series_key`` (the
table's encoded bytes). ``TableIds`` maps ``(host, series_key)`` to what
``ingest.rows.FetchRows`` would otherwise work out series by series: the
series id of every table position (one int64 array, gathered per sample with
one ``take``) and the table's metadata.

Contract: like ``SeriesCache``, entries are ``put`` only after the
transaction that stored their fetch committed, so every id names a committed
series row. Bounded: least recently used entries are dropped while the
entries held count more than ``max_series`` ids in all. Not thread-safe;
one per process, used from the event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

M = TypeVar("M")

TableKey = tuple[str, bytes]
"""(host of the subject, ``MetricBatch.series_key``)."""


@dataclass(frozen=True, slots=True)
class TableEntry(Generic[M]):
    ids: npt.NDArray[np.int64]
    """Series id of each table position (read-only)."""
    metadata: dict[str, M]
    """Metadata by metric name, as the table states it (read-only)."""


class TableIds(Generic[M]):
    __slots__ = ("_entries", "_held", "_max_series", "hits", "misses")

    def __init__(self, max_series: int) -> None:
        if max_series < 1:
            raise ValueError(f"cannot size the table-id cache to {max_series} series")
        self._max_series = max_series
        self._entries: OrderedDict[TableKey, TableEntry[M]] = OrderedDict()
        self._held = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: TableKey) -> TableEntry[M] | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry

    def put(self, key: TableKey, entry: TableEntry[M]) -> None:
        size = max(len(entry.ids), 1)
        if size > self._max_series:
            return
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            self._held -= max(len(old.ids), 1)
        while entries and self._held + size > self._max_series:
            _, dropped = entries.popitem(last=False)
            self._held -= max(len(dropped.ids), 1)
        entry.ids.flags.writeable = False
        entries[key] = entry
        self._held += size

    @property
    def series_held(self) -> int:
        return self._held

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
