"""Rule files: Prometheus rule-group YAML (and the design's ``AlertRule`` fields) to ``RuleGroup``.

The YAML is composed to nodes (not loaded to dicts) so that every error carries
the 1-based line and column of the node at fault, as ``promtool check rules``
prints them: ``FILE: LINE:COL: group "g", rule 2, "Name": message``. Checks are
promtool's: YAML syntax and unknown or duplicate fields, empty or repeated group
names, exactly one of ``record``/``alert``, ``expr`` present and parsed by
promql-parser (its message kept), recording rules without ``for``,
``keep_firing_for`` or ``annotations`` and with a valid metric name (no braces),
valid label and annotation names, templates that parse. Vigil adds positions
where promtool has none (label names, templates) and rejects template constructs
its renderer does not support (``query``, ``define`` ...).

The design's ``AlertRule`` form is accepted in any group's ``rules`` list, and as
a top-level ``rules:`` list (one group named after the file's stem):

============  ==================================================
AlertRule     Prometheus
============  ==================================================
name          alert
query         expr
duration      for (a Prometheus duration, or a number of seconds)
severity      labels.severity: critical, warning or info (a conflicting
              labels.severity is an error)
labels        labels
annotations   annotations
============  ==================================================

A rule uses one form: mixing ``alert`` with ``name`` or ``expr`` with ``query``
is an error. Group-level ``labels`` (Prometheus 3) are added to each rule's
labels, a rule's own value winning.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

import promql_parser
import yaml

from alerter.errors import RuleFileError, TemplateSyntaxError
from alerter.rules.model import Rule, RuleGroup
from alerter.template import Template, compile_template
from shared.duration import parse_duration
from shared.wire import LABEL_NAME_RE, METRIC_NAME_RE

_GROUP_FIELDS = frozenset({"name", "interval", "query_offset", "limit", "rules", "labels"})
_PROM_FIELDS = frozenset(
    {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
)
_DESIGN_FIELDS = frozenset({"name", "query", "duration", "severity", "labels", "annotations"})
_SEVERITIES = ("critical", "warning", "info")
"""The design's ``AlertRule.severity`` values (``labels.severity`` itself is free text)."""


def _quote(text: str) -> str:
    """Go's ``%q`` for the printable text of names."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pos(node: yaml.Node) -> str:
    return f"{node.start_mark.line + 1}:{node.start_mark.column + 1}"


class _Problem(Exception):
    def __init__(self, node: yaml.Node | None, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message

    def text(self) -> str:
        return f"{_pos(self.node)}: {self.message}" if self.node is not None else self.message


def _mapping(node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping node's entries by key, with key and value nodes; duplicate keys rejected."""
    if not isinstance(node, yaml.MappingNode):
        raise _Problem(node, f"cannot unmarshal {_kind(node)} into {what}")
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise _Problem(key, f"invalid key in {what}")
        if key.value in out:
            first = out[key.value][0]
            raise _Problem(
                key,
                f"mapping key {key.value!r} already defined at line {first.start_mark.line + 1}",
            )
        out[key.value] = (key, value)
    return out


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}" if node.value != "" else "an empty value"


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _str(node: yaml.Node, what: str) -> str:
    if _is_null(node):
        return ""
    if not isinstance(node, yaml.ScalarNode):
        raise _Problem(node, f"cannot unmarshal {_kind(node)} into {what} (a string)")
    return str(node.value)


def _duration(node: yaml.Node, what: str, *, seconds_ok: bool = False) -> float:
    text = _str(node, what)
    if text == "":
        return 0.0
    if seconds_ok and node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise _Problem(node, f"{what}: not a valid duration string: {text!r}") from exc


def _str_map(node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node, str]]:
    if _is_null(node):
        return {}
    out: dict[str, tuple[yaml.Node, yaml.Node, str]] = {}
    for key, (knode, vnode) in _mapping(node, what).items():
        out[key] = (knode, vnode, _str(vnode, f"{what}.{key}"))
    return out


