"""The engine's internal values: every node is evaluated at all steps of a grid at once.

- ``Scalar``: one float per step.
- ``Vector``: an instant vector over the grid, as a dense ``series x steps`` matrix of
  values plus a presence mask (NaN is a value, so absence needs its own mask).
- ``Matrix``: a range vector: raw samples per series plus, per step, the window end
  ``ends`` and the range; functions of the ``*_over_time``/rate family consume it.
- ``String``: a string literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from shared.promql.errors import ExecutionError

if TYPE_CHECKING:
    from shared.promql.packed import Packed

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
LabelKey = tuple[tuple[str, str], ...]

METRIC_NAME = "__name__"


def label_key(labels: dict[str, str]) -> LabelKey:
    return tuple(sorted(labels.items()))


def drop_name(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != METRIC_NAME}


@dataclass(slots=True)
class Scalar:
    values: F64


@dataclass(slots=True)
class String:
    value: str


@dataclass(slots=True)
class Vector:
    labels: list[dict[str, str]]
    values: F64
    """Shape ``(len(labels), steps)``."""
    present: Bools
    """Same shape: where a sample exists."""

    @staticmethod
    def empty(steps: int) -> Vector:
        return Vector([], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool))

    @property
    def steps(self) -> int:
        return int(self.values.shape[1])

    def compact(self) -> Vector:
        """Merge rows with equal labels (disjoint in time) and drop empty rows.

        Two rows with the same labels present at one step is Prometheus' "vector
        cannot contain metrics with the same labelset".
        """
        keys = [label_key(lab) for lab in self.labels]
        if len(set(keys)) == len(keys):  # the common case: nothing to merge
            nonempty = self.present.any(axis=1)
            if nonempty.all():
                return self
            if not nonempty.any():
                return Vector.empty(self.steps)
            keep = np.flatnonzero(nonempty)
            return Vector(
                [self.labels[i] for i in keep.tolist()], self.values[keep], self.present[keep]
            )
        rows: dict[LabelKey, int] = {}
        labels: list[dict[str, str]] = []
        values: list[F64] = []
        present: list[Bools] = []
        for i, lab in enumerate(self.labels):
            mask = self.present[i]
            if not mask.any():
                continue
            key = label_key(lab)
            j = rows.get(key)
            if j is None:
                rows[key] = len(labels)
                labels.append(lab)
                values.append(self.values[i].copy())
                present.append(mask.copy())
                continue
            if (present[j] & mask).any():
                raise ExecutionError("vector cannot contain metrics with the same labelset")
            values[j][mask] = self.values[i][mask]
            present[j] |= mask
        if not labels:
            return Vector.empty(self.steps)
        return Vector(labels, np.vstack(values), np.vstack(present))


@dataclass(slots=True)
class RangeSeries:
    labels: dict[str, str]
    timestamps: I64
    values: F64


@dataclass(slots=True)
class Matrix:
    series: list[RangeSeries]
    range_ms: int
    ends: I64
    """Per step, the (inclusive) end of the window; the start is ``ends - range_ms``."""
    pack: Packed | None = None
    """The samples of ``series`` packed (``packed()`` builds it on first use)."""
    rollup: str | None = None
    """``None`` for raw samples; else the storage's ``Series.rollup`` (``<table>.<columns>``):
    each point is one bucket's aggregates, and only ``shared.promql.rollupfuncs`` may
    interpret it (``pack.extra`` holds the columns after the first)."""

    def packed(self) -> Packed:
        """All series' samples in flat arrays, in the order of ``series`` (cached)."""
        if self.pack is None:
            from shared.promql.packed import Packed

            self.pack = Packed.of(
                [s.timestamps for s in self.series], [s.values for s in self.series]
            )
        return self.pack

    def windows(self, s: RangeSeries) -> tuple[I64, I64]:
        """Per step, the half-open index range ``[lo, hi)`` of ``s``'s samples in the window."""
        lo = np.searchsorted(s.timestamps, self.ends - self.range_ms, side="left")
        hi = np.searchsorted(s.timestamps, self.ends, side="right")
        return lo.astype(np.int64), hi.astype(np.int64)


Value = Scalar | String | Vector | Matrix
