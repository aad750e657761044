"""Aggregation operators (``sum``, ``avg``, ``topk``, ``count_values`` ...) with ``by``/``without``.

Groups are formed once per query (labels do not change across steps); each operator
then reduces the group's rows for every step at once, honouring per-step presence.
``by`` keeps only the listed labels; ``without`` drops the listed ones and ``__name__``.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import numpy as np

from shared.promql.errors import BadData, ExecutionError
from shared.promql.evaluator import Evaluator
from shared.promql.parse import enum_name
from shared.promql.rangefuncs import quantile
from shared.promql.values import F64, I64, LabelKey, Value, Vector, label_key

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def group_labels(labels: dict[str, str], names: list[str], without: bool) -> dict[str, str]:
    if without:
        drop = {*names, "__name__"}
        return {k: v for k, v in labels.items() if k not in drop}
    return {k: labels[k] for k in names if k in labels}


def _groups(vec: Vector, names: list[str], without: bool) -> list[tuple[dict[str, str], I64]]:
    found: dict[LabelKey, tuple[dict[str, str], list[int]]] = {}
    for i, lab in enumerate(vec.labels):
        g = group_labels(lab, names, without)
        found.setdefault(label_key(g), (g, []))[1].append(i)
    return [(g, np.array(rows, dtype=np.int64)) for g, rows in found.values()]


def _avg(v: F64, m: np.ndarray) -> F64:
    """Prometheus' incremental mean with Kahan compensation: no overflow on huge values."""
    mean = np.zeros(v.shape[1])
    comp = np.zeros(v.shape[1])
    count = np.zeros(v.shape[1])
    with np.errstate(invalid="ignore", over="ignore"):
        for row, mask in zip(v, m, strict=True):
            count += mask
            skip = np.isinf(mean) & (
                (np.isinf(row) & ((mean > 0) == (row > 0))) | (~np.isinf(row) & ~np.isnan(row))
            )
            upd = mask & ~skip
            c = np.where(count > 0, count, 1)
            inc = row / c - mean / c
            total = mean + inc
            delta = np.where(
                np.abs(mean) >= np.abs(inc), (mean - total) + inc, (inc - total) + mean
            )
            comp = np.where(upd, comp + delta, comp)
            mean = np.where(upd, total, mean)
        return np.where(np.isinf(mean), mean, mean + comp)


def _variance(v: F64, m: np.ndarray) -> F64:
    mean = np.zeros(v.shape[1])
    acc = np.zeros(v.shape[1])
    count = np.zeros(v.shape[1])
    with np.errstate(all="ignore"):
        for row, mask in zip(v, m, strict=True):
            count += mask
            delta = row - mean
            new_mean = mean + delta / np.where(count > 0, count, 1)
            acc = np.where(mask, acc + delta * (row - new_mean), acc)
            mean = np.where(mask, new_mean, mean)
        return acc / count


def _reduce(op: str, v: F64, m: np.ndarray) -> F64:
    out: F64
    if op == "sum":
        out = np.where(m, v, 0.0).sum(axis=0)
    elif op == "count":
        out = m.sum(axis=0).astype(np.float64)
    elif op == "group":
        out = np.ones(v.shape[1])
    elif op == "max":
        out = np.fmax.reduce(np.where(m, v, np.nan), axis=0)
    elif op == "min":
        out = np.fmin.reduce(np.where(m, v, np.nan), axis=0)
    else:
        return _reduce_stats(op, v, m)
    return out


def _reduce_stats(op: str, v: F64, m: np.ndarray) -> F64:
    if op == "avg":
        return _avg(v, m)
    if op == "stdvar":
        return _variance(v, m)
    if op == "stddev":
        return np.sqrt(_variance(v, m))
    raise BadData(f"cannot evaluate aggregation {op}: not supported by Vigil")


async def aggregate(ev: Evaluator, node: Any, ts: I64) -> Value:
    op = str(node.op).lower()
    mod = node.modifier
    names = list(mod.labels) if mod is not None else []
    without = mod is not None and enum_name(mod.type) == "Without"
    param = None
    if op in ("topk", "bottomk", "quantile", "limitk", "limit_ratio"):
        param = (await ev.eval_scalar(node.param, ts)).values
    if op in ("topk", "bottomk", "limitk") and param is not None:
        with np.errstate(invalid="ignore"):
            bad = ~((param >= -(2.0**63)) & (param <= 2.0**63 - 1))
        if bad.any():
            raise ExecutionError(
                f"Scalar value {format_value(float(param[bad][0]))} overflows int64"
            )
    label = None
    if op == "count_values":
        val = await ev.eval(node.param, ts)
        label = getattr(val, "value", None)
        if not isinstance(label, str):
            raise BadData("cannot evaluate count_values: expected a string parameter")
        if not _LABEL_NAME.fullmatch(label):
            raise ExecutionError(f"invalid label name {label!r}")
    vec = await ev.eval_vector(node.expr, ts)
    with np.errstate(all="ignore"):  # NaN and Inf are values: IEEE results are the answer
        return _aggregate(
            op, vec, names=names, without=without, param=param, label=label, steps=len(ts)
        )


