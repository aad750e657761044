"""What a rollup row holds, as the SELECTs both license modes share.

``samples_1m`` and ``samples_1h`` have the same columns in both modes::

    bucket     timestamptz       start of the bucket (UTC-aligned, 1 minute or 1 hour)
    series_id  bigint
    min, max   double precision  smallest and largest value
    sum        double precision  sum of the values
    count      bigint            number of values
    first      double precision  value of the earliest sample
    last       double precision  value of the latest sample
    increase   double precision  counter-reset-adjusted increase, first to last sample
    head       double precision  value of the sample lying exactly on the bucket's
                                 start, NULL when none (the only nullable column)

Every value of a row comes from the bucket's samples minus NaN: NaN values,
Prometheus' staleness marker (the NaN with bits 0x7ff0000000000002) among
them, are left out of every column, so a bucket holding only NaN has no row.
±Inf are ordinary values with IEEE arithmetic, as in Prometheus'
``*_over_time``: ``max`` may be +Inf, a sum meeting +Inf and -Inf is NaN, an
increase through an infinite value is ±Inf or NaN. No value makes a refresh
fail: sums and increases overflow to ±Inf instead of raising
(``vigil_float8_add``, ``vigil_sum_combine`` in migration 0002).

``head`` lets a query answer Prometheus 2.x's closed window ``[t - range, t]``
from buckets, which cover ``[t - range, t)``: the sample on ``t`` is the head
of the bucket starting at ``t`` (``web.storage_tsdb``). An hour's head is the
head of its first minute.

``increase`` is, over the bucket's samples in time order, the sum of each
step ``cur - prev``, or ``cur`` where the value dropped (a counter reset: it
restarted from zero) — Prometheus' ``increase()`` without extrapolation. It
covers the bucket from its first sample to its last; the step from the
previous bucket's last sample into this bucket's first is *not* in it,
because that previous sample lies in another bucket. To get the increase over
several consecutive buckets, add those boundary steps back: the SQL aggregate
``vigil_increase_merge(first, last, increase ORDER BY bucket)`` does exactly
that and equals ``vigil_increase(value ORDER BY time)`` over the raw samples
the rows cover; ``vigil_counter_step(prev_last, first)`` is one such step.
``rate`` over a range is that increase divided by the range; Prometheus'
extrapolation to the range's edges needs sample times, which rollups do not
keep (the query side extrapolates from bucket bounds or reads raw samples).

The hour rollup is computed from the minute rollup (``min`` of ``min``,
``sum`` of ``count``, first ``first`` and last ``last`` by bucket,
``vigil_increase_merge``), which gives the same values as computing it from
raw samples — tests check both.
"""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = (
    "bucket",
    "series_id",
    "min",
    "max",
    "sum",
    "count",
    "first",
    "last",
    "increase",
    "head",
)
"""Columns of both rollup tables, in order."""

STALE_NAN_BITS = 0x7FF0000000000002
"""Prometheus' staleness marker: a NaN, left out of rollups like every NaN."""

# In the SELECTs, values of magnitude 1e290 or more are summed as numeric: no
# realistic count of smaller ones can overflow float8 (1e290 * 1e18 < 1.8e308).


@dataclass(frozen=True, slots=True)
class Resolution:
    """One rollup level: its table, bucket width and the SELECT that computes it."""

    table: str
    width_s: int
    source: str
    time_column: str
    """The source's time column, which a time-range condition names."""
    select: str
    """SELECT of every column, grouped by bucket and series; ``{where}`` marks
    the line of its WHERE clause."""
    filter: str | None
    """Condition on the source rows that is part of the definition."""

    def query(self, extra: str | None = None) -> str:
        """The SELECT, with ``extra`` (a condition such as a time range) ANDed to the filter."""
        conditions = [c for c in (self.filter, extra) if c]
        where = ("\nWHERE " + "\n  AND ".join(conditions)) if conditions else ""
        return self.select.format(where=where)


MINUTE = Resolution(
    table="samples_1m",
    width_s=60,
    source="samples",
    time_column="time",
    filter="value <> 'NaN'::float8",
    select="""SELECT
    time_bucket(INTERVAL '1 minute', time) AS bucket,
    series_id,
    min(value) AS min,
    max(value) AS max,
    vigil_sum_combine(
        sum(value) FILTER (WHERE abs(value) < '1e290'::float8),
        sum(value::numeric) FILTER (WHERE NOT abs(value) < '1e290'::float8)
    ) AS sum,
    count(*) AS count,
    first(value, time) AS first,
    last(value, time) AS last,
    vigil_increase(value ORDER BY time) AS increase,
    max(value) FILTER (WHERE time = time_bucket(INTERVAL '1 minute', time)) AS head
FROM samples{where}
GROUP BY time_bucket(INTERVAL '1 minute', time), series_id""",
)

HOUR = Resolution(
    table="samples_1h",
    width_s=3600,
    source="samples_1m",
    time_column="bucket",
    filter=None,
    select="""SELECT
    time_bucket(INTERVAL '1 hour', bucket) AS bucket,
    series_id,
    min(min) AS min,
    max(max) AS max,
    vigil_sum_combine(
        sum(sum) FILTER (WHERE abs(sum) < '1e290'::float8),
        sum(sum::numeric) FILTER (WHERE NOT abs(sum) < '1e290'::float8)
    ) AS sum,
    sum(count)::bigint AS count,
    first(first, bucket) AS first,
    last(last, bucket) AS last,
    vigil_increase_merge(first, last, increase ORDER BY bucket) AS increase,
    max(head) FILTER (WHERE bucket = time_bucket(INTERVAL '1 hour', bucket)) AS head
FROM samples_1m{where}
GROUP BY time_bucket(INTERVAL '1 hour', bucket), series_id""",
)
