"""PromQL: parse with ``promql-parser``, evaluate with numpy, read through ``Storage``.

Server-side only (numpy, promql-parser): agents never import this package.

Entry points: ``shared.promql.engine.Engine`` (``instant``/``range``) and
``shared.promql.memory.MemoryStorage``. Modules, one concept each::

    parse.py        promql-parser adapter (errors -> BadData, durations, @, matchers)
    values.py       Scalar / Vector (series x steps + presence mask) / Matrix / String
    evaluator.py    tree walk over a whole step grid; selectors, subqueries, limits
    selectors.py    lookback, staleness markers, range windows
    packed.py       a range vector's samples in flat arrays; windows of all series at once
    rangefuncs.py   rate family (Prometheus' extrapolatedRate), *_over_time, deriv ...
    rollupfuncs.py  *_over_time, rate, increase over rollup buckets (Matrix.rollup)
    functions.py    function dispatch, math, absent, scalar/vector, sort, clamp ...
    labelfuncs.py   label_replace, label_join
    timefuncs.py    minute, hour, day_of_week ... (UTC)
    histograms.py   histogram_quantile on classic buckets
    aggregations.py sum ... topk/bottomk (Prometheus' heap, same tie-breaks), count_values
    binops.py       arithmetic, comparison, and/or/unless, on/ignoring/group_x

Semantics are Prometheus 2.x (the Debian oracle is 2.42): lookback ``[t - 5m, t]``
and range windows ``[t - range, t]`` both inclusive; a staleness marker ends a series;
NaN is an ordinary value; subqueries align their steps to multiples of the step.

Known differences, by design or limitation:
- ``holt_winters`` is unknown to promql-parser, so it is ``BadData`` (parse error);
  ``double_exponential_smoothing`` (its Prometheus 3 name) works.
- Native histograms are not stored: ``histogram_count``/``_sum``/``_avg``/
  ``_fraction``/``_stddev``/``_stdvar`` answer empty vectors. ``info`` (Prometheus 3)
  is ``BadData``. ``limitk``/``limit_ratio`` (Prometheus 3) choose series by label
  order / a SHA-256 of the labels, not Prometheus' hash: same counts, maybe other series.
  ``first_over_time`` and ``ts_of_*_over_time`` (Prometheus 3, known to the parser) work.
- Regexes use Python's ``re`` (``fullmatch``), not RE2: see ``memory.py``.
- ``@`` with a time before 1970 is ``BadData`` (promql-parser cannot represent it).
- ``max_samples`` counts samples loaded from storage plus subquery points for the
  whole query (Prometheus counts the peak in memory): a stricter limit.
- The timeout is checked between nodes and by ``asyncio.timeout`` around awaits on
  the storage; one very large node finishes before the check.
"""