def _aggregate(
    op: str,
    vec: Vector,
    *,
    names: list[str],
    without: bool,
    param: F64 | None,
    label: str | None,
    steps: int,
) -> Vector:
    groups = _groups(vec, names, without)
    if op in ("topk", "bottomk"):
        assert param is not None  # noqa: S101 - set above for these operators
        return _topk(vec, groups, param, op == "topk")
    if op == "count_values":
        assert label is not None  # noqa: S101 - set above
        return _count_values(vec, names, without, label)
    if op in ("limitk", "limit_ratio"):
        assert param is not None  # noqa: S101 - set above
        return _limit(vec, groups, param, ratio=op == "limit_ratio")
    labels, values, present = [], [], []
    for g, rows in groups:
        v, m = vec.values[rows], vec.present[rows]
        if op == "quantile":
            assert param is not None  # noqa: S101 - set above
            out = np.full(steps, np.nan)
            for j in np.nonzero(m.any(axis=0))[0]:
                out[j] = quantile(float(param[j]), v[m[:, j], j])
        else:
            out = _reduce(op, v, m)
        labels.append(g)
        values.append(out)
        present.append(m.any(axis=0))
    if not labels:
        return Vector.empty(steps)
    return Vector(labels, np.vstack(values), np.vstack(present))


def _go_heap_select(values: list[float], k: int, top: bool) -> list[int]:
    """Indices kept by Prometheus 2.x's heap (pop + push), so ties break the same way."""

    def less(a: int, b: int) -> bool:
        va, vb = values[heap[a]], values[heap[b]]
        if math.isnan(va):
            return True
        return va < vb if top else va > vb

    def up(j: int) -> None:
        while j > 0:
            i = (j - 1) // 2
            if not less(j, i):
                break
            heap[i], heap[j] = heap[j], heap[i]
            j = i

    def down(i: int, n: int) -> None:
        while True:
            j = 2 * i + 1
            if j >= n:
                return
            if j + 1 < n and less(j + 1, j):
                j += 1
            if not less(j, i):
                return
            heap[i], heap[j] = heap[j], heap[i]
            i = j

    heap: list[int] = []
    for idx, v in enumerate(values):
        if heap and len(heap) >= k:
            root = values[heap[0]]
            if not ((root < v) if top else (root > v)) and not math.isnan(root):
                continue
            heap[0], heap[-1] = heap[-1], heap[0]
            down(0, len(heap) - 1)
            heap.pop()
        heap.append(idx)
        up(len(heap) - 1)
    return heap


def _topk(vec: Vector, groups: list[tuple[dict[str, str], I64]], k: F64, top: bool) -> Vector:
    keep = np.zeros_like(vec.present)
    order_rows: list[int] = []
    for _g, rows in groups:
        for j in np.nonzero(vec.present[rows].any(axis=0))[0]:
            kk = float(k[j])
            if not kk >= 1:
                continue
            members = rows[vec.present[rows, j]]
            values = vec.values[members, j].tolist()
            chosen = _go_heap_select(values, int(min(kk, len(values))), top)
            keep[members[chosen], j] = True
            if vec.steps == 1:
                chosen.sort(key=lambda c: (math.isnan(values[c]), -values[c] if top else values[c]))
                order_rows.extend(int(members[c]) for c in chosen)
    if vec.steps == 1:
        return Vector([vec.labels[i] for i in order_rows], vec.values[order_rows], keep[order_rows])
    return Vector(vec.labels, vec.values, keep).compact()


def _limit(
    vec: Vector, groups: list[tuple[dict[str, str], I64]], param: F64, *, ratio: bool
) -> Vector:
    """``limitk``: the first k series of each group in label order; ``limit_ratio``: a
    stable hash of the labels below the ratio. Prometheus 3 picks by its own label hash,
    so the chosen series may differ from Prometheus' (the counts do not)."""
    keep = np.zeros_like(vec.present)
    for _g, rows in groups:
        if ratio:
            spot = np.array([_label_spot(vec.labels[r]) for r in rows])
            r = np.clip(param, -1.0, 1.0)[None, :]
            chosen = np.where(r >= 0, spot[:, None] < r, spot[:, None] >= 1.0 + r)
            keep[rows] = vec.present[rows] & chosen
            continue
        order = sorted(rows.tolist(), key=lambda i: label_key(vec.labels[i]))
        rank = np.cumsum(vec.present[order], axis=0)
        with np.errstate(invalid="ignore"):
            k = np.where(np.isfinite(param), param, 0).astype(np.int64)
        keep[order] = vec.present[order] & (rank <= k[None, :])
    return Vector(vec.labels, vec.values, keep).compact()


def _label_spot(labels: dict[str, str]) -> float:
    digest = hashlib.sha256(repr(label_key(labels)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def format_value(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``."""
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return np.format_float_positional(v, unique=True, trim="-")


def _count_values(vec: Vector, names: list[str], without: bool, label: str) -> Vector:
    steps = vec.steps
    counts: dict[LabelKey, tuple[dict[str, str], F64]] = {}
    for i, lab in enumerate(vec.labels):
        base = group_labels(lab, names, without)
        for j in np.nonzero(vec.present[i])[0]:
            g = {**base, label: format_value(float(vec.values[i, j]))}
            entry = counts.setdefault(label_key(g), (g, np.zeros(steps)))
            entry[1][j] += 1
    if not counts:
        return Vector.empty(steps)
    labels = [g for g, _ in counts.values()]
    values = np.vstack([c for _, c in counts.values()])
    return Vector(labels, values, values > 0)
