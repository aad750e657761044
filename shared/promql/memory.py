"""``MemoryStorage``: the ``Storage`` protocol over series held in memory (alerter, tests).

Regex matchers are fully anchored and use Python's ``re`` (``re.fullmatch``), not RE2:
RE2-only syntax such as ``\\pL`` without braces or ``\\z`` fails or differs, and
Python accepts look-arounds and back-references that Prometheus rejects. A matcher
that matches the empty string also matches series without the label (``x{a=""}``,
``x{a!="b"}``, ``x{a=~".*"}``), as the protocol requires.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import numpy as np

from shared.promql.errors import BadData
from shared.promql.storage import LabelMatcher, SelectHints, Series
from shared.promql.values import LabelKey, label_key


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise BadData(f"cannot parse regex {pattern!r}: {exc}") from exc


class Labelled(Protocol):
    @property
    def labels(self) -> dict[str, str]: ...


L = TypeVar("L", bound=Labelled)


def select_matching(
    every: Iterable[L], by_name: Mapping[str, Mapping[Any, L]], matchers: Sequence[LabelMatcher]
) -> list[L]:
    """The items whose labels satisfy every matcher; a metric-name equality narrows the scan
    to one entry of ``by_name`` (metric name -> items) instead of every item."""
    pool: Iterable[L] = every
    for m in matchers:
        if m.name == "__name__" and m.op == "=":
            pool = by_name.get(m.value, {}).values()
            break
    return [item for item in pool if all(matches(m, item.labels) for m in matchers)]


def matches(m: LabelMatcher, labels: dict[str, str]) -> bool:
    value = labels.get(m.name, "")
    if m.op == "=":
        return value == m.value
    if m.op == "!=":
        return value != m.value
    hit = _regex(m.value).fullmatch(value) is not None
    return hit if m.op == "=~" else not hit


class _Buffer:
    __slots__ = ("cache", "labels", "sorted", "times", "values")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.times: list[int] = []
        self.values: list[float] = []
        self.sorted = True
        self.cache: tuple[np.ndarray, np.ndarray] | None = None


class MemoryStorage:
    """Series in memory; appends in any order, duplicate timestamps keep the last write."""

    def __init__(self) -> None:
        self._series: dict[LabelKey, _Buffer] = {}
        self._by_name: dict[str, dict[LabelKey, _Buffer]] = {}
        self.metadata_by_name: dict[str, list[dict[str, str]]] = {}

    def add(self, labels: dict[str, str], ts_ms: int, value: float) -> None:
        key = label_key(labels)
        buf = self._series.get(key)
        if buf is None:
            buf = self._series[key] = _Buffer(dict(labels))
            self._by_name.setdefault(labels.get("__name__", ""), {})[key] = buf
        if buf.times and ts_ms <= buf.times[-1]:
            buf.sorted = False
        buf.times.append(int(ts_ms))
        buf.values.append(float(value))
        buf.cache = None

    def drop_before(self, min_ts_ms: int) -> None:
        """Forget samples older than ``min_ts_ms``, and series left without samples."""
        for key, buf in list(self._series.items()):
            times, values = self._arrays(buf)
            keep = times >= min_ts_ms
            if keep.all():
                continue
            if not keep.any():
                del self._series[key]
                del self._by_name[buf.labels.get("__name__", "")][key]
                continue
            buf.times, buf.values = times[keep].tolist(), values[keep].tolist()
            buf.cache = (times[keep], values[keep])

    def add_series(self, labels: dict[str, str], samples: Iterable[tuple[int, float]]) -> None:
        for ts_ms, value in samples:
            self.add(labels, ts_ms, value)

    def _arrays(self, buf: _Buffer) -> tuple[np.ndarray, np.ndarray]:
        if buf.cache is not None:
            return buf.cache
        times = np.asarray(buf.times, dtype=np.int64)
        values = np.asarray(buf.values, dtype=np.float64)
        if not buf.sorted:
            order = np.argsort(times, kind="stable")
            times, values = times[order], values[order]
            last = np.ones(len(times), dtype=bool)
            last[:-1] = times[1:] != times[:-1]
            times, values = times[last], values[last]
            buf.times, buf.values, buf.sorted = times.tolist(), values.tolist(), True
        buf.cache = (times, values)
        return times, values

    def _matching(self, matchers: Sequence[LabelMatcher]) -> list[_Buffer]:
        return select_matching(self._series.values(), self._by_name, matchers)

    async def select(
        self,
        matchers: Sequence[LabelMatcher],
        start_ms: int,
        end_ms: int,
        hints: SelectHints | None = None,
    ) -> list[Series]:
        out = []
        for buf in self._matching(matchers):
            times, values = self._arrays(buf)
            lo = np.searchsorted(times, start_ms, side="left")
            hi = np.searchsorted(times, end_ms, side="right")
            if hi > lo:
                out.append(Series(dict(buf.labels), times[lo:hi].copy(), values[lo:hi].copy()))
        return out

    def _active(
        self, sets: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[_Buffer]:
        bufs = (
            list(self._series.values())
            if not sets
            else {id(b): b for s in sets for b in self._matching(s)}.values()
        )
        out = []
        for b in bufs:
            times, _ = self._arrays(b)
            if len(times) and times[0] <= end_ms and times[-1] >= start_ms:
                out.append(b)
        return out

    async def label_names(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        return sorted({k for b in self._active(matchers, start_ms, end_ms) for k in b.labels})

    async def label_values(
        self, name: str, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        found = {
            b.labels[name] for b in self._active(matchers, start_ms, end_ms) if name in b.labels
        }
        return sorted(found)

    async def series(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[dict[str, str]]:
        bufs = self._active(matchers, start_ms, end_ms)
        return [dict(b.labels) for b in sorted(bufs, key=lambda b: label_key(b.labels))]

    async def metadata(
        self, metric: str | None, limit: int | None
    ) -> dict[str, list[dict[str, str]]]:
        names = sorted(self.metadata_by_name)
        if metric is not None:
            names = [n for n in names if n == metric]
        if limit is not None and limit >= 0:
            names = names[:limit]
        return {n: list(self.metadata_by_name[n]) for n in names}
