"""Binary operators: arithmetic, comparison (filter or ``bool``) and set operators,
with ``on``/``ignoring`` and ``group_left``/``group_right`` vector matching.

Matching is decided per step, as Prometheus does: a series pair matches at the steps
where both are present; "one" sides must be unique per match group at every step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.promql.errors import BadData, ExecutionError
from shared.promql.evaluator import Evaluator
from shared.promql.parse import enum_name
from shared.promql.values import (
    F64,
    I64,
    LabelKey,
    Scalar,
    Value,
    Vector,
    drop_name,
    label_key,
)

_COMPARE = {"==", "!=", ">", "<", ">=", "<="}
_SET = {"and", "or", "unless"}
_DROPS_NAME = {"+", "-", "*", "/", "%", "^"}
"""Prometheus 2.x keeps ``__name__`` for comparisons and ``atan2``."""


def _apply(op: str, a: F64, b: F64) -> tuple[F64, np.ndarray]:
    """Value and keep-mask of ``a op b`` (comparisons keep ``a`` where true)."""
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b, np.ones(np.shape(a + b), dtype=bool)
        if op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            r = np.true_divide(a, b)
        elif op == "%":
            r = np.fmod(a, b)
        elif op == "^":
            r = np.power(a, b)
        elif op == "atan2":
            r = np.arctan2(a, b)
        else:
            keep = {
                "==": np.equal,
                "!=": np.not_equal,
                ">": np.greater,
                "<": np.less,
                ">=": np.greater_equal,
                "<=": np.less_equal,
            }[op](a, b)
            return np.broadcast_to(a, keep.shape).astype(np.float64), keep
    return r, np.ones(np.shape(r), dtype=bool)


async def binary(ev: Evaluator, node: Any, ts: I64) -> Value:
    op = str(node.op).strip().lower()
    mod = node.modifier
    return_bool = bool(mod is not None and mod.return_bool)
    lhs = await ev.eval(node.lhs, ts)
    rhs = await ev.eval(node.rhs, ts)
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        val, keep = _apply(op, lhs.values, rhs.values)
        if op in _COMPARE:
            val = keep.astype(np.float64)
        return Scalar(val)
    if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
        return _vector_scalar(op, lhs, rhs.values, return_bool, swap=False)
    if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
        return _vector_scalar(op, rhs, lhs.values, return_bool, swap=True)
    if isinstance(lhs, Vector) and isinstance(rhs, Vector):
        if op in _SET:
            return _set_op(op, lhs, rhs, mod)
        return _vector_vector(op, lhs, rhs, mod, return_bool)
    raise BadData(f"cannot evaluate binary operator {op} on these operand types")


def _vector_scalar(op: str, vec: Vector, s: F64, return_bool: bool, swap: bool) -> Vector:
    a, b = (s[None, :], vec.values) if swap else (vec.values, s[None, :])
    val, keep = _apply(op, a, b)
    present = vec.present.copy()
    labels = vec.labels
    if op in _COMPARE:
        if return_bool:
            val = keep.astype(np.float64)
            labels = [drop_name(x) for x in labels]
        else:
            val = vec.values.copy()
            present &= keep
    elif op in _DROPS_NAME:
        labels = [drop_name(x) for x in labels]
    return Vector(labels, np.asarray(val, dtype=np.float64), present).compact()


def _signature(labels: dict[str, str], mod: Any) -> LabelKey:
    matching = mod.matching if mod is not None else None
    if matching is not None and enum_name(matching.type) == "Include":
        names = set(matching.labels)
        return tuple(sorted((k, v) for k, v in labels.items() if k in names))
    drop = {"__name__", *(matching.labels if matching is not None else [])}
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def _set_op(op: str, lhs: Vector, rhs: Vector, mod: Any) -> Vector:
    steps = lhs.steps

    def seen(vec: Vector) -> dict[LabelKey, np.ndarray]:
        out: dict[LabelKey, np.ndarray] = {}
        for lab, mask in zip(vec.labels, vec.present, strict=True):
            sig = _signature(lab, mod)
            out[sig] = out.get(sig, np.zeros(steps, dtype=bool)) | mask
        return out

    none = np.zeros(steps, dtype=bool)
    if op in ("and", "unless"):
        right = seen(rhs)
        present = lhs.present.copy()
        for i, lab in enumerate(lhs.labels):
            hit = right.get(_signature(lab, mod), none)
            present[i] &= hit if op == "and" else ~hit
        return Vector(lhs.labels, lhs.values, present).compact()
    left = seen(lhs)
    rpresent = rhs.present.copy()
    for i, lab in enumerate(rhs.labels):
        rpresent[i] &= ~left.get(_signature(lab, mod), none)
    return Vector(
        lhs.labels + rhs.labels,
        np.vstack((lhs.values, rhs.values)),
        np.vstack((lhs.present, rpresent)),
    ).compact()


def _result_labels(
    many: dict[str, str], one: dict[str, str], op: str, mod: Any, return_bool: bool
) -> dict[str, str]:
    out = dict(many)
    if op in _DROPS_NAME or return_bool:
        out.pop("__name__", None)
    card = enum_name(mod.card) if mod is not None else "OneToOne"
    matching = mod.matching if mod is not None else None
    if card == "OneToOne" and matching is not None:
        names = set(matching.labels)
        if enum_name(matching.type) == "Include":
            out = {k: v for k, v in out.items() if k in names}
        else:
            out = {k: v for k, v in out.items() if k not in names}
    for name in (mod.group_labels or []) if mod is not None else []:
        if one.get(name, ""):
            out[name] = one[name]
        else:
            out.pop(name, None)
    return out


def _vector_vector(  # noqa: PLR0912 - Prometheus' VectorBinop is one loop with many rules
    op: str, lhs: Vector, rhs: Vector, mod: Any, return_bool: bool
) -> Vector:
    card = enum_name(mod.card) if mod is not None else "OneToOne"
    if card == "ManyToMany":
        raise BadData(f"cannot evaluate {op}: many-to-many matching is only for set operators")
    swapped = card == "OneToMany"
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    steps = lhs.steps
    one_sigs: dict[LabelKey, list[int]] = {}
    for j, lab in enumerate(one.labels):
        one_sigs.setdefault(_signature(lab, mod), []).append(j)
    for sig, rows in one_sigs.items():
        if len(rows) > 1 and (one.present[rows].sum(axis=0) > 1).any():
            side = "left" if swapped else "right"
            raise ExecutionError(
                f"found duplicate series for the match group {dict(sig)} on the {side} "
                "hand-side of the operation; many-to-many matching not allowed: "
                "matching labels must be unique on one side"
            )
    out: dict[LabelKey, tuple[dict[str, str], F64, np.ndarray]] = {}
    matched: dict[LabelKey, np.ndarray] = {}
    for i, lab in enumerate(many.labels):
        sig = _signature(lab, mod)
        for j in one_sigs.get(sig, []):
            both = many.present[i] & one.present[j]
            if not both.any():
                continue
            a, b = (one.values[j], many.values[i]) if swapped else (many.values[i], one.values[j])
            val, keep = _apply(op, a, b)
            if op in _COMPARE:
                if return_bool:
                    val = keep.astype(np.float64)
                    keep = np.ones(steps, dtype=bool)
                else:
                    val = a.copy()
            mask = both & keep
            if card == "OneToOne":  # only pairs that survive a filter count (Prometheus)
                prior = matched.setdefault(sig, np.zeros(steps, dtype=bool))
                if (prior & mask).any():
                    raise ExecutionError(
                        "multiple matches for labels: many-to-one matching must be explicit "
                        "(group_left/group_right)"
                    )
                prior |= mask
            labels = _result_labels(lab, one.labels[j], op, mod, return_bool)
            key = label_key(labels)
            entry = out.get(key)
            if entry is None:
                out[key] = (labels, np.where(mask, val, 0.0), mask.copy())
                continue
            if (entry[2] & mask).any():
                raise ExecutionError(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                )
            entry[1][mask] = val[mask]
            entry[2][mask] = True
    if not out:
        return Vector.empty(steps)
    found = list(out.values())
    return Vector(
        [r[0] for r in found], np.vstack([r[1] for r in found]), np.vstack([r[2] for r in found])
    ).compact()
