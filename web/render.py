"""Prometheus' JSON rendering of query results and its response envelope.

Written by hand, not through ``json.dumps``, for two reasons: exactness and
speed. Prometheus writes a timestamp as seconds with the milliseconds as a
three-digit fraction only when non-zero (``1700000000``, ``1700000000.500``,
``marshalTimestamp`` in ``web/api/v1``), and a value as a string made by Go's
``strconv.FormatFloat(v, 'f', -1, 64)`` — the shortest decimal that reads back
to the same float, never in exponent form — with ``NaN``, ``+Inf`` and
``-Inf`` for the non-finite ones. A matrix is rendered with a handful of
C-level passes: its values formatted in bulk (``orjson``'s Ryu for a whole
array, each run of a repeated value once), then interleaved with cached
timestamp prefixes in one ``str.join``; no Python code runs per point.
"""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import orjson

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
    """A label set as compact JSON, non-ASCII kept (``orjson`` escapes as ``json.dumps``
    does; it refuses lone surrogates, which ``json.dumps`` passes on)."""
    try:
        return orjson.dumps(labels).decode()
    except orjson.JSONEncodeError:
        return json.dumps(labels, ensure_ascii=False, separators=(",", ":"))


def format_values(vs: npt.NDArray[np.float64]) -> list[str]:
    """``format_value`` over an array, at C speed for the common cases.

    A finite float with magnitude in [1e-4, 1e16) is written by ``orjson`` (Ryu:
    the shortest decimal that reads back to the same float, as Go's and Python's
    ``repr``; in that range neither uses an exponent), a tenth of ``repr``'s cost;
    an integral one (``orjson`` writes ``3.0``, Go ``3``) as an int64. Everything
    else (NaN, ±Inf, -0, tiny and huge magnitudes) goes through ``format_value``.
    """
    if len(vs) == 0:
        return []
    vs = np.ascontiguousarray(vs, dtype=np.float64)
    # Monitoring data repeats itself (flat gauges, steady rates): format the first
    # value of each run of equal bit patterns (so -0 and NaN payloads stay apart)
    # once, and repeat its text.
    bits = vs.view(np.int64)
    heads = np.flatnonzero(np.concatenate(([True], bits[1:] != bits[:-1])))
    if len(heads) * 2 <= len(vs):
        texts = np.array(_format_all(vs[heads]), dtype=object)
        counts = np.diff(np.append(heads, len(vs)))
        repeated: list[str] = np.repeat(texts, counts).tolist()
        return repeated
    return _format_all(vs)


def _format_all(vs: npt.NDArray[np.float64]) -> list[str]:
    mag = np.abs(vs)
    small = mag < 1e16
    integral = (vs == np.trunc(vs)) & small & ~((vs == 0) & np.signbit(vs))
    if integral.all():
        return _dump(vs.astype(np.int64))
    plain = (mag >= 1e-4) & small & ~integral
    texts = np.array(_dump(np.where(plain, vs, 1.0)), dtype=object)
    if integral.any():
        texts[integral] = _dump(vs[integral].astype(np.int64))
    other = np.flatnonzero(~(plain | integral))
    if len(other):
        texts[other] = [format_value(v) for v in vs[other].tolist()]
    out: list[str] = texts.tolist()
    return out


def _dump(vs: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> list[str]:
    """Each element's JSON number (``orjson``'s shortest round-trip form for floats)."""
    return orjson.dumps(vs, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].decode().split(",")


class _Timestamps:
    """Point prefixes (``],[<t>,"``) per timestamp grid, cached per render: the
    series of a matrix mostly share one grid."""

    def __init__(self) -> None:
        self._cache: dict[bytes, list[str]] = {}
        self._last: tuple[npt.NDArray[np.int64], list[str]] | None = None

    def prefixes(self, ts: npt.NDArray[np.int64]) -> list[str]:
        if self._last is not None and self._last[0] is ts:  # the engine shares its grid
            return self._last[1]
        key = ts.tobytes()
        found = self._cache.get(key)
        if found is None:
            found = [f'"],[{format_timestamp(t)},"' for t in ts.tolist()]
            if found:
                found[0] = found[0][3:]
            self._cache[key] = found
        self._last = (ts, found)
        return found


def _matrix(result: Result) -> str:
    """All series' points in one ``str.join`` of prefixes and values, interleaved by two
    slice assignments: the prefixes are the cached lists of the series' grids
    (``_Timestamps``), each series' first one carrying the text before it (the end of
    the previous series, the metric); the values are formatted once for the whole
    matrix (``format_values``)."""
    series = result.matrix
    if not series:
        return "[]"
    values = np.concatenate([np.asarray(s.values, dtype=np.float64) for s in series])
    texts = format_values(values)
    stamps = _Timestamps()
    prefixes: list[str] = []
    pending = "["
    close = ""
    for s in series:
        pending += f'{close}{{"metric":{_labels(s.labels)},"values":['
        if len(s.values) == 0:
            close = "]},"
            continue
        grid = stamps.prefixes(s.timestamps_ms)
        start = len(prefixes)
        prefixes += grid
        prefixes[start] = pending + grid[0]
        pending, close = "", '"]]},'
    parts = [""] * (2 * len(prefixes))
    parts[0::2] = prefixes
    parts[1::2] = texts
    parts.append(f"{pending}{close[:-1]}]")
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
