"""Run one query on Prometheus and on Vigil's engine and compare the answers."""

from __future__ import annotations

import math
from typing import Any

from shared.promql.engine import Engine
from shared.promql.errors import PromQLError
from shared.promql.result import Result
from tests.oracle.prometheus import Prometheus

Points = dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]


def _num(text: str) -> float:
    return float(text.replace("Inf", "inf"))


def from_prometheus(answer: dict[str, Any]) -> tuple[str, Points] | str:
    if answer.get("status") != "success":
        return f"error: {answer.get('error')}"
    data = answer["data"]
    kind, result = data["resultType"], data["result"]
    out: Points = {}
    if kind == "scalar":
        out[()] = [(round(result[0] * 1000), _num(result[1]))]
    elif kind == "vector":
        for s in result:
            t, v = s["value"]
            out[tuple(sorted(s["metric"].items()))] = [(round(t * 1000), _num(v))]
    elif kind == "matrix":
        for s in result:
            key = tuple(sorted(s["metric"].items()))
            out[key] = [(round(t * 1000), _num(v)) for t, v in s["values"]]
    return kind, out


def from_vigil(result: Result) -> tuple[str, Points]:
    out: Points = {}
    if result.kind == "scalar":
        assert result.scalar is not None
        out[()] = [result.scalar]
    elif result.kind == "vector":
        for s in result.vector:
            out[tuple(sorted(s.labels.items()))] = [(s.t_ms, s.v)]
    else:
        for m in result.matrix:
            pts = zip(m.timestamps_ms.tolist(), m.values.tolist(), strict=True)
            out[tuple(sorted(m.labels.items()))] = list(pts)
    return result.kind, out


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b)) or abs(a - b) < 1e-9


def diff(want: tuple[str, Points] | str, got: tuple[str, Points] | str) -> str | None:
    if isinstance(want, str) or isinstance(got, str):
        if isinstance(want, str) and isinstance(got, str):
            return None
        return f"prometheus: {want if isinstance(want, str) else 'ok'}; vigil: {got if isinstance(got, str) else 'ok'}"
    (wk, wp), (gk, gp) = want, got
    if wk != gk:
        return f"result type {wk} != {gk}"
    if set(wp) != set(gp):
        only_w = sorted(set(wp) - set(gp))[:3]
        only_g = sorted(set(gp) - set(wp))[:3]
        return f"series differ: only prometheus {only_w}; only vigil {only_g}"
    for key, pts in wp.items():
        mine = gp[key]
        if [t for t, _ in pts] != [t for t, _ in mine]:
            return f"{dict(key)}: timestamps differ ({len(pts)} vs {len(mine)} points)"
        for (t, a), (_, b) in zip(pts, mine, strict=True):
            if not close(a, b):
                return f"{dict(key)} @ {t}: prometheus {a!r} vigil {b!r}"
    return None


async def compare_instant(prom: Prometheus, engine: Engine, query: str, t_ms: int) -> str | None:
    want = from_prometheus(
        prom.api("/api/v1/query", {"query": query, "time": f"{t_ms / 1000:.3f}"})
    )
    got: tuple[str, Points] | str
    try:
        got = from_vigil(await engine.instant(query, t_ms))
    except PromQLError as exc:
        got = f"error: {exc}"
    return diff(want, got)


async def compare_range(
    prom: Prometheus, engine: Engine, query: str, window: tuple[int, int, int]
) -> str | None:
    start, end, step = window
    params = {
        "query": query,
        "start": f"{start / 1000:.3f}",
        "end": f"{end / 1000:.3f}",
        "step": f"{step / 1000:.3f}",
    }
    want = from_prometheus(prom.api("/api/v1/query_range", params))
    got: tuple[str, Points] | str
    try:
        got = from_vigil(await engine.range(query, start, end, step))
    except PromQLError as exc:
        got = f"error: {exc}"
    return diff(want, got)
