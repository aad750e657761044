"""``label_replace``, ``label_join`` and ``sort_by_label``: functions over label sets."""

from __future__ import annotations

import re

from shared.promql.errors import ExecutionError
from shared.promql.values import Vector

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_GO_GROUP = re.compile(r"\$(\$|\{([^}]*)\}|([a-zA-Z0-9_]+))")


def _check_name(name: str) -> None:
    if not _LABEL_NAME.fullmatch(name):
        raise ExecutionError(f"invalid destination label name in label_replace(): {name}")


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) == "$":
            return "$"
        ref = m.group(2) if m.group(2) is not None else m.group(3)
        try:
            got = match.group(int(ref)) if ref.isdigit() else match.group(ref)
        except IndexError:
            return ""
        return got or ""

    return _GO_GROUP.sub(sub, template)


def _set(labels: dict[str, str], name: str, value: str) -> dict[str, str]:
    out = dict(labels)
    if value:
        out[name] = value
    else:
        out.pop(name, None)
    return out


def label_replace(vec: Vector, dst: str, repl: str, src: str, regex: str) -> Vector:
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise ExecutionError(f"invalid regular expression in label_replace(): {regex}") from exc
    _check_name(dst)
    labels = []
    for lab in vec.labels:
        m = pattern.fullmatch(lab.get(src, ""))
        labels.append(_set(lab, dst, _expand(repl, m)) if m else dict(lab))
    return Vector(labels, vec.values, vec.present).compact()


def label_join(vec: Vector, dst: str, sep: str, srcs: list[str]) -> Vector:
    _check_name(dst)
    labels = [_set(lab, dst, sep.join(lab.get(s, "") for s in srcs)) for lab in vec.labels]
    return Vector(labels, vec.values, vec.present).compact()
