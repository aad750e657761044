"""Date functions (``minute``, ``hour``, ``day_of_month`` ...): UTC, from seconds since the epoch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shared.promql.values import F64


def _parts(seconds: F64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = np.isfinite(seconds)
    secs = np.where(ok, seconds, 0).astype(np.int64)
    dt = secs.astype("datetime64[s]")
    return ok, dt, secs


def _field(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[F64], F64]:
    def run(seconds: F64) -> F64:
        ok, dt, secs = _parts(seconds)
        out = fn(dt, secs).astype(np.float64)
        return np.where(ok, out, np.nan)

    return run


def _year(dt: np.ndarray, _s: np.ndarray) -> np.ndarray:
    out: np.ndarray = dt.astype("datetime64[Y]").astype(np.int64) + 1970
    return out


def _month(dt: np.ndarray, _s: np.ndarray) -> np.ndarray:
    out: np.ndarray = dt.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return out


def _day_of_month(dt: np.ndarray, _s: np.ndarray) -> np.ndarray:
    days = dt.astype("datetime64[D]")
    out: np.ndarray = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    return out


def _day_of_year(dt: np.ndarray, _s: np.ndarray) -> np.ndarray:
    days = dt.astype("datetime64[D]")
    out: np.ndarray = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
    return out


def _days_in_month(dt: np.ndarray, _s: np.ndarray) -> np.ndarray:
    month = dt.astype("datetime64[M]")
    out: np.ndarray = ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(
        np.int64
    )
    return out


def _day_of_week(_dt: np.ndarray, s: np.ndarray) -> np.ndarray:
    out: np.ndarray = (np.floor_divide(s, 86_400) + 4) % 7  # 1970-01-01 was a Thursday
    return out


def _hour(_dt: np.ndarray, s: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.mod(s, 86_400) // 3600
    return out


def _minute(_dt: np.ndarray, s: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.mod(s, 3600) // 60
    return out


DATE_FUNCS: dict[str, Callable[[F64], F64]] = {
    "year": _field(_year),
    "month": _field(_month),
    "day_of_month": _field(_day_of_month),
    "day_of_year": _field(_day_of_year),
    "days_in_month": _field(_days_in_month),
    "day_of_week": _field(_day_of_week),
    "hour": _field(_hour),
    "minute": _field(_minute),
}
