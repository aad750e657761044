"""Rule files: loading, the AlertRule form, promtool-like errors and ``vigil rules check``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alerter import cli
from alerter.errors import RuleFileError
from alerter.rules import expand_globs, load_file, load_files, parse_rules

DATA = Path(__file__).parent.parent / "testdata" / "rules"
GOOD = sorted((DATA / "good").glob("*.yml"))
BAD = sorted((DATA / "bad").glob("*.yml"))


def errors_of(name: str) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        load_file(DATA / "bad" / name)
    return info.value.problems


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_rule_files_load_without_errors(path: Path) -> None:
    load_file(path)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_rule_files_fail_with_file_line_and_column(path: Path) -> None:
    with pytest.raises(RuleFileError) as info:
        load_file(path)
    assert info.value.problems
    for problem in info.value.problems:
        assert problem.startswith(f"{path}: ")
        where = problem.removeprefix(f"{path}: ").split(": ", 1)[0]
        line, col = where.split(":")
        assert int(line) >= 1, problem
        assert int(col) >= 1, problem


def test_prometheus_rules_load_with_durations_labels_and_templates() -> None:
    groups = load_file(DATA / "good" / "node.yml")
    assert [g.name for g in groups] == ["node"]
    node = groups[0]
    assert node.interval_s == 30.0
    assert node.key == f"{DATA / 'good' / 'node.yml'};node"
    record, cpu, disk, down = node.rules
    assert (record.kind, record.name) == ("record", "instance:node_cpu_utilisation:rate5m")
    assert (cpu.kind, cpu.for_s, cpu.labels) == ("alert", 600.0, {"severity": "warning"})
    assert disk.keep_firing_for_s == 120.0
    assert "and node_filesystem_readonly == 0" in disk.expr
    assert disk.label_templates["severity"].render(labels={}, value=0.01) == "critical"
    assert down.line == 26
    summary = cpu.annotation_templates["description"].render(labels={}, value=0.953)
    assert summary == "CPU at 95.3% for 10 minutes."


def test_group_labels_are_added_to_rules_and_rule_labels_win() -> None:
    text = """
groups:
  - name: g
    labels: {team: infra, severity: info}
    rules:
      - alert: A
        expr: up == 0
        labels: {severity: page}
