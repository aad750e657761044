"""Turn the decoded batches of one fetch into columns ready for COPY: pure, no I/O.

``FetchRows`` takes batches one by one (``add``), in the stream order of
their messages.

Per batch it builds one cache key per series-table entry (``FastKey``:
host, metric and labels as sent), and probes them all with one
``SeriesCache.get_many`` (a C-level ``map`` over a dict when every key is
hot): no sort and no hash on the hot path. A miss is looked up by its
canonical ``SeriesKey`` (``ingest.seriesid``) and resolved by the caller in
bulk (``missing`` -> ``fill``). Per sample nothing happens in Python: the
columns are numpy views of the decoded arrays, series ids are gathered
with one ``take`` per batch.

With a ``TableIds`` cache, a batch whose series table this host sent
before (same ``MetricBatch.series_key``) takes the ids and metadata of that
table whole, with no per-series work; each of its series counts as a hit
of ``cache``. So does a batch whose table came earlier in the same fetch,
sharing that batch's ids (filled by ``fill``) and counting the hits and
misses its lookups had. After the fetch committed, ``remember_tables``
stores the tables it saw for the first time.

``columns()`` returns timestamps (ms), series ids and values, each an
int64/int64/float64 numpy array, in ``add`` order; ``index_order`` sorts
them by ``(series_id, time)``, the order of the unique index, which every
replica shares (two replicas holding the same redelivered batch insert its
rows in the same order, so they cannot deadlock on the index) and which
makes consecutive index insertions land on the same leaf pages.
``encode_copy_binary`` packs them as PostgreSQL binary COPY data for
``samples (time, series_id, value)``. Values are copied bit for bit (NaN
payloads, the staleness marker).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ingest.cache import SeriesCache
from ingest.seriesid import SeriesKey
from ingest.tableids import TableEntry, TableIds, TableKey
from shared.errors import DecodeError
from shared.wire import MetricBatch

FastKey = tuple[str, ...]
"""(host, metric, label names..., label values...), both in the order the batch sent them.

Flat, so a lookup hashes strings whose hashes are cached, not item tuples
whose hashes are not; unambiguous, since its length says how many names.
"""

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_CANNOT = "cannot store batch"
PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z, PostgreSQL's timestamp zero
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("len_t", ">i4"),
        ("t", ">i8"),
        ("len_s", ">i4"),
        ("s", ">i8"),
        ("len_v", ">i4"),
        ("v", ">f8"),
    ]
)


@dataclass(frozen=True, slots=True)
class Metadata:
    type: str | None
    help: str | None
    unit: str | None


@dataclass(slots=True)
class _Pending:
    ids: list[int] | I64
    holes: list[tuple[int, FastKey]]
    index: npt.NDArray[np.uint32]
    ts: I64
    values: F64
    table: TableKey | None = None
    """Set when this batch's table is to be remembered after commit."""
    metadata: dict[str, Metadata] = field(default_factory=dict)
    missed: int = 0
    """Series of its table that were not in the series cache."""