class _FileParser:
    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[str] = []

    def error(self, text: str) -> None:
        self.errors.append(f"{self.file}: {text}")

    def parse(self, text: str) -> list[RuleGroup]:  # noqa: PLR0912 - one branch per top-level shape
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{mark.line + 1}:{mark.column + 1}: " if mark is not None else ""
            self.error(f"{where}cannot parse YAML: {exc.problem or exc.context}")
            return []
        except yaml.YAMLError as exc:
            self.error(f"cannot parse YAML: {exc}")
            return []
        if root is None or _is_null(root):
            return []
        try:
            top = _mapping(root, "rule file")
            for key, (knode, _v) in top.items():
                if key not in ("groups", "rules"):
                    raise _Problem(knode, f"field {key} not found in rule file (want groups)")  # noqa: TRY301 - caught below, as every problem
        except _Problem as p:
            self.error(p.text())
            return []
        groups: list[RuleGroup] = []
        seen: set[str] = set()
        if "groups" in top:
            gnode = top["groups"][1]
            if _is_null(gnode):
                return []
            if not isinstance(gnode, yaml.SequenceNode):
                self.error(f"{_pos(gnode)}: cannot unmarshal {_kind(gnode)} into groups (a list)")
                return []
            for item in gnode.value:
                group = self._group(item, seen)
                if group is not None:
                    groups.append(group)
        if "rules" in top:
            name = Path(self.file).stem
            rules = self._rules(top["rules"][1], name)
            if name in seen:
                self.error(f'{_pos(root)}: groupname: "{name}" is repeated in the same file')
            groups.append(RuleGroup(name=name, file=self.file, rules=tuple(rules)))
        return groups

    def _group(self, node: yaml.Node, seen: set[str]) -> RuleGroup | None:
        try:
            fields = _mapping(node, "group")
            for key, (knode, _v) in fields.items():
                if key not in _GROUP_FIELDS:
                    raise _Problem(knode, f"field {key} not found in rule group")  # noqa: TRY301
            name = _str(fields["name"][1], "name") if "name" in fields else ""
            interval = (
                _duration(fields["interval"][1], "interval") if "interval" in fields else None
            )
            offset = (
                _duration(fields["query_offset"][1], "query_offset")
                if "query_offset" in fields
                else None
            )
            limit = 0
            if "limit" in fields:
                lnode = fields["limit"][1]
                if lnode.tag != "tag:yaml.org,2002:int" or int(_str(lnode, "limit")) < 0:
                    raise _Problem(lnode, "limit: must be a non-negative integer")  # noqa: TRY301
                limit = int(_str(lnode, "limit"))
            glabels = _str_map(fields["labels"][1], "labels") if "labels" in fields else {}
        except _Problem as p:
            self.error(p.text())
            return None
        if name == "":
            self.error(f"{_pos(node)}: Groupname must not be empty")
        elif name in seen:
            self.error(f'{_pos(node)}: groupname: "{name}" is repeated in the same file')
        seen.add(name)
        for key, (knode, _vnode, _value) in glabels.items():
            if not LABEL_NAME_RE.fullmatch(key) or key == "__name__":
                self.error(f"{_pos(knode)}: group {name!r}: invalid label name: {key}")
        base_labels = {k: v for k, (_kn, _vn, v) in glabels.items()}
        rules = self._rules(fields["rules"][1], name, base_labels) if "rules" in fields else []
        return RuleGroup(
            name=name,
            file=self.file,
            rules=tuple(rules),
            interval_s=interval,
            query_offset_s=offset,
            limit=limit,
            labels=base_labels,
        )

    def _rules(
        self, node: yaml.Node, group: str, base_labels: dict[str, str] | None = None
    ) -> list[Rule]:
        if _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.error(f"{_pos(node)}: cannot unmarshal {_kind(node)} into rules (a list)")
            return []
        out: list[Rule] = []
        for index, item in enumerate(node.value, start=1):
            checker = _RuleChecker(item)
            rule = checker.check(base_labels or {})
            for problem in checker.problems:
                where, message = problem.split(": ", 1)
                self.error(
                    f"{where}: group {_quote(group)}, rule {index}, {_quote(checker.name)}: {message}"
                )
            if rule is not None and not checker.problems:
                out.append(rule)
        return out