"""
    groups, errors = parse_rules(text, "f.yml")
    assert errors == []
    assert groups[0].rules[0].labels == {"team": "infra", "severity": "page"}
    assert groups[0].labels == {"team": "infra", "severity": "info"}


def test_alertrule_form_maps_to_prometheus_fields() -> None:
    high, disk = load_file(DATA / "good" / "design.yml")[0].rules
    assert (high.kind, high.name, high.expr, high.for_s) == (
        "alert",
        "HighLoad",
        "node_load1 > 4",
        300.0,
    )
    assert high.labels == {"severity": "warning"}
    assert high.annotations == {"summary": "load {{ $value }}"}
    assert disk.for_s == 60.0
    assert disk.labels == {"team": "storage", "severity": "critical"}


def test_top_level_rules_list_is_one_group_named_after_the_file() -> None:
    (group,) = load_file(DATA / "good" / "toplevel.yml")
    assert group.name == "toplevel"
    assert [r.name for r in group.rules] == ["Down"]


def test_empty_file_has_no_groups() -> None:
    assert load_file(DATA / "good" / "empty.yml") == []


def test_parse_error_keeps_parser_message_at_expr_position() -> None:
    (problem,) = errors_of("expr.yml")
    assert problem.endswith(
        'expr.yml: 5:15: group "g", rule 1, "Broken": could not parse expression: unclosed left parenthesis'
    )


def test_recording_rule_errors_match_promtool() -> None:
    problems = [p.split(": ", 1)[1] for p in errors_of("record.yml")]
    assert problems == [
        '4:17: group "g", rule 1, "job-up": invalid field \'annotations\' in recording rule',
        '4:17: group "g", rule 1, "job-up": invalid field \'for\' in recording rule',
        '4:17: group "g", rule 1, "job-up": invalid recording rule name: job-up',
        '9:17: group "g", rule 2, "up{job=\\"a\\"}": invalid recording rule name: up{job="a"}',
        '9:17: group "g", rule 2, "up{job=\\"a\\"}": braces present in the recording rule name; '
        'should it be in expr?: up{job="a"}',
    ]


def test_repeated_and_empty_group_names_are_errors() -> None:
    problems = [p.split(": ", 1)[1] for p in errors_of("groups.yml")]
    assert problems == [
        '4:5: groupname: "g" is repeated in the same file',
        "6:5: Groupname must not be empty",
    ]


def test_field_errors_name_the_field() -> None:
    text = "\n".join(errors_of("fields.yml"))
    assert '6:9: group "g", rule 1, "A": cannot mix the AlertRule fields (severity)' in text
    assert "rule 2, \"\": one of 'record' or 'alert' must be set" in text
    assert "only one of 'record' and 'alert' must be set" in text
    assert '13:14: group "g", rule 4, "C": for: not a valid duration string: \'5 minutes\'' in text
    assert '16:9: group "g", rule 5, "D": field unknown not found in rule' in text


def test_invalid_label_and_annotation_names_have_positions() -> None:
    problems = [p.split(": ", 1)[1] for p in errors_of("labels.yml")]
    assert problems == [
        '7:11: group "g", rule 1, "A": invalid label name: bad-name',
        '8:11: group "g", rule 1, "A": invalid label name: __name__',
        '10:11: group "g", rule 1, "A": invalid annotation name: 0x',
    ]


def test_template_errors_name_rule_and_unsupported_constructs() -> None:
    problems = [p.split(": ", 1)[1] for p in errors_of("templates.yml")]
    assert problems == [
        '7:20: group "g", rule 1, "Unclosed": annotation "summary": template: __alert_Unclosed: unclosed action',
        '11:20: group "g", rule 2, "Query": annotation "summary": template: __alert_Query: function "query" not defined',
        '15:14: group "g", rule 3, "Undefined": label "x": template: __alert_Undefined: undefined variable "$nope"',
    ]


def test_yaml_syntax_and_duplicate_keys_are_errors_with_positions() -> None:
    (syntax,) = errors_of("yaml.yml")
    assert ": 6:8: cannot parse YAML:" in syntax
    (dup,) = errors_of("duplicate-key.yml")
    assert "6:9: " in dup
    assert "mapping key 'expr' already defined at line 5" in dup


def test_mixed_forms_and_conflicting_severity_are_errors() -> None:
    problems = "\n".join(errors_of("design-mixed.yml"))
    assert (
        '4:9: group "g", rule 1, "A": cannot mix the AlertRule fields (name) with Prometheus\' (expr)'
        in problems
    )
    assert (
        "8:19: group \"g\", rule 2, \"B\": severity 'warning' conflicts with labels.severity 'critical'"
        in problems
    )


def test_load_files_expands_globs_relative_to_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    for path in GOOD:
        shutil.copy(path, tmp_path / "rules" / path.name)
    files = expand_globs(["rules/*.yml", "rules/node.yml"], tmp_path)
    assert [f.name for f in files] == sorted(p.name for p in GOOD)
    groups = load_files(["rules/*.yml"], tmp_path)
    assert {g.name for g in groups} >= {"node", "design", "toplevel", "node-network"}


def test_load_files_reports_every_bad_file(tmp_path: Path) -> None:
    shutil.copy(DATA / "bad" / "expr.yml", tmp_path / "a.yml")
    shutil.copy(DATA / "bad" / "groups.yml", tmp_path / "b.yml")
    with pytest.raises(RuleFileError) as info:
        load_files(["*.yml"], tmp_path)
    assert len(info.value.problems) == 3


def test_unreadable_file_is_a_rule_file_error(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read rule file"):
        load_file(tmp_path / "missing.yml")


def test_cli_prints_like_promtool_and_exits_1_on_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, bad = DATA / "good" / "node.yml", DATA / "bad" / "expr.yml"
    assert cli.main(["check", str(good), str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == f"Checking {good}\n  SUCCESS: 4 rules found\n\nChecking {bad}\n"
    assert err.startswith("  FAILED:\n")
    assert f"{bad}: 5:15: " in err
    assert cli.main(["check", str(good)]) == 0


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian's prometheus) not installed"
)
@pytest.mark.parametrize(
    "path",
    [p for p in GOOD if p.name not in {"design.yml", "toplevel.yml", "group-labels.yml"}] + BAD,
    ids=lambda p: p.name,
)
def test_promtool_agrees_on_success_or_failure(path: Path) -> None:
    run = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, check=False
    )
    ours = 0
    try:
        load_file(path)
    except RuleFileError:
        ours = 1
    assert ours == (0 if run.returncode == 0 else 1), run.stderr.decode()


def test_alertrule_severity_must_be_one_of_the_design_values() -> None:
    (problem,) = errors_of("design-severity.yml")
    assert problem.endswith(
        '6:19: group "g", rule 1, "A": invalid severity \'page\': must be one of critical, warning, info'
    )
