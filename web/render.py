"""Prometheus' JSON rendering of query results and its response envelope.

Written by hand, not through ``json.dumps``, for two reasons: exactness and
speed. Prometheus writes a timestamp as seconds with the milliseconds as a
three-digit fraction only when non-zero (``1700000000``, ``1700000000.500``,
``marshalTimestamp`` in ``web/api/v1``), and a value as a string made by Go's
``strconv.FormatFloat(v, 'f', -1, 64)`` — the shortest decimal that reads back
to the same float, never in exponent form — with ``NaN``, ``+Inf`` and
``-Inf`` for the non-finite ones. A matrix of a million points is rendered
without building a Python object per point.
"""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt

from shared.promql.result import Result


def format_value(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` with Prometheus' NaN/Inf spellings."""
    if v != v:  # noqa: PLR0124 - the NaN test
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    r = repr(float(v))
    if "e" in r:
        return np.format_float_positional(v, unique=True, trim="-")
    return r[:-2] if r.endswith(".0") else r


def format_timestamp(t_ms: int) -> str:
    """Prometheus' ``marshalTimestamp``: seconds, then ``.mmm`` when the milliseconds are non-zero."""
    sign = ""
    if t_ms < 0:
        sign, t_ms = "-", -t_ms
    seconds, fraction = divmod(t_ms, 1000)
    return f"{sign}{seconds}.{fraction:03d}" if fraction else f"{sign}{seconds}"


def _labels(labels: dict[str, str]) -> str:
    return json.dumps(labels, ensure_ascii=False, separators=(",", ":"))


def format_values(vs: npt.NDArray[np.float64]) -> list[str]:
    """``format_value`` over an array, at C speed for the common cases.

    ``repr`` of a finite float with magnitude in [1e-4, 1e16) never uses an
    exponent, and is already Go's form unless the value is integral
    (``3.0`` -> ``3``), which ``str(int)`` writes. Everything else (NaN,
    ±Inf, -0, tiny and huge magnitudes) goes through ``format_value``.
    """
    if len(vs) >= 16 and not ((vs == 0) & np.signbit(vs)).any():
        # Monitoring data repeats itself (flat gauges, steady rates): format each
        # distinct value once. (np.unique would merge -0 into 0, hence the check.)
        distinct, index = np.unique(vs, return_inverse=True)
        if len(distinct) * 2 <= len(vs):
            texts = _format_all(distinct)
            return list(map(texts.__getitem__, index.tolist()))
    return _format_all(vs)


def _format_all(vs: npt.NDArray[np.float64]) -> list[str]:
    values: list[float] = vs.tolist()
    if not values:
        return []
    mag = np.abs(vs)
    plain = (mag >= 1e-4) & (mag < 1e16)
    integral = (vs == np.trunc(vs)) & (mag < 1e16) & ~((vs == 0) & np.signbit(vs))
    if integral.all():
        return list(map(str, vs.astype(np.int64).tolist()))
    out: list[str] = list(map(repr, values))
    for i in np.flatnonzero(integral).tolist():
        out[i] = str(int(values[i]))
    for i in np.flatnonzero(~(plain | integral)).tolist():
        out[i] = format_value(values[i])
    return out


class _Timestamps:
    """Point prefixes (``],[<t>,"``) per timestamp grid, cached per render: the
    series of a matrix mostly share one grid."""

    def __init__(self) -> None:
        self._cache: dict[bytes, list[str]] = {}

    def prefixes(self, ts: npt.NDArray[np.int64]) -> list[str]:
        key = ts.tobytes()
        found = self._cache.get(key)
        if found is None:
            found = [f'"],[{format_timestamp(t)},"' for t in ts.tolist()]
            if found:
                found[0] = found[0][3:]
            self._cache[key] = found
        return found


def _matrix(result: Result) -> str:
    """All series' points in one ``str.join``: timestamps as cached prefixes per grid,
    values formatted once for the whole matrix (``format_values``), interleaved by
    slice assignment rather than per point."""
    series = result.matrix
    if not series:
        return "[]"
    sizes = [len(s.values) for s in series]
    values = np.concatenate([np.asarray(s.values, dtype=np.float64) for s in series])
    texts = format_values(values)
    stamps = _Timestamps()
    parts: list[str] = []
    at = 0
    head = '[{"metric":'
    for s, n in zip(series, sizes, strict=True):
        parts.append(head)
        parts.append(_labels(s.labels))
        head = ']},{"metric":'
        if n == 0:
            parts.append(',"values":[')
            continue
        parts.append(',"values":[')
        seg: list[str] = [""] * (2 * n)
        seg[0::2] = stamps.prefixes(s.timestamps_ms)
        seg[1::2] = texts[at : at + n]
        parts += seg
        parts.append('"]')
        at += n
    parts.append("]}]")
    return "".join(parts)


def render_result(result: Result) -> str:
    """The ``data`` object of a query answer: ``{"resultType": ..., "result": ...}``."""
    if result.kind == "vector":
        items = ",".join(
            f'{{"metric":{_labels(s.labels)},"value":[{format_timestamp(s.t_ms)},"{format_value(s.v)}"]}}'
            for s in result.vector
        )
        body = f"[{items}]"
    elif result.kind == "matrix":
        body = _matrix(result)
    elif result.kind == "scalar":
        t, v = result.scalar if result.scalar is not None else (0, math.nan)
        body = f'[{format_timestamp(t)},"{format_value(v)}"]'
    else:
        t, text = result.string if result.string is not None else (0, "")
        body = f"[{format_timestamp(t)},{json.dumps(text, ensure_ascii=False)}]"
    return f'{{"resultType":"{result.kind}","result":{body}}}'


def success(data_json: str, warnings: list[str] | None = None) -> bytes:
    """Prometheus' success envelope around already-rendered ``data`` JSON."""
    extra = f',"warnings":{json.dumps(warnings, ensure_ascii=False)}' if warnings else ""
    return f'{{"status":"success","data":{data_json}{extra}}}'.encode()


def success_json(data: object, warnings: list[str] | None = None) -> bytes:
    return success(json.dumps(data, ensure_ascii=False, separators=(",", ":")), warnings)


def error(error_type: str, message: str) -> bytes:
    """Prometheus' error envelope."""
    return json.dumps(
        {"status": "error", "errorType": error_type, "error": message},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