class _RuleChecker:
    """Validates one rule node; ``problems`` holds ``"L:C: message"`` strings."""

    def __init__(self, node: yaml.Node) -> None:
        self.node = node
        self.problems: list[str] = []
        self.name = ""

    def add(self, node: yaml.Node | None, message: str) -> None:
        self.problems.append(f"{_pos(node if node is not None else self.node)}: {message}")

    def check(self, base_labels: dict[str, str]) -> Rule | None:
        try:
            fields = _mapping(self.node, "rule")
        except _Problem as p:
            self.add(p.node, p.message)
            return None
        design = any(k in fields for k in ("name", "query", "duration", "severity"))
        prom = any(k in fields for k in ("alert", "record", "expr", "for", "keep_firing_for"))
        for key, (knode, _v) in fields.items():
            if key not in _PROM_FIELDS | _DESIGN_FIELDS:
                self.add(knode, f"field {key} not found in rule")
        for key in ("alert", "record", "name"):
            if key in fields and isinstance(fields[key][1], yaml.ScalarNode):
                self.name = str(fields[key][1].value)
                break
        if design and prom:
            both = sorted(k for k in fields if k in _DESIGN_FIELDS - _PROM_FIELDS)
            other = sorted(k for k in fields if k in _PROM_FIELDS - _DESIGN_FIELDS)
            self.add(
                fields[both[0]][0],
                f"cannot mix the AlertRule fields ({', '.join(both)}) with Prometheus' "
                f"({', '.join(other)}) in one rule",
            )
            return None
        try:
            return self._build(fields, design, base_labels)
        except _Problem as p:
            self.add(p.node, p.message)
            return None

    def _build(  # noqa: PLR0912, PLR0915 - one check per promtool rule, in promtool's order
        self, f: dict[str, tuple[yaml.Node, yaml.Node]], design: bool, base: dict[str, str]
    ) -> Rule | None:
        def val(key: str) -> tuple[yaml.Node | None, str]:
            if key not in f:
                return None, ""
            return f[key][1], _str(f[key][1], key)

        alert_node, alert = val("name" if design else "alert")
        record_node, record = (None, "") if design else val("record")
        expr_node, expr = val("query" if design else "expr")
        self.name = alert or record
        for_s = 0.0
        if design and "duration" in f:
            for_s = _duration(f["duration"][1], "duration", seconds_ok=True)
        elif "for" in f:
            for_s = _duration(f["for"][1], "for")
        keep_s = (
            _duration(f["keep_firing_for"][1], "keep_firing_for") if "keep_firing_for" in f else 0.0
        )
        labels = _str_map(f["labels"][1], "labels") if "labels" in f else {}
        annotations = _str_map(f["annotations"][1], "annotations") if "annotations" in f else {}
        if design and "severity" in f:
            snode = f["severity"][1]
            severity = _str(snode, "severity")
            if severity not in _SEVERITIES:
                self.add(
                    snode,
                    f"invalid severity {severity!r}: must be one of {', '.join(_SEVERITIES)}",
                )
            if "severity" in labels and labels["severity"][2] != severity:
                self.add(
                    snode,
                    f"severity {severity!r} conflicts with labels.severity {labels['severity'][2]!r}",
                )
            labels["severity"] = (f["severity"][0], snode, severity)

        if record and alert and alert_node is not None:
            self.add(
                record_node, f"{_pos(alert_node)}: only one of 'record' and 'alert' must be set"
            )
        if not record and not alert:
            what = "'name'" if design else "one of 'record' or 'alert'"
            self.add(None, f"{what} must be set")
        if not expr:
            self.add(expr_node, f"field '{'query' if design else 'expr'}' must be set in rule")
        else:
            try:
                promql_parser.parse(expr)
            except BaseException as exc:  # pyo3 panics derive from BaseException
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                self.add(expr_node, f"could not parse expression: {exc}")
        if record:
            if annotations:
                self.add(record_node, "invalid field 'annotations' in recording rule")
            if for_s:
                self.add(record_node, "invalid field 'for' in recording rule")
            if keep_s:
                self.add(record_node, "invalid field 'keep_firing_for' in recording rule")
            if not METRIC_NAME_RE.fullmatch(record):
                self.add(record_node, f"invalid recording rule name: {record}")
            if "{" in record or "}" in record:
                self.add(
                    record_node,
                    f"braces present in the recording rule name; should it be in expr?: {record}",
                )
        for key, (knode, _vnode, _value) in labels.items():
            if not LABEL_NAME_RE.fullmatch(key) or key == "__name__":
                self.add(knode, f"invalid label name: {key}")
        for key, (knode, _vnode, _value) in annotations.items():
            if not LABEL_NAME_RE.fullmatch(key):
                self.add(knode, f"invalid annotation name: {key}")
        label_tpl: dict[str, Template] = {}
        annotation_tpl: dict[str, Template] = {}
        if alert:
            for what, entries, into in (
                ("label", labels, label_tpl),
                ("annotation", annotations, annotation_tpl),
            ):
                for key, (_knode, vnode, value) in entries.items():
                    try:
                        into[key] = compile_template(value)
                    except TemplateSyntaxError as exc:
                        self.add(vnode, f'{what} "{key}": template: __alert_{alert}: {exc}')
        if self.problems:
            return None
        line = self.node.start_mark.line + 1
        merged = {**base, **{k: v for k, (_kn, _vn, v) in labels.items()}}
        return Rule(
            kind="alert" if alert else "record",
            name=self.name,
            expr=expr,
            for_s=for_s,
            keep_firing_for_s=keep_s,
            labels=merged,
            annotations={k: v for k, (_kn, _vn, v) in annotations.items()},
            label_templates={k: compile_template(v) for k, v in merged.items()} if alert else {},
            annotation_templates=annotation_tpl,
            line=line,
        )


