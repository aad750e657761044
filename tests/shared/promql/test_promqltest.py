"""Prometheus' own promqltest cases (ported files under ``testdata/``) against MemoryStorage."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.promql.engine import Engine
from shared.promql.errors import BadData
from shared.promql.result import Result
from tests.shared.promql.promqltest import Case, almost_equal, parse_file, run_case

TESTDATA = Path(__file__).parent / "testdata"

# (file, line) -> why the upstream expectation does not hold for Prometheus 2.x.
KNOWN: dict[tuple[str, int], str] = {
    ("functions.test", 315): "promql-parser does not know holt_winters: bad_data (documented)",
    ("functions.test", 335): "promql-parser does not know holt_winters: bad_data (documented)",
}


def _cases() -> list[tuple[str, Case]]:
    out = []
    for path in sorted(TESTDATA.glob("*.test")):
        out.extend((path.name, case) for case in parse_file(path))
    return out


CASES = _cases()


@pytest.mark.parametrize(("name", "case"), CASES, ids=[f"{n}:{c.line}" for n, c in CASES])
async def test_promqltest_case_matches_upstream_expectation(name: str, case: Case) -> None:
    reason = KNOWN.get((name, case.line))
    error = await run_case(case)
    if reason is not None:
        assert error is not None, f"known failure now passes, drop it from KNOWN: {reason}"
        pytest.xfail(reason)
    assert error is None, f"{name}:{case.line} {case.expr}: {error}"


INSTANT = [(n, c) for n, c in CASES if c.instant and not c.fail and (n, c.line) not in KNOWN]


@pytest.mark.parametrize(("name", "case"), INSTANT, ids=[f"{n}:{c.line}" for n, c in INSTANT])
async def test_range_evaluation_agrees_with_instant_evaluation(name: str, case: Case) -> None:
    """Each step of a range query is the instant query at that time (vectorised paths)."""
    engine = Engine(case.storage)
    t = case.start_ms
    try:
        ranged = await engine.range(case.expr, t - 60_000, t, 30_000)
    except BadData:
        return  # range vectors and strings have no range form
    instant = await engine.instant(case.expr, t)
    want = _points(instant)
    got = {
        tuple(sorted(s.labels.items())): float(s.values[-1])
        for s in ranged.matrix
        if s.timestamps_ms[-1] == t
    }
    assert set(got) == set(want), f"{name}:{case.line} {case.expr}"
    for key, value in want.items():
        assert almost_equal(got[key], value), f"{name}:{case.line} {case.expr} {dict(key)}"


def _points(result: Result) -> dict[tuple[tuple[str, str], ...], float]:
    if result.kind == "scalar":
        assert result.scalar is not None
        return {(): result.scalar[1]}
    return {tuple(sorted(s.labels.items())): s.v for s in result.vector}
