"""Go's value formatting (``fmt``'s ``%v`` and ``printf``) and Prometheus' humanize functions.

Output is byte-for-byte what Prometheus' ``template`` package prints for the
same input (checked against promtool in ``tests/alerter/test_template.py``):
``humanize``, ``humanize1024``, ``humanizeDuration``, ``humanizePercentage``,
``humanizeTimestamp`` follow ``prometheus/template/template.go``; Python's
``%g`` equals Go's for finite floats, and NaN/±Inf print as Go does
(``NaN``, ``+Inf``, ``-Inf``).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alerter.errors import TemplateExecError


def _special(v: float) -> str | None:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return None


def g4(v: float) -> str:
    """Go's ``%.4g``."""
    return _special(v) or f"{v:.4g}"


def go_float(v: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, exponent when exp < -4 or exp >= 6 (strconv's shortest %g)."""
    special = _special(v)
    if special is not None:
        return special
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits_t, exp = Decimal(repr(v)).normalize().as_tuple()
    digits = "".join(map(str, digits_t))
    if not isinstance(exp, int):  # finite floats only reach here
        raise TemplateExecError(f"BUG: cannot format float {v!r}")
    point = len(digits) + exp  # position of the decimal point from the left of digits
    e = point - 1
    neg = "-" if sign else ""
    if e < -4 or e >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def go_time(t: datetime) -> str:
    """Go's ``time.Time.String()`` for a UTC time: ``2006-01-02 15:04:05.999999999 +0000 UTC``."""
    t = t.astimezone(UTC)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + " +0000 UTC"


def go_str(value: object) -> str:
    """Go's ``%v`` (what ``{{ x }}`` prints)."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, datetime):
        return go_time(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(x) for x in value) + "]"
    return str(value)


def go_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]string"
    if value is None:
        return "<nil>"
    return type(value).__name__


# ---------------------------------------------------------------- conversions


def to_float(value: object) -> float:
    """Prometheus' ``convertToFloat``: float, int, or a string ``strconv.ParseFloat`` takes."""
    if isinstance(value, bool):
        raise TemplateExecError("can't convert bool to float")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip() if value.strip() == value else "x")
        except ValueError as exc:
            raise TemplateExecError(
                f'strconv.ParseFloat: parsing "{value}": invalid syntax'
            ) from exc
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TemplateExecError(f"can't convert {go_type(value)} to float")


# ---------------------------------------------------------------- humanize


def humanize(value: object) -> str:
    v = to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return g4(v) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return g4(v) + prefix


def humanize1024(value: object) -> str:
    v = to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return g4(v) + prefix


def humanize_duration(value: object) -> str:
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        return g4(v)
    if v == 0:
        return g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        whole = int(v)
        seconds, minutes, hours, days = (
            whole % 60,
            whole // 60 % 60,
            whole // 3600 % 24,
            whole // 86400,
        )
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{g4(v)}{prefix}s"


def humanize_percentage(value: object) -> str:
    return g4(to_float(value) * 100) + "%"


def to_time(value: object) -> datetime:
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        raise TemplateExecError("value is NaN or Inf")
    # model.TimeFromUnixNano: nanoseconds truncated toward zero, then to whole milliseconds.
    ns = int(v * 1e9)
    ms = abs(ns) // 1_000_000 * (1 if ns >= 0 else -1)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def humanize_timestamp(value: object) -> str:
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        return g4(v)
    return go_time(to_time(v))


# ---------------------------------------------------------------------- printf

_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d*|\*))?([a-zA-Z%])")


def _bad(verb: str, value: object) -> str:
    return f"%!{verb}({go_type(value)}={go_str(value)})"


def _format_one(  # noqa: PLR0912 - one branch per printf verb family
    flags: str, width: str | None, prec: str | None, verb: str, value: object
) -> str:
    spec = flags.replace("#", "") if verb in "vsqtc" else flags
    w = width or ""
    p = f".{prec or 0}" if prec is not None else ""

    def pad(s: str) -> str:
        if not w:
            return s
        return s.ljust(int(w)) if "-" in flags else s.rjust(int(w))

    if verb == "v":
        return pad(go_str(value))
    if verb == "s":
        if isinstance(value, str):
            return pad(value[: int(prec)] if prec not in (None, "") else value)
        if isinstance(value, bool | int | float) or value is None:
            return _bad(verb, value)
        return pad(go_str(value))
    if verb == "q":
        if isinstance(value, str):
            return pad(
                '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
            )
        return _bad(verb, value)
    if verb == "t":
        return pad(go_str(value)) if isinstance(value, bool) else _bad(verb, value)
    if verb in "dboxXc":
        if isinstance(value, bool) or not isinstance(value, int):
            if verb in "xX" and isinstance(value, str):
                return pad(value.encode().hex() if verb == "x" else value.encode().hex().upper())
            return _bad(verb, value)
        if verb == "c":
            return pad(chr(value))
        return f"%{spec}{w}{verb}" % value if verb != "b" else pad(format(value, "b"))
    if verb in "eEfFgG":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _bad(verb, value)
        f = float(value)
        special = _special(f)
        if special is not None:
            if special == "NaN" and "+" in flags:
                special = "+NaN"
            elif special == "+Inf" and "+" not in flags:
                special = "+Inf"
            return pad(special)
        if verb in "gG" and prec is None:
            out = go_float(f)
            return pad(out.upper() if verb == "G" else out)
        py_prec = p if prec is not None else (".6" if verb in "eEfF" else "")
        return f"%{spec}{w}{py_prec}{verb}" % f
    return f"%!{verb}({go_type(value)}={go_str(value)})"


def sprintf(fmt: str, *args: object) -> str:
    """Go's ``fmt.Sprintf`` for the verbs templates use (``%v %s %d %f %g %e %x %q %t %%``)."""
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if width == "*" or prec == "*":
            raise TemplateExecError("printf: '*' width or precision is not supported")
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(flags, width, prec, verb, args[argi]))
        argi += 1
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{go_type(a)}={go_str(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