def parse_rules(text: str, file: str) -> tuple[list[RuleGroup], list[str]]:
    """Groups of one rule file's text, and promtool-style error lines (empty when valid)."""
    parser = _FileParser(file)
    groups = parser.parse(text)
    return groups, parser.errors


def load_file(path: str | Path) -> list[RuleGroup]:
    """Read and validate one rule file; ``RuleFileError`` lists every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RuleFileError(
            f"cannot read rule file {file}: {reason}", [f"{file}: {reason}"]
        ) from exc
    groups, errors = parse_rules(text, file)
    if errors:
        raise RuleFileError(f"cannot load rule file {file}: {len(errors)} error(s)", errors)
    return groups


def expand_globs(patterns: Iterable[str], base_dir: Path) -> list[Path]:
    """Files named by ``alerting.rule_files`` globs (relative to ``base_dir``), sorted, once each."""
    found: dict[str, Path] = {}
    for pattern in patterns:
        full = Path(pattern).expanduser()
        if not full.is_absolute():
            full = base_dir / full
        for match in sorted(glob.glob(str(full), recursive=True)):  # noqa: PTH207 - absolute patterns
            if Path(match).is_file():
                found.setdefault(match, Path(match))
    return list(found.values())


def load_files(patterns: Iterable[str], base_dir: Path) -> list[RuleGroup]:
    """Every group of every file the globs name; one ``RuleFileError`` listing all problems."""
    groups: list[RuleGroup] = []
    problems: list[str] = []
    for path in expand_globs(patterns, base_dir):
        try:
            groups.extend(load_file(path))
        except RuleFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RuleFileError(f"cannot load rules: {len(problems)} error(s)", problems)
    return groups
