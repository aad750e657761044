"""The alerter's in-memory windows: only the series some rule selects, only as long as needed.

``selectors_of(expr)`` walks a parsed rule expression and returns its vector
selectors with the history each needs (range + offset + lookback). A
``WindowStore`` built from the union of a rule set's selectors keeps, per selected
series, two numpy arrays (int64 timestamps, float64 values) used as a sliding
buffer: appends go to the end, and when the buffer is full the samples older than
the retention are dropped by moving the live part to the front (amortised O(1)
per sample, no per-sample Python objects). When the live part still fills most of
the buffer it is reallocated to ``live * 1.25 + 8`` slots, so the memory held
stays close to 16 bytes per sample (``bytes_per_sample`` reports it).

The store answers the PromQL engine through ``shared.promql.storage.Storage``.
Series that no selector matches are never stored; past ``max_series`` new series
are refused and counted (``refused_series``). Out-of-order samples (older than the
series' last) are dropped and counted; an equal timestamp overwrites the last.
Series whose newest sample has aged out of the retention are forgotten by ``gc``.
``merge`` adds history of any age (read from the database at a warm start),
deduplicated by timestamp against what the stream already brought.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.promql.memory import matches, select_matching
from shared.promql.parse import duration_ms, matcher_sets, parse
from shared.promql.storage import LabelMatcher, SelectHints, Series
from shared.promql.values import LabelKey, label_key

DEFAULT_LOOKBACK_MS = 300_000
_INITIAL_CAPACITY = 8


@dataclass(frozen=True, slots=True)
class Selector:
    """One ``or``-alternative of a vector selector and the history (ms) it reads."""

    matchers: tuple[LabelMatcher, ...]
    history_ms: int

    @property
    def metric(self) -> str | None:
        """The metric name when the selector fixes it by equality, else ``None``."""
        for m in self.matchers:
            if m.name == "__name__" and m.op == "=":
                return m.value
        return None

    def matches(self, labels: dict[str, str]) -> bool:
        return all(matches(m, labels) for m in self.matchers)


def selectors_of(expr: str, *, lookback_ms: int = DEFAULT_LOOKBACK_MS) -> list[Selector]:
    """The selectors of ``expr`` with the history each needs; raises ``BadData`` if unparsable.

    A selector with ``@`` reads a fixed time that a window cannot promise; it is
    still kept (its series are stored) with the history of its range and lookback.
    """
    out: list[Selector] = []

    def walk(node: Any, extra_ms: int) -> None:
        kind = type(node).__name__
        if kind == "VectorSelector":
            history = extra_ms + duration_ms(node.offset) + lookback_ms
            out.extend(Selector(tuple(s), history) for s in matcher_sets(node))
        elif kind == "MatrixSelector":
            vs = node.vector_selector
            history = extra_ms + duration_ms(node.range) + duration_ms(vs.offset)
            out.extend(Selector(tuple(s), history) for s in matcher_sets(vs))
        elif kind == "SubqueryExpr":
            walk(node.expr, extra_ms + duration_ms(node.range) + duration_ms(node.offset))
        elif kind in ("ParenExpr", "UnaryExpr"):
            walk(node.expr, extra_ms)
        elif kind == "AggregateExpr":
            walk(node.expr, extra_ms)
            if node.param is not None:
                walk(node.param, extra_ms)
        elif kind == "BinaryExpr":
            walk(node.lhs, extra_ms)
            walk(node.rhs, extra_ms)
        elif kind == "Call":
            for arg in node.args:
                walk(arg, extra_ms)

    walk(parse(expr), 0)
    return out


class _Window:
    """One series' sliding buffer: ``ts[lo:hi]``, ``vals[lo:hi]`` are live, sorted by time."""

    __slots__ = ("hi", "labels", "lo", "ts", "vals")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.ts: npt.NDArray[np.int64] = np.empty(_INITIAL_CAPACITY, dtype=np.int64)
        self.vals: npt.NDArray[np.float64] = np.empty(_INITIAL_CAPACITY, dtype=np.float64)
        self.lo = 0
        self.hi = 0

    def __len__(self) -> int:
        return self.hi - self.lo

    @property
    def nbytes(self) -> int:
        return int(self.ts.nbytes + self.vals.nbytes)

    def last_ts(self) -> int | None:
        return int(self.ts[self.hi - 1]) if self.hi > self.lo else None

    def append(self, ts_ms: int, value: float, min_ts_ms: int) -> bool:
        """Add one sample; False (not stored) when older than the series' last sample."""
        if self.hi > self.lo:
            last = int(self.ts[self.hi - 1])
            if ts_ms < last:
                return False
            if ts_ms == last:
                self.vals[self.hi - 1] = value
                return True
        if self.hi == len(self.ts):
            self._make_room(min_ts_ms)
        self.ts[self.hi] = ts_ms
        self.vals[self.hi] = value
        self.hi += 1
        return True

    def _make_room(self, min_ts_ms: int) -> None:
        self.trim(min_ts_ms)
        live = self.hi - self.lo
        capacity = len(self.ts)
        if live * 4 >= capacity * 3:  # still mostly full: grow (or fit) instead of sliding
            capacity = live + live // 4 + _INITIAL_CAPACITY
            ts = np.empty(capacity, dtype=np.int64)
            vals = np.empty(capacity, dtype=np.float64)
            ts[:live] = self.ts[self.lo : self.hi]
            vals[:live] = self.vals[self.lo : self.hi]
            self.ts, self.vals = ts, vals
        else:
            self.ts[:live] = self.ts[self.lo : self.hi]
            self.vals[:live] = self.vals[self.lo : self.hi]
        self.lo, self.hi = 0, live

    def merge(self, ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]) -> int:
        """Add samples of any age (``ts`` sorted); returns how many were new.

        A timestamp already held keeps the held value, so history read from
        elsewhere (the database) can overlap what the stream brought without a
        sample counted twice, whichever arrives first.
        """
        if not len(ts):
            return 0
        live = self.hi - self.lo
        all_ts = np.concatenate((self.ts[self.lo : self.hi], ts))
        all_vals = np.concatenate((self.vals[self.lo : self.hi], vals))
        order = np.argsort(all_ts, kind="stable")  # held samples first among equal times
        all_ts, all_vals = all_ts[order], all_vals[order]
        keep = np.ones(len(all_ts), dtype=bool)
        keep[1:] = all_ts[1:] != all_ts[:-1]
        n = int(keep.sum())
        capacity = n + n // 4 + _INITIAL_CAPACITY
        self.ts = np.empty(capacity, dtype=np.int64)
        self.vals = np.empty(capacity, dtype=np.float64)
        self.ts[:n] = all_ts[keep]
        self.vals[:n] = all_vals[keep]
        self.lo, self.hi = 0, n
        return n - live

    def trim(self, min_ts_ms: int) -> None:
        """Forget samples older than ``min_ts_ms`` (the newest one stays for lookback)."""
        if self.hi - self.lo <= 1:
            return
        cut = int(np.searchsorted(self.ts[self.lo : self.hi - 1], min_ts_ms, side="left"))
        self.lo += cut

    def view(
        self, start_ms: int, end_ms: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        ts = self.ts[self.lo : self.hi]
        a = int(np.searchsorted(ts, start_ms, side="left"))
        b = int(np.searchsorted(ts, end_ms, side="right"))
        return ts[a:b].copy(), self.vals[self.lo + a : self.lo + b].copy()


class WindowStore:
    """The series selected by a rule set, in sliding numpy windows; a PromQL ``Storage``.

    Not thread-safe; used from one asyncio loop (``select`` copies what it returns,
    so an evaluation never sees a buffer move under it).
    """

    def __init__(
        self,
        selectors: Iterable[Selector],
        *,
        max_series: int = 100_000,
        slack_ms: int = 60_000,
    ) -> None:
        self.max_series = max_series
        self.refused_series = 0
        self.out_of_order = 0
        self._series: dict[LabelKey, _Window] = {}
        self._by_name: dict[str, dict[LabelKey, _Window]] = {}
        self.set_selectors(selectors, slack_ms=slack_ms)

    # ---------------------------------------------------------------- selection
    def set_selectors(self, selectors: Iterable[Selector], *, slack_ms: int = 60_000) -> None:
        """Install a (new) rule set's selectors; series no longer selected are dropped."""
        sels = list(selectors)
        self.retention_ms = max((s.history_ms for s in sels), default=0) + slack_ms
        self._named: dict[str, list[Selector]] = {}
        self._unnamed: list[Selector] = []
        for s in sels:
            name = s.metric
            if name is None:
                self._unnamed.append(s)
            else:
                self._named.setdefault(name, []).append(s)
        for key, win in list(self._series.items()):
            if not self.wanted(win.labels):
                self._forget(key, win)

    def wanted(self, labels: dict[str, str]) -> bool:
        """True when some selector matches ``labels`` (which include ``__name__``)."""
        for s in self._named.get(labels.get("__name__", ""), ()):
            if s.matches(labels):
                return True
        return any(s.matches(labels) for s in self._unnamed)

    # ------------------------------------------------------------------ writing
    def window(self, labels: dict[str, str]) -> _Window | None:
        """The window of a series the caller already knows is wanted (created if new)."""
        key = label_key(labels)
        win = self._series.get(key)
        if win is None:
            if len(self._series) >= self.max_series:
                self.refused_series += 1
                return None
            win = self._series[key] = _Window(dict(labels))
            self._by_name.setdefault(labels.get("__name__", ""), {})[key] = win
        return win

    def append(self, win: _Window, ts_ms: int, value: float, now_ms: int) -> None:
        if not win.append(ts_ms, value, now_ms - self.retention_ms):
            self.out_of_order += 1

    def add(self, labels: dict[str, str], ts_ms: int, value: float) -> None:
        """Store one sample when some selector wants its series (the ``Appender`` seam)."""
        if not self.wanted(labels):
            return
        win = self.window(labels)
        if win is not None:
            self.append(win, ts_ms, value, ts_ms)

    def merge(
        self,
        labels: dict[str, str],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
        now_ms: int,
    ) -> int:
        """Merge a wanted series' older samples (see ``_Window.merge``); returns how many were new.

        Samples older than the retention are left out; a series no selector wants,
        or one past ``max_series``, is skipped (0).
        """
        if not self.wanted(labels):
            return 0
        keep = ts >= now_ms - self.retention_ms
        ts, vals = ts[keep], vals[keep]
        if not len(ts):
            return 0
        win = self.window(labels)
        return 0 if win is None else win.merge(ts, vals)

    def gc(self, now_ms: int) -> None:
        """Trim every window to the retention; forget series with nothing recent."""
        min_ts = now_ms - self.retention_ms
        for key, win in list(self._series.items()):
            last = win.last_ts()
            if last is None or last < min_ts:
                self._forget(key, win)
            else:
                win.trim(min_ts)

    def _forget(self, key: LabelKey, win: _Window) -> None:
        del self._series[key]
        by_name = self._by_name.get(win.labels.get("__name__", ""), {})
        by_name.pop(key, None)

    # ------------------------------------------------------------------ figures
    @property
    def series_count(self) -> int:
        return len(self._series)

    @property
    def sample_count(self) -> int:
        return sum(len(w) for w in self._series.values())

    @property
    def nbytes(self) -> int:
        """Bytes of the sample arrays (capacity included, per-series labels excluded)."""
        return sum(w.nbytes for w in self._series.values())

    def bytes_per_sample(self) -> float:
        samples = self.sample_count
        return self.nbytes / samples if samples else 0.0

    # ------------------------------------------------------------------ Storage
    def _matching(self, matchers: Sequence[LabelMatcher]) -> list[_Window]:
        return select_matching(self._series.values(), self._by_name, matchers)

    async def select(
        self,
        matchers: Sequence[LabelMatcher],
        start_ms: int,
        end_ms: int,
        hints: SelectHints | None = None,
    ) -> list[Series]:
        out = []
        for win in self._matching(matchers):
            ts, vals = win.view(start_ms, end_ms)
            if len(ts):
                out.append(Series(dict(win.labels), ts, vals))
        return out

    def _active(
        self, sets: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[_Window]:
        wins = (
            list(self._series.values())
            if not sets
            else list({id(w): w for s in sets for w in self._matching(s)}.values())
        )
        return [w for w in wins if len(w.view(start_ms, end_ms)[0])]

    async def label_names(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        return sorted({k for w in self._active(matchers, start_ms, end_ms) for k in w.labels})

    async def label_values(
        self, name: str, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        wins = self._active(matchers, start_ms, end_ms)
        return sorted({w.labels[name] for w in wins if name in w.labels})

    async def series(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[dict[str, str]]:
        wins = self._active(matchers, start_ms, end_ms)
        return [dict(w.labels) for w in sorted(wins, key=lambda w: label_key(w.labels))]

    async def metadata(
        self, metric: str | None, limit: int | None
    ) -> dict[str, list[dict[str, str]]]:
        return {}
