"""Run one query on Prometheus and on Vigil (engine or HTTP API) and compare the answers."""

from __future__ import annotations

import math
from typing import Any, Protocol

import httpx

from shared.promql.engine import Engine
from shared.promql.errors import PromQLError
from shared.promql.result import Result
from tests.oracle import corpus
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


Answer = tuple[str, Points] | str
"""A result's type and points, or ``"error: ..."``."""


class Answerer(Protocol):
    """Vigil, asked one way or another (its engine in process, or its HTTP API)."""

    async def instant(self, query: str, t_ms: int) -> Answer: ...

    async def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Answer: ...


class EngineAnswerer:
    """Vigil's engine, in process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def instant(self, query: str, t_ms: int) -> Answer:
        try:
            return from_vigil(await self.engine.instant(query, t_ms))
        except PromQLError as exc:
            return f"error: {exc}"

    async def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Answer:
        try:
            return from_vigil(await self.engine.range(query, start_ms, end_ms, step_ms))
        except PromQLError as exc:
            return f"error: {exc}"


class HttpAnswerer:
    """Vigil's HTTP API (POST form, as Grafana sends), read like Prometheus' answers."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def instant(self, query: str, t_ms: int) -> Answer:
        return await self._post("/api/v1/query", instant_params(query, t_ms))

    async def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Answer:
        return await self._post(
            "/api/v1/query_range", range_params(query, start_ms, end_ms, step_ms)
        )

    async def _post(self, path: str, params: dict[str, str]) -> Answer:
        response = await self.client.post(path, data=params)
        return from_prometheus(response.json())


def instant_params(query: str, t_ms: int) -> dict[str, str]:
    return {"query": query, "time": f"{t_ms / 1000:.3f}"}


def range_params(query: str, start_ms: int, end_ms: int, step_ms: int) -> dict[str, str]:
    return {
        "query": query,
        "start": f"{start_ms / 1000:.3f}",
        "end": f"{end_ms / 1000:.3f}",
        "step": f"{step_ms / 1000:.3f}",
    }


async def compare_instant(prom: Prometheus, vigil: Answerer, query: str, t_ms: int) -> str | None:
    want = from_prometheus(prom.api("/api/v1/query", instant_params(query, t_ms)))
    return diff(want, await vigil.instant(query, t_ms))


async def compare_range(
    prom: Prometheus, vigil: Answerer, query: str, window: tuple[int, int, int]
) -> str | None:
    want = from_prometheus(prom.api("/api/v1/query_range", range_params(query, *window)))
    return diff(want, await vigil.range(query, *window))


Window = tuple[int, int, int]


async def run_corpus(
    prom: Prometheus,
    vigil: Answerer,
    times: list[int] | None = None,
    windows: list[Window] | None = None,
) -> tuple[int, list[str]]:
    """Every corpus query at ``times`` (instant) and over ``windows`` (range), or the
    corpus' own; the number of comparisons and a line per mismatch."""
    total, mismatches = 0, []
    plans = [
        (q, times or corpus.INSTANT_TIMES, windows or corpus.RANGES_QUERIES)
        for q in corpus.queries()
    ]
    plans += [
        (q, times or corpus.STALE_TIMES, windows or corpus.STALE_RANGES)
        for q in corpus.STALE_QUERIES
    ]
    for query, at_times, ranges in plans:
        for t in at_times:
            total += 1
            if (problem := await compare_instant(prom, vigil, query, t)) is not None:
                mismatches.append(f"instant {query} @ {t}: {problem}")
        for window in ranges:
            total += 1
            if (problem := await compare_range(prom, vigil, query, window)) is not None:
                mismatches.append(f"range {query} {list(window)}: {problem}")
    return total, mismatches


KNOWN_MISMATCHES = {
    "holt_winters(oc_gauge[10m], 0.5, 0.5)": "promql-parser does not know holt_winters: bad_data",
}


def report(label: str, total: int, mismatches: list[str]) -> list[str]:
    """Print the tally and every mismatch; the mismatches that are not known ones."""
    rate = (total - len(mismatches)) / total
    print(f"{label}: {total - len(mismatches)}/{total} match ({rate:.2%})")
    for m in mismatches:
        print("  mismatch:", m)
    return [m for m in mismatches if not any(k in m for k in KNOWN_MISMATCHES)]
