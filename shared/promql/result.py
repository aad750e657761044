"""What the engine returns, shaped like Prometheus' query results.

``Result.kind`` is Prometheus' ``resultType``. Timestamps are integer ms; the
HTTP layer renders them as float seconds and values as strings ("NaN",
"+Inf", "-Inf" as Prometheus does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt


@dataclass(slots=True)
class Sample:
    """One point of an instant vector."""

    labels: dict[str, str]
    t_ms: int
    v: float


@dataclass(slots=True)
class SeriesResult:
    """One series of a range query's matrix."""

    labels: dict[str, str]
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(slots=True)
class Result:
    kind: Literal["vector", "matrix", "scalar", "string"]
    vector: list[Sample] = field(default_factory=list)
    matrix: list[SeriesResult] = field(default_factory=list)
    scalar: tuple[int, float] | None = None
    string: tuple[int, str] | None = None
    warnings: list[str] = field(default_factory=list)
