"""Prometheus' relabeling (``metric_relabel_configs``), as a pure function on label dicts.

Semantics are Prometheus' ``model/relabel`` (2.x), rule by rule:

- ``source_labels`` are read (a missing label reads as ``""``) and joined
  with ``separator`` (default ``;``); ``__name__`` is the metric name.
- ``regex`` is anchored at both ends (``^(?:regex)$``); default ``(.*)``.
- ``replace`` (default action): if the regex matches, ``target_label``
  (itself expanded) is set to the expanded ``replacement`` (default
  ``$1``); an empty result deletes the label; no match changes nothing.
- ``keep`` / ``drop``: the series is kept only if / dropped if the regex matches.
- ``labelmap``: every label whose *name* matches is copied to the expanded
  ``replacement`` (the original stays).
- ``labeldrop`` / ``labelkeep``: labels whose name matches are deleted / kept
  (take only ``regex``).
- ``hashmod``: ``target_label`` = md5(value) (last 8 bytes, big endian) mod ``modulus``.
- ``lowercase`` / ``uppercase``: ``target_label`` = the joined value, case-mapped.
- ``keepequal`` / ``dropequal``: keep / drop when ``target_label``'s value
  equals the joined value.

Replacement templates use Go's syntax: ``$1``, ``${1}``, ``$name``,
``${name}``; ``$$`` is a literal ``$``; an unknown group expands to ``""``.
Regexes use Python's ``re``, which agrees with Go's RE2 on the syntax
relabeling uses in practice (RE2 lacks backreferences and lookaround;
Python accepts them, Prometheus would reject the config).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, model_validator

from shared.config.base import Section

Action = Literal[
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
]

NAME = "__name__"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_DEFAULT_REGEX = "(.*)"
_DEFAULT_REPLACEMENT = "$1"
_TEMPLATE = re.compile(r"\$(?:\$|\{([a-zA-Z0-9_]+)\}|([a-zA-Z0-9_]+))")


class RelabelConfig(Section):
    """One rule of ``metric_relabel_configs``, with Prometheus' fields and defaults."""

    source_labels: list[str] = Field(
        default_factory=list, description="Labels whose values are joined and matched."
    )
    separator: str = Field(default=";", description="Joins the source label values.")
    regex: str = Field(
        default=_DEFAULT_REGEX, description="Regular expression, anchored at both ends."
    )
    target_label: str = Field(default="", description="Label written by the action.")
    replacement: str = Field(
        default=_DEFAULT_REPLACEMENT, description="Template of the value written ($1, ${name})."
    )
    modulus: int = Field(default=0, ge=0, description="Modulus of hashmod.")
    action: Action = Field(default="replace", description="What the rule does.")

    @model_validator(mode="after")
    def _prometheus_rules(self) -> RelabelConfig:
        try:
            re.compile(self.regex)
        except re.error as exc:
            raise ValueError(f"invalid regex {self.regex!r}: {exc}") from exc
        action = self.action
        needs_target = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
        if action in needs_target and not self.target_label:
            raise ValueError(f"the {action} action requires target_label")
        if action == "hashmod" and self.modulus == 0:
            raise ValueError("the hashmod action requires a non-zero modulus")
        if action == "replace" and "$" not in self.target_label:
            _check_label_name(self.target_label, "target_label")
        if action in ("hashmod", "lowercase", "uppercase"):
            _check_label_name(self.target_label, "target_label")
        if action in ("lowercase", "uppercase", "keepequal", "dropequal") and (
            self.replacement != _DEFAULT_REPLACEMENT
        ):
            raise ValueError(f"replacement cannot be set for the {action} action")
        if action in ("keepequal", "dropequal") and (
            self.regex != _DEFAULT_REGEX or self.modulus or self.separator != ";"
        ):
            raise ValueError(f"the {action} action takes only source_labels and target_label")
        if action in ("labeldrop", "labelkeep") and (
            self.source_labels
            or self.target_label
            or self.modulus
            or self.separator != ";"
            or self.replacement != _DEFAULT_REPLACEMENT
        ):
            raise ValueError(f"the {action} action takes only regex")
        if action == "labelmap" and not _template_may_be_label(self.replacement):
            raise ValueError(f"{self.replacement!r} is not a valid replacement for labelmap")
        return self


def _check_label_name(name: str, what: str) -> None:
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not a valid label name")


def _template_may_be_label(template: str) -> bool:
    # Prometheus: ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$
    return re.fullmatch(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+", template) is not None


def expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) if m.group(1) is not None else m.group(2)
        try:
            value = match.group(int(name)) if name.isdigit() else match.group(name)
        except IndexError:  # no such group: Go expands it to nothing
            return ""
        return value or ""

    return _TEMPLATE.sub(one, template)


class Rule:
    """A compiled ``RelabelConfig``."""

    __slots__ = ("action", "config", "regex")

    def __init__(self, config: RelabelConfig) -> None:
        self.config = config
        self.action = config.action
        self.regex = re.compile(f"^(?:{config.regex})$")


def compile_rules(configs: Iterable[RelabelConfig]) -> list[Rule]:
    return [Rule(c) for c in configs]


def relabel(labels: dict[str, str], rules: list[Rule]) -> dict[str, str] | None:
    """Apply ``rules`` in order to ``labels`` (``__name__`` included), in place.

    Returns the labels, or ``None`` when a rule dropped the series. Labels
    set to ``""`` are deleted, as in Prometheus' label builder.
    """
    for rule in rules:
        if not _apply(rule, labels):
            return None
    return labels


def _apply(rule: Rule, labels: dict[str, str]) -> bool:  # noqa: PLR0912 - one branch per action
    cfg = rule.config
    action = rule.action
    if action in ("labeldrop", "labelkeep", "labelmap"):
        regex = rule.regex
        if action == "labeldrop":
            for name in [n for n in labels if regex.match(n)]:
                del labels[name]
        elif action == "labelkeep":
            for name in [n for n in labels if not regex.match(n)]:
                del labels[name]
        else:
            for name, value in list(labels.items()):
                m = regex.match(name)
                if m is not None:
                    _set(labels, expand(cfg.replacement, m), value)
        return True
    value = cfg.separator.join(labels.get(n, "") for n in cfg.source_labels)
    if action == "replace":
        m = rule.regex.match(value)
        if m is not None:
            target = expand(cfg.target_label, m)
            if _LABEL_NAME.fullmatch(target):
                _set(labels, target, expand(cfg.replacement, m))
    elif action == "keep":
        return rule.regex.match(value) is not None
    elif action == "drop":
        return rule.regex.match(value) is None
    elif action == "keepequal":
        return labels.get(cfg.target_label, "") == value
    elif action == "dropequal":
        return labels.get(cfg.target_label, "") != value
    elif action == "hashmod":
        digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
        _set(labels, cfg.target_label, str(int.from_bytes(digest[8:], "big") % cfg.modulus))
    elif action == "lowercase":
        _set(labels, cfg.target_label, value.lower())
    elif action == "uppercase":
        _set(labels, cfg.target_label, value.upper())
    else:  # pragma: no cover - the Literal type admits no other action
        raise AssertionError(f"BUG: unknown relabel action {action!r}")
    return True


def _set(labels: dict[str, str], name: str, value: str) -> None:
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)
