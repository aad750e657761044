"""Synthetic data and the query corpus (function x data shape) for the oracle comparison."""

from __future__ import annotations

import itertools
import math
import random

T0 = 1_700_000_000_000
"""First sample (ms), a multiple of the 15 s scrape interval."""
STEP = 15_000
SAMPLES = 240  # one hour

Labels = dict[str, str]


def series() -> list[tuple[Labels, list[tuple[int, float]]]]:
    rng = random.Random(42)
    out: list[tuple[Labels, list[tuple[int, float]]]] = []
    times = [T0 + i * STEP for i in range(SAMPLES)]
    for job, inst in itertools.product(("a", "b"), ("i1", "i2", "i3")):
        base = {"job": job, "instance": inst}
        value, counter = 0.0, []
        for i, t in enumerate(times):
            if inst == "i2" and i in (80, 170):
                value = rng.randint(0, 5)  # counter reset
            else:
                value += rng.randint(0, 20)
            counter.append((t, float(value)))
        out.append(({"__name__": "oc_counter", **base}, counter))
        gauge, g = [], rng.uniform(-50, 50)
        for t in times:
            g += rng.uniform(-5, 5)
            gauge.append((t, round(g, 3)))
        out.append(({"__name__": "oc_gauge", **base}, gauge))
    # Gaps longer than the lookback delta, and irregular intervals.
    gappy = [(t, float(i)) for i, t in enumerate(times) if not 60 <= i < 110 and i % 7 != 3]
    out.append(({"__name__": "oc_gappy", "job": "a", "instance": "i1"}, gappy))
    out.append(({"__name__": "oc_const", "job": "a"}, [(t, 7.0) for t in times[:120]]))
    out.append(({"__name__": "oc_neg", "job": "b"}, [(t, -1.0 - i) for i, t in enumerate(times)]))
    specials = [1.5, float("nan"), float("inf"), -2.0, float("-inf"), 0.0, 1e300]
    for k in range(3):
        vals = [(t, specials[(i // 20 + k) % len(specials)]) for i, t in enumerate(times)]
        out.append(({"__name__": "oc_special", "shape": str(k)}, vals))
    # Classic histograms.
    bounds = ("0.1", "0.5", "1", "5", "+Inf")
    for job in ("a", "b"):
        counts = [0.0] * len(bounds)
        rows: dict[str, list[tuple[int, float]]] = {le: [] for le in bounds}
        for t in times:
            obs = [rng.expovariate(1.0) for _ in range(rng.randint(0, 10))]
            for k, le in enumerate(bounds):
                counts[k] += sum(1 for o in obs if o <= float(le))
                rows[le].append((t, counts[k]))
        out.extend(
            ({"__name__": "oc_hist_bucket", "job": job, "le": le}, rows[le]) for le in bounds
        )
    return out


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def openmetrics(data: list[tuple[Labels, list[tuple[int, float]]]]) -> str:
    lines = []
    for labels, samples in data:
        name = labels["__name__"]
        rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        for t, v in samples:
            lines.append(f"{name}{{{rest}}} {_number(v)} {t / 1000:.3f}")
    return "\n".join(lines) + "\n# EOF\n"


def stale_series() -> list[tuple[Labels, list[tuple[int, float]]]]:
    """Series with staleness markers, after the backfilled hour (sent by remote write)."""
    from shared.wire import STALE_NAN

    start = T0 + 61 * 60_000
    s: list[tuple[int, float]] = []
    t: list[tuple[int, float]] = []
    for i in range(80):
        when = start + i * STEP
        if i == 36:
            s.append((when, STALE_NAN))
        elif not 36 < i < 45:
            s.append((when, float(i * 3)))
        if i < 50:
            t.append((when, 100.0 - i))
    t.append((start + 50 * STEP, STALE_NAN))
    return [
        ({"__name__": "oc_stale", "job": "s"}, s),
        ({"__name__": "oc_stale", "job": "t"}, t),
    ]


STALE_QUERIES = [
    "oc_stale",
    "sum(oc_stale)",
    "oc_stale offset 1m",
    "rate(oc_stale[5m])",
    "count_over_time(oc_stale[5m])",
    "last_over_time(oc_stale[5m])",
    "absent(oc_stale)",
    'absent(oc_stale{job="t"})',
    "timestamp(oc_stale)",
    "oc_stale > 50",
    "max_over_time(oc_stale[2m:30s])",
]
STALE_TIMES = [T0 + m * 60_000 + s * 1000 for m in (70, 71, 73, 74, 75, 80, 84) for s in (0, 7)]
STALE_RANGES = [(T0 + 60 * 60_000, T0 + 95 * 60_000, 30_000)]

SELECTORS = [
    "oc_counter",
    'oc_counter{job="a"}',
    'oc_counter{instance=~"i1|i3"}',
    'oc_counter{instance!~"i[12]"}',
    'oc_counter{job!=""}',
    'oc_counter{missing=""}',
    "oc_gappy",
    'oc_counter{job="b"} offset 10m',
    f'oc_counter{{job="a"}} @ {(T0 + 1_800_000) / 1000:.0f}',
]
GAUGES = [
    "oc_gauge",
    'oc_gauge{instance=~"i.*"}',
    "oc_gappy",
    "oc_neg",
    "oc_gauge offset 7m",
    '{__name__=~"oc_g.*"}',
]
RANGES = ["1m", "5m", "10m"]
COUNTER_FNS = ["rate", "increase", "irate", "resets"]
GAUGE_FNS = [
    "delta",
    "idelta",
    "deriv",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
]


def queries() -> list[str]:
    out: list[str] = []
    for fn, sel, rng in itertools.product(COUNTER_FNS, SELECTORS, RANGES[1:]):
        out.append(_range_call(fn, sel, rng))
    for fn, sel in itertools.product(GAUGE_FNS, GAUGES):
        out.append(_range_call(fn, sel, "5m"))
    for rng in RANGES:
        out.append(f"rate(oc_gappy[{rng}])")
        out.append(f"quantile_over_time(0.3, oc_gauge[{rng}])")
        out.append(f"predict_linear(oc_gauge[{rng}], 600)")
        out.append(f"absent_over_time(oc_gappy[{rng}])")
    out += [
        "rate(oc_counter[5m:1m])",
        "max_over_time(rate(oc_counter[2m])[10m:])",
        "avg_over_time(oc_gauge[10m:30s] offset 3m)",
        f"sum_over_time(oc_gauge[5m:1m] @ {(T0 + 600_000) / 1000:.0f})",
        "min_over_time(deriv(oc_gauge[5m])[15m:2m])",
        "oc_gauge[5m]",
        "oc_counter[3m] offset 1m",
    ]
    for fn in ["abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "timestamp"]:
        out.append(f"{fn}(oc_gauge)")
    out += [
        "round(oc_gauge)",
        "round(oc_gauge, 0.5)",
        "clamp(oc_gauge, -10, 10)",
        "clamp_min(oc_gauge, 0)",
        "clamp_max(oc_gauge, 0)",
        "scalar(sum(oc_gauge))",
        "scalar(oc_gauge)",
        "vector(1)",
        "time()",
        "minute()",
        "hour(oc_gauge)",
        "day_of_week()",
        "days_in_month()",
        "month(vector(time()))",
        "year()",
        "absent(oc_gauge)",
        'absent(nonexistent{job="x", instance=~"y"})',
        "absent(oc_gappy)",
        'label_replace(oc_gauge, "host", "$1-x", "instance", "i(.*)")',
        'label_join(oc_gauge, "both", "/", "job", "instance")',
        "sort(oc_gauge)",
        "sort_desc(oc_gauge)",
        "timestamp(oc_gappy)",
    ]
    for agg, grp in itertools.product(
        ["sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"],
        ["", " by (job)", " without (instance)"],
    ):
        out.append(f"{agg}{grp} (oc_gauge)")
    out += [
        "topk(2, oc_gauge)",
        "bottomk(1, oc_gauge) by (job)",
        "topk by (job) (1, rate(oc_counter[5m]))",
        "quantile(0.5, oc_gauge) by (job)",
        "quantile(0.9, rate(oc_counter[5m]))",
        'count_values("v", round(oc_gauge / 10))',
        "sum(rate(oc_counter[5m])) by (job)",
    ]
    out += [
        "oc_gauge + 1",
        "2 * oc_gauge",
        "oc_gauge > 0",
        "0 < oc_gauge",
        "oc_gauge > bool 0",
        "oc_gauge == bool oc_gauge",
        "oc_gauge - oc_gauge offset 5m",
        "oc_counter / oc_gauge",
        "oc_counter / on(job, instance) oc_gauge",
        "oc_counter / ignoring(instance) group_left sum by (job) (oc_counter)",
        "sum by (job) (oc_counter) / ignoring(instance) group_right oc_counter",
        "oc_gauge and oc_counter",
        'oc_gauge and on(instance) oc_counter{job="a"}',
        'oc_gauge or oc_counter{instance="i1"}',
        'oc_gauge unless oc_gauge{job="a"}',
        "oc_gauge % 3",
        "oc_gauge ^ 2",
        "oc_gauge atan2 oc_gauge",
        "-oc_gauge",
        "oc_gauge * on() group_left oc_const",
        "oc_counter + on(job) oc_gauge",
        "1 + 2 * 3",
        "oc_gappy > 5 and oc_gappy < 100",
    ]
    for q in ["0.5", "0.9", "0.99"]:
        out.append(f"histogram_quantile({q}, rate(oc_hist_bucket[5m]))")
        out.append(f"histogram_quantile({q}, sum by (le) (rate(oc_hist_bucket[5m])))")
    out.append("histogram_quantile(0.5, oc_hist_bucket)")
    out += [
        "oc_special",
        "sum(oc_special)",
        "avg(oc_special)",
        "max(oc_special)",
        "min_over_time(oc_special[5m])",
        "rate(oc_special[5m])",
        "changes(oc_special[10m])",
        "oc_special > 0",
        'count_values("v", oc_special)',
        "topk(1, oc_special)",
        "sort_desc(oc_special)",
        "quantile(0.5, oc_special)",
        "stddev(oc_special)",
        "oc_gauge @ start()",
        "oc_gauge @ end()",
        "rate(oc_counter[5m] @ end())",
        "sum_over_time(oc_gauge[5m:1m] @ start())",
        "topk(2, oc_gauge) by (job)",
        "bottomk(2, rate(oc_counter[5m]))",
        'count_values("le", oc_hist_bucket)',
        'oc_counter + oc_counter{job="a"}',
        "oc_gauge * on(job) oc_counter",
        "oc_gauge * on(job) group_left oc_counter",
        'label_replace(oc_gauge, "instance", "x", "", "")',
        "quantile_over_time(NaN, oc_gauge[5m])",
        "quantile(1.5, oc_gauge)",
        "clamp(oc_gauge, 5, -5)",
        "absent_over_time(nonexistent[5m])",
        "oc_gauge offset 1h",
        "deriv(oc_const[5m])",
        "predict_linear(oc_const[10m], 300)",
        "irate(oc_gappy[1m])",
        "idelta(oc_gappy[30s])",
        "vector(time()) - timestamp(oc_gappy)",
        "scalar(oc_const) * oc_gauge",
        "oc_gauge > bool scalar(oc_const)",
        "holt_winters(oc_gauge[10m], 0.5, 0.5)",
        'oc_gauge{job=~"(a"}',
        "sum(",
        "oc_gauge + on(job) oc_gauge",
        'label_replace(oc_gauge, "instance", "same", "", "")',
        'count_values by (job) ("value", floor(oc_gauge / 20))',
        "oc_counter * on(job, instance) group_left(le) oc_hist_bucket",
        'oc_gauge * on(job) group_left(extra) label_replace(sum by (job) (oc_gauge), "extra", "x$1", "job", "(.*)")',
        "timestamp(oc_gauge offset 5m)",
        f"-oc_gauge @ {(T0 + 1_000_000) / 1000:.0f}",
        "changes(oc_gappy[10m])",
        "resets(oc_counter[30m])",
        "max_over_time(rate(oc_counter[5m] offset 3m)[10m:1m])",
        "sum_over_time(sum_over_time(oc_gauge[2m:30s])[6m:1m] offset 2m)",
        f"avg_over_time(oc_gauge[10m:1m] @ {(T0 + 2_400_000) / 1000:.0f} offset 1m)",
        "absent_over_time(oc_gappy[2m:15s])",
        "rate(oc_counter[30s])",
        "increase(oc_counter[1h])",
        "deriv(oc_gappy[20m])",
        "predict_linear(oc_counter[15m], 3600)",
        "sum by (instance) (oc_gauge) and on(instance) topk(1, oc_gauge)",
        "oc_gauge unless on(job) oc_const",
        "oc_const or vector(0)",
        "count(oc_gappy) or vector(0)",
        "sort_desc(sum by (job) (rate(oc_counter[5m])))",
        "last_over_time(oc_gappy[10m])",
        "quantile_over_time(0.99, oc_gappy[15m])",
        "stddev_over_time(oc_neg[10m])",
        "oc_gauge > on(job, instance) oc_counter",
        'oc_gauge < ignoring(job) oc_gauge{job="a"}',
        "oc_gauge >= bool on(instance, job) oc_gauge",
        "oc_counter > on(job) group_left oc_const",
        "oc_const < on(job) group_right oc_counter",
        "oc_gauge != oc_gauge offset 1m",
        "sum without (le) (oc_hist_bucket)",
        "oc_gauge == bool on(job) group_left oc_const",
        "max by (job) (oc_gappy)",
        "scalar(oc_gappy)",
        "oc_gauge and ignoring(instance) oc_const",
        "(oc_gauge > 0) or (oc_gauge < 0)",
        "absent(oc_gappy offset 20m)",
        'label_replace(oc_gauge, "job", "$2", "instance", "(i)(.*)")',
        "time() - timestamp(oc_gappy)",
        "vector(scalar(oc_const))",
        "sgn(oc_neg) * oc_gauge",
        "topk(scalar(count(oc_gauge)) - 4, oc_gauge)",
        "quantile(-1, oc_gauge)",
        "histogram_quantile(0.5, rate(oc_hist_bucket[1m]))",
        "day_of_month(oc_neg * 86400 * 40)",
        "minute(oc_neg)",
        "hour(oc_gauge * 1000)",
        "day_of_week(oc_neg * 86400)",
        "days_in_month(oc_gauge * 1e6)",
        "year(oc_counter * 1e5)",
        "exp(oc_gauge) > 1e10",
        "oc_special * 0",
        "oc_special / oc_special",
        "ln(oc_special)",
        "sum_over_time(oc_special[5m])",
        "avg_over_time(oc_special[3m])",
        "max_over_time(oc_special[3m])",
        "quantile_over_time(0.5, oc_special[5m])",
        "stdvar_over_time(oc_special[5m])",
        "deriv(oc_special[5m])",
        "irate(oc_special[5m])",
        "increase(oc_special[5m])",
        "sum by (shape) (oc_special)",
        "topk(2, oc_special)",
        "bottomk(2, oc_special)",
        'count_values("v", oc_gauge > 1000)',
    ]
    return out


INSTANT_TIMES = [
    T0 + 30 * 60_000,
    T0 + 59 * 60_000 + 45_000,
    T0 + 62 * 60_000,
    T0 + 17 * 60_000 + 7_000,
]
RANGES_QUERIES = [(T0, T0 + 70 * 60_000, 60_000), (T0 + 1_234, T0 + 50 * 60_000, 37_000)]


def _range_call(fn: str, selector: str, rng: str) -> str:
    """``fn(selector[rng])``, with the range placed before ``offset``/``@`` modifiers."""
    for mod in (" offset ", " @ "):
        if mod in selector:
            head, tail = selector.split(mod, 1)
            return f"{fn}({head}[{rng}]{mod}{tail})"
    return f"{fn}({selector}[{rng}])"
