"""The SQL increase aggregates against a few lines of Python (Prometheus' rule)."""

from __future__ import annotations

import itertools
import math

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ingest.rollup.conftest import RollupDb
from tests.ingest.rollup.helpers import STALE, same_float

pytestmark = pytest.mark.timescale


def reference_increase(values: list[float]) -> float | None:
    """Sum of steps between consecutive non-NaN values; a drop is a reset adding the new value."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return None
    total = 0.0
    for prev, cur in itertools.pairwise(kept):
        total += cur - prev if cur >= prev else cur
    return total


values = st.one_of(
    st.integers(0, 1000).map(float),
    st.floats(-1e6, 1e6),
    st.sampled_from([math.nan, STALE, math.inf, -math.inf]),
)
# Each sequence comes with cut points that split it into consecutive "buckets".
sequences = st.lists(
    st.tuples(st.lists(values, max_size=25), st.lists(st.integers(0, 25), max_size=4)),
    min_size=1,
    max_size=8,
)

_WHOLE = """
SELECT g, vigil_increase(v ORDER BY i) AS inc
FROM unnest($1::int[], $2::int[], $3::float8[]) AS x(g, i, v) GROUP BY g
"""
_MERGED = """
WITH buckets AS (
    SELECT g, k, first(v, i) AS first, last(v, i) AS last, vigil_increase(v ORDER BY i) AS inc
    FROM unnest($1::int[], $2::int[], $3::float8[], $4::int[]) AS x(g, i, v, k)
    WHERE v <> 'NaN'::float8
    GROUP BY g, k
)
SELECT g, vigil_increase_merge(first, last, inc ORDER BY k) AS inc FROM buckets GROUP BY g
"""


@settings(max_examples=40)
@given(sequences)
async def test_increase_matches_the_reference_whole_and_merged_from_buckets(
    rollup_db: RollupDb, data: list[tuple[list[float], list[int]]]
) -> None:
    g, i, v, k = [], [], [], []
    for group, (seq, cuts) in enumerate(data):
        for index, value in enumerate(seq):
            g.append(group)
            i.append(index)
            v.append(value)
            k.append(sum(1 for c in cuts if c <= index))
    conn = await asyncpg.connect(rollup_db.url)
    try:
        whole = {r["g"]: r["inc"] for r in await conn.fetch(_WHOLE, g, i, v)}
        merged = {r["g"]: r["inc"] for r in await conn.fetch(_MERGED, g, i, v, k)}
    finally:
        await conn.close()
    for group, (seq, _) in enumerate(data):
        want = reference_increase(seq)
        if want is None:
            assert whole.get(group) is None
            assert group not in merged
            continue
        assert same_float(whole[group], want), (seq, whole[group], want)
        assert same_float(merged[group], want), (seq, merged[group], want)
