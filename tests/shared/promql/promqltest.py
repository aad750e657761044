"""A loader for Prometheus' promqltest format (``load``, ``clear``, ``eval[_fail|_ordered]``).

Supports ``load <interval>`` blocks with series expansions (``a+bxN``, ``a-bxN``, ``axN``,
``_``, ``_xN``, ``stale``, ``NaN``, ``Inf``), ``eval instant at <t> <expr>`` and
``eval range from <t> to <t> step <d> <expr>``, comparing values like Prometheus'
``almostEqual`` (relative 1e-6).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser as pp

from shared.promql.engine import Engine
from shared.promql.memory import MemoryStorage
from shared.promql.result import Result
from shared.wire import STALE_NAN

EPSILON = 1e-6
_EVAL = re.compile(
    r"^eval(?P<kind>_fail|_ordered)?\s+(?:instant\s+at\s+(?P<at>\S+)"
    r"|range\s+from\s+(?P<start>\S+)\s+to\s+(?P<end>\S+)\s+step\s+(?P<step>\S+))\s+(?P<expr>.+)$"
)
_EXPAND = re.compile(r"^(?P<a>[-+]?[^-+x]+?)(?:(?P<op>[-+])(?P<b>[^x]+))?x(?P<n>\d+)$")


def dur(text: str) -> int:
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return round(float(text) * 1000)
    units = {
        "ms": 1,
        "s": 1000,
        "m": 60_000,
        "h": 3_600_000,
        "d": 86_400_000,
        "w": 604_800_000,
        "y": 31_536_000_000,
    }
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(f"cannot parse duration {text!r}")
    return sum(int(a) * units[b] for a, b in parts)


def num(text: str) -> float:
    low = text.lower()
    if low in ("nan",):
        return math.nan
    if low in ("inf", "+inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "stale":
        return STALE_NAN
    return float(text)


def expand(tokens: list[str]) -> list[float | None]:
    out: list[float | None] = []
    for tok in tokens:
        if tok == "_":
            out.append(None)
            continue
        m = re.fullmatch(r"_x(\d+)", tok)
        if m:
            out.extend([None] * int(m.group(1)))
            continue
        m = _EXPAND.match(tok)
        if m and m.group("a") not in ("stale",):
            a = num(m.group("a"))
            b = num(m.group("b")) if m.group("b") else 0.0
            if m.group("op") == "-":
                b = -b
            out.extend(a + i * b for i in range(int(m.group("n")) + 1))
            continue
        out.append(num(tok))
    return out


def split_series(line: str) -> tuple[dict[str, str], str]:
    """``metric{a="b"} rest`` -> labels, rest (brace-aware, quotes honoured)."""
    depth, quote, i = 0, False, 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == '"':
                quote = False
        elif c == '"':
            quote = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c.isspace() and depth == 0:
            break
        i += 1
    desc, rest = line[:i], line[i:].strip()
    return parse_labels(desc), rest


def parse_labels(desc: str) -> dict[str, str]:
    if desc == "{}":
        return {}
    node = pp.parse(desc)
    labels = {m.name: m.value for m in node.matchers.matchers}
    if node.name:
        labels["__name__"] = node.name
    return labels


@dataclass
class Case:
    line: int
    expr: str
    start_ms: int
    end_ms: int
    step_ms: int
    instant: bool
    fail: bool
    ordered: bool
    expected: list[tuple[dict[str, str] | None, list[float | None]]] = field(default_factory=list)
    storage: MemoryStorage = field(default_factory=MemoryStorage)


def parse_file(path: Path) -> list[Case]:
    cases: list[Case] = []
    storage = MemoryStorage()
    loaded: list[tuple[dict[str, str], int, float]] = []
    captured = False  # a case holds ``storage``: later loads go to a fresh copy
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i].strip()
        i += 1
        if not raw or raw.startswith("#"):
            continue
        if raw == "clear":
            storage, loaded, captured = MemoryStorage(), [], False
            continue
        if raw.startswith("load"):
            if captured:
                storage, captured = MemoryStorage(), False
                for labels, t, v in loaded:
                    storage.add(labels, t, v)
            step = dur(raw.split()[1])
            while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith("#"):
                labels, rest = split_series(lines[i].strip())
                for k, v in enumerate(expand(rest.split())):
                    if v is not None:
                        storage.add(labels, k * step, v)
                        loaded.append((labels, k * step, v))
                i += 1
            continue
        m = _EVAL.match(raw)
        if not m:
            raise ValueError(f"{path.name}:{i}: cannot parse {raw!r}")
        instant = m.group("at") is not None
        start = dur(m.group("at") or m.group("start"))
        end = start if instant else dur(m.group("end"))
        case = Case(
            line=i,
            expr=m.group("expr"),
            start_ms=start,
            end_ms=end,
            step_ms=0 if instant else dur(m.group("step")),
            instant=instant,
            fail=m.group("kind") == "_fail",
            ordered=m.group("kind") == "_ordered",
            storage=storage,
        )
        captured = True
        while (
            i < len(lines)
            and lines[i].strip()
            and not lines[i].strip().startswith(("eval", "#", "load", "clear"))
        ):
            text = lines[i].strip()
            i += 1
            if (re.fullmatch(r"[-+]?[\w.]+", text) and not text[0].isalpha()) or text.lower() in (
                "nan",
                "inf",
                "-inf",
                "+inf",
            ):
                case.expected.append((None, [num(text)]))
                continue
            labels, rest = split_series(text)
            case.expected.append((labels, expand(rest.split())))
        cases.append(case)
    return cases


def almost_equal(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or diff < 2.2250738585072014e-308:
        return diff < EPSILON * 2.2250738585072014e-308
    return diff / (abs(a) + abs(b)) < EPSILON


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def check(case: Case, result: Result) -> str | None:
    """``None`` when ``result`` is what the case expects, else a description."""
    if case.instant:
        if result.kind == "scalar":
            assert result.scalar is not None
            got = {(): [result.scalar[1]]}
            order = [()]
        elif result.kind == "vector":
            got = {_key(s.labels): [s.v] for s in result.vector}
            order = [_key(s.labels) for s in result.vector]
        else:
            got = {_key(s.labels): list(s.values) for s in result.matrix}
            order = list(got)
    else:
        got = {}
        for s in result.matrix:
            stamps = dict(zip(s.timestamps_ms.tolist(), s.values.tolist(), strict=True))
            steps = range(case.start_ms, case.end_ms + 1, case.step_ms)
            series: list[float | None] = [stamps.get(t) for t in steps]
            got[_key(s.labels)] = series  # type: ignore[assignment]
        order = list(got)
    want = {_key({}): v for lab, v in case.expected if lab is None}
    want.update({_key(lab): v for lab, v in case.expected if lab is not None})
    if set(want) != set(got):
        return f"series differ: want {sorted(want)} got {sorted(got)}"
    for k, vals in want.items():
        g = got[k]
        if case.instant and result.kind == "matrix":
            vals = [v for v in vals if v is not None]  # noqa: PLW2901 - gaps do not count
        if len(g) != len(vals) or any(
            (x is None) != (y is None)
            or (x is not None and y is not None and not almost_equal(x, y))
            for x, y in zip(g, vals, strict=False)
        ):
            return f"{dict(k)}: want {vals} got {g}"
    if case.ordered and order != [_key(lab) for lab, _ in case.expected if lab is not None]:
        return f"order differs: {order}"
    return None


async def run_case(case: Case) -> str | None:
    engine = Engine(case.storage)
    try:
        if case.instant:
            result = await engine.instant(case.expr, case.start_ms)
        else:
            result = await engine.range(case.expr, case.start_ms, case.end_ms, case.step_ms)
    except Exception as exc:
        if case.fail:
            return None
        return f"raised {type(exc).__name__}: {exc}"
    if case.fail:
        return "expected an error"
    return check(case, result)
