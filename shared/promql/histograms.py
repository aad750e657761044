"""``histogram_quantile`` over classic (``le``) buckets, as Prometheus 2.x computes it."""

from __future__ import annotations

import math

import numpy as np

from shared.promql.values import F64, LabelKey, Vector, label_key


def parse_le(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def bucket_quantile(q: float, bounds: F64, counts: F64) -> float:
    """``bounds`` sorted ascending; ``counts`` cumulative as stored (maybe non-monotonic)."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if len(bounds) == 0 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return math.nan
    # Coalesce buckets with the same bound, then force monotonic counts.
    uniq, inverse = np.unique(bounds, return_inverse=True)
    summed = np.zeros(len(uniq))
    np.add.at(summed, inverse, counts)
    counts = np.maximum.accumulate(summed)
    bounds = uniq
    if len(bounds) < 2:
        return math.nan
    observations = counts[-1]
    if observations == 0 or math.isnan(observations):
        return math.nan
    rank = q * observations
    b = int(np.searchsorted(counts[:-1], rank, side="left"))
    if b == len(bounds) - 1:
        return float(bounds[-2])
    if b == 0 and bounds[0] <= 0:
        return float(bounds[0])
    start, end, count = 0.0, float(bounds[b]), float(counts[b])
    if b > 0:
        start = float(bounds[b - 1])
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return float(start + (end - start) * (rank / count))


def histogram_quantile(q: F64, vec: Vector) -> Vector:
    groups: dict[LabelKey, list[tuple[int, float]]] = {}
    out_labels: dict[LabelKey, dict[str, str]] = {}
    for i, lab in enumerate(vec.labels):
        le = parse_le(lab["le"]) if "le" in lab else None
        if le is None:
            continue
        rest = {k: v for k, v in lab.items() if k not in ("le", "__name__")}
        key = label_key(rest)
        groups.setdefault(key, []).append((i, le))
        out_labels[key] = rest
    steps = vec.steps
    labels, values, present = [], [], []
    for key, members in groups.items():
        members.sort(key=lambda m: m[1])
        rows = np.array([m[0] for m in members])
        bounds = np.array([m[1] for m in members])
        vals = np.full(steps, np.nan)
        ok = vec.present[rows].any(axis=0)
        for j in np.nonzero(ok)[0]:
            mask = vec.present[rows, j]
            vals[j] = bucket_quantile(float(q[j]), bounds[mask], vec.values[rows[mask], j])
        labels.append(out_labels[key])
        values.append(vals)
        present.append(ok)
    if not labels:
        return Vector.empty(steps)
    return Vector(labels, np.vstack(values), np.vstack(present))
