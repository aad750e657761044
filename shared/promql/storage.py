"""The storage seam of the PromQL engine, written by the engine (the side that uses it).

Two implementations: TimescaleDB (``web/``: matchers become SQL on ``series``,
samples fetched in bulk) and in-memory windows (the alerter, and tests).

Contract:
- Times are integer milliseconds since the epoch; ``start_ms``/``end_ms`` are
  inclusive. ``select`` returns every sample of every matching series in that
  range, sorted by time, with no duplicate timestamps per series.
- Values are float64 exactly as stored: NaN payloads and Prometheus' staleness
  marker (``shared.wire.STALE_NAN_BITS``) must survive; the engine interprets them.
- A series' labels include ``__name__``. Matchers follow Prometheus: ``=~``/``!~``
  are fully anchored RE2-style regexes; a matcher that matches the empty string
  also matches series that lack the label.
- ``hints`` describe the evaluation that will use the data (function, range,
  step); an implementation may answer from rollups only when the answer stays
  right for that use, and says so by setting ``Series.rollup``.
- Implementations are safe to call concurrently; they raise ``StorageFailure``
  (never a driver exception) when they cannot answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

MatchOp = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    name: str
    op: MatchOp
    value: str


@dataclass(frozen=True, slots=True)
class SelectHints:
    """How the selected data will be used (Prometheus' ``storage.SelectHints``)."""

    start_ms: int
    end_ms: int
    step_ms: int = 0
    """0 for an instant query."""
    func: str | None = None
    """The function applied to the selection (``rate``, ``max_over_time``, ...), if any."""
    range_ms: int = 0
    """The range of a range-vector selector, 0 for an instant-vector selector."""
    by: tuple[str, ...] = ()
    grouping_without: bool = False


@dataclass(slots=True)
class Series:
    labels: dict[str, str]
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    rollup: str | None = None
    """``None`` for raw samples; otherwise the rollup table and column that answered."""
    extra: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)


class Storage(Protocol):
    async def select(
        self,
        matchers: Sequence[LabelMatcher],
        start_ms: int,
        end_ms: int,
        hints: SelectHints | None = None,
    ) -> list[Series]:
        """Every series matching all ``matchers`` with its samples in [start_ms, end_ms]."""
        ...

    async def label_names(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        """Sorted label names of series matching any of the matcher sets (all series if none)."""
        ...

    async def label_values(
        self, name: str, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        """Sorted values of label ``name`` over matching series (all series if no sets)."""
        ...

    async def series(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[dict[str, str]]:
        """Label sets of series matching any of the matcher sets, active in the range."""
        ...

    async def metadata(
        self, metric: str | None, limit: int | None
    ) -> dict[str, list[dict[str, str]]]:
        """Prometheus' /api/v1/metadata shape: metric -> [{type, help, unit}]."""
        ...
