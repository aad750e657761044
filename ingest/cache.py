"""A bounded, approximately-LRU map from series keys to series ids.

Two generations: lookups hit ``hot`` first, then ``cold`` (promoting the
entry to ``hot``); when ``hot`` reaches half the capacity, ``cold`` is
dropped and ``hot`` becomes ``cold``. So at most ``capacity`` entries are
held, every entry used within the last half-capacity insertions survives,
and a lookup costs one or two dict probes with no bookkeeping per hit (an
``OrderedDict.move_to_end`` per sample would cost more than the rest of
the lookup).

Contract: the writer ``put``s ids only after the transaction that made or
saw them committed, so a cached id always names a committed series row.
Not thread-safe; one per process, used from the event loop.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class SeriesCache(Generic[K]):
    __slots__ = ("_cold", "_half", "_hot", "hits", "misses")

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"cannot size series cache to {capacity}: need at least 2")
        self._half = capacity // 2
        self._hot: dict[K, int] = {}
        self._cold: dict[K, int] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> int | None:
        found = self._hot.get(key)
        if found is not None:
            self.hits += 1
            return found
        found = self._cold.pop(key, None)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._store(key, found)
        return found

    def get_many(self, keys: Sequence[K]) -> list[int | None]:
        """``get`` of each key, in order: one C-level pass over ``hot`` when all are hot.

        Counts and promotes exactly as ``get`` would key by key; a caller can
        tell that some key missed from ``misses`` going up.
        """
        found = list(map(self._hot.get, keys))
        if None not in found:
            self.hits += len(found)
            return found
        missed = 0
        for pos, sid in enumerate(found):
            if sid is None:
                key = keys[pos]
                cold = self._cold.pop(key, None)
                if cold is None:
                    missed += 1
                    continue
                self._store(key, cold)
                found[pos] = cold
        self.hits += len(found) - missed
        self.misses += missed
        return found

    def put(self, key: K, series_id: int) -> None:
        self._cold.pop(key, None)
        self._store(key, series_id)

    def _store(self, key: K, series_id: int) -> None:
        if len(self._hot) >= self._half:
            self._cold = self._hot
            self._hot = {}
        self._hot[key] = series_id

    def __len__(self) -> int:
        return len(self._hot) + len(self._cold)

    def __contains__(self, key: object) -> bool:
        return key in self._hot or key in self._cold