@dataclass(slots=True)
class FetchRows:
    """Accumulates one fetch's batches; see the module docstring for the protocol."""

    cache: SeriesCache[FastKey]
    tables: TableIds[Metadata] | None = None
    missing: dict[FastKey, SeriesKey] = field(default_factory=dict)
    metadata: dict[str, Metadata] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    samples: int = 0
    _pending: list[_Pending] = field(default_factory=list)
    _fresh: dict[TableKey, _Pending] = field(default_factory=dict)

    def add(self, host: str, batch: MetricBatch) -> None:
        """Take one batch whole, or raise ``DecodeError`` and take nothing of it.

        Text PostgreSQL cannot store (a NUL character in the host, the agent
        id or a label value) rejects the batch here: it must never reach
        the database, where it would fail the whole fetch.
        """
        if "\x00" in host or "\x00" in batch.agent_id:
            raise DecodeError(f"{_CANNOT}: host or agent id contains NUL", reason="nul_character")
        table: TableKey | None = None
        if self.tables is not None and batch.series_key is not None:
            table = (host, batch.series_key)
            if self._add_known_table(table, batch, self.tables):
                return
        series = batch.series
        keys: list[FastKey] = [(host, d.name, *d.labels.keys(), *d.labels.values()) for d in series]
        cache = self.cache
        misses = cache.misses
        found = cache.get_many(keys)
        holes: list[tuple[int, FastKey]] = []
        new: dict[FastKey, SeriesKey] = {}
        if cache.misses != misses:
            for pos, sid in enumerate(found):
                if sid is not None:
                    continue
                key = keys[pos]
                if key not in self.missing and key not in new:
                    desc = series[pos]
                    if any("\x00" in v for v in desc.labels.values()):
                        raise DecodeError(
                            f"{_CANNOT}: series {pos} ({desc.name}) has a NUL in a label value",
                            reason="nul_character",
                        )
                    new[key] = SeriesKey.of(host, desc.name, desc.labels)
                holes.append((pos, key))
                found[pos] = 0
        ids: list[int] = found  # type: ignore[assignment]  # every None was just replaced
        metadata = {
            d.name: Metadata(d.type, d.help, d.unit)
            for d in series
            if d.type is not None or d.help is not None or d.unit is not None
        }
        for meta in metadata.values():
            for text in (meta.help, meta.unit):
                if text is not None and "\x00" in text:
                    raise DecodeError(f"{_CANNOT}: metadata has a NUL", reason="nul_character")
        self.missing.update(new)
        self.metadata.update(metadata)
        self.agents[host] = batch.agent_id
        self.samples += len(batch)
        pending = _Pending(
            ids,
            holes,
            np.frombuffer(batch.series_index, dtype=np.uint32),
            np.frombuffer(batch.timestamps_ms, dtype=np.int64),
            np.frombuffer(batch.values, dtype=np.float64),
            table,
            metadata,
            len(holes),
        )
        self._pending.append(pending)
        if table is not None:
            self._fresh[table] = pending

    def _add_known_table(
        self, table: TableKey, batch: MetricBatch, tables: TableIds[Metadata]
    ) -> bool:
        """Take ``batch`` as a table seen before (in this fetch or committed); False if new."""
        first = self._fresh.get(table)
        if first is not None:
            self._add_same(table[0], batch, first.ids, first.metadata, missed=first.missed)
            return True
        entry = tables.get(table)
        if entry is not None:
            self._add_same(table[0], batch, entry.ids, entry.metadata, missed=0)
            return True
        return False

    def _add_same(
        self,
        host: str,
        batch: MetricBatch,
        ids: list[int] | I64,
        metadata: dict[str, Metadata],
        *,
        missed: int,
    ) -> None:
        # Its table passed every check of ``add`` for this host before.
        self.cache.hits += len(ids) - missed
        self.cache.misses += missed
        self.metadata.update(metadata)
        self.agents[host] = batch.agent_id
        self.samples += len(batch)
        self._pending.append(
            _Pending(
                ids,
                [],
                np.frombuffer(batch.series_index, dtype=np.uint32),
                np.frombuffer(batch.timestamps_ms, dtype=np.int64),
                np.frombuffer(batch.values, dtype=np.float64),
            )
        )

    def remember_tables(self) -> None:
        """Store the ids of tables seen for the first time; call only after the fetch committed."""
        if self.tables is None:
            return
        for p in self._pending:
            if p.table is not None and not p.holes:
                self.tables.put(p.table, TableEntry(np.asarray(p.ids, dtype=np.int64), p.metadata))
                p.table = None

    def fill(self, resolved: Mapping[FastKey, int]) -> None:
        """Give every missing key its id (``resolved`` must cover ``missing``)."""
        for p in self._pending:
            for pos, key in p.holes:
                p.ids[pos] = resolved[key]
            p.holes = []

    def columns(self) -> tuple[I64, I64, F64]:
        """(timestamps ms, series ids, values) of every sample, batches in ``add`` order."""
        if not self._pending:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.float64)
        for p in self._pending:
            if p.holes:
                raise RuntimeError("BUG: cannot build sample columns: series ids not filled")
        ts = np.concatenate([p.ts for p in self._pending])
        sids = np.concatenate([np.asarray(p.ids, dtype=np.int64)[p.index] for p in self._pending])
        values = np.concatenate([p.values for p in self._pending])
        return ts, sids, values


def minute_starts(ts_ms: I64) -> list[int]:
    """The distinct one-minute bucket starts (ms) the timestamps fall in, ascending."""
    if not len(ts_ms):
        return []
    minutes = ts_ms // 60_000
    lo, hi = int(minutes.min()), int(minutes.max())
    if hi - lo > max(4 * len(minutes), 10_000):
        return [m * 60_000 for m in np.unique(minutes).tolist()]
    # A presence mask over the (usually few) minutes spanned: no sort.
    present = np.zeros(hi - lo + 1, dtype=np.bool_)
    present[minutes - lo] = True
    return [(m + lo) * 60_000 for m in np.flatnonzero(present).tolist()]


def index_order(ts_ms: I64, series_ids: I64, values: F64) -> tuple[I64, I64, F64]:
    """The three columns reordered by ``(series_id, time)``; see the module docstring."""
    n = len(ts_ms)
    if n < 2:
        return ts_ms, series_ids, values
    t_lo = int(ts_ms.min())
    span = int(ts_ms.max()) - t_lo + 1
    s_lo, s_hi = int(series_ids.min()), int(series_ids.max())
    if (s_hi - s_lo + 1) * span < 2**62:
        # One packed int64 key: a plain argsort is ~5x faster than lexsort. Equal
        # keys are the same (series_id, time), whose relative order cannot matter.
        order = np.argsort((series_ids - s_lo) * span + (ts_ms - t_lo))
    else:
        order = np.lexsort((ts_ms, series_ids))
    return ts_ms[order], series_ids[order], values[order]


def encode_copy_binary(ts_ms: I64, series_ids: I64, values: F64) -> bytearray:
    """PostgreSQL binary COPY data for columns (time timestamptz, series_id bigint, value float8).

    Built in place in one buffer (header, rows, trailer): no per-row Python
    and no copy after the rows are written.
    """
    n = len(values)
    head, tail = len(_COPY_HEADER), len(_COPY_TRAILER)
    out = bytearray(head + n * _ROW.itemsize + tail)
    out[:head] = _COPY_HEADER
    out[len(out) - tail :] = _COPY_TRAILER
    rows = np.frombuffer(out, dtype=_ROW, count=n, offset=head)
    rows["fields"] = 3
    rows["len_t"] = 8
    rows["len_s"] = 8
    rows["len_v"] = 8
    rows["t"] = (ts_ms - PG_EPOCH_MS) * 1000
    rows["s"] = series_ids
    # A byte-order change of the raw bits, never a float conversion: NaN payloads survive.
    rows["v"] = values.view(np.uint64).byteswap().view(">f8") if values.dtype.isnative else values
    return out
