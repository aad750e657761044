"""Alert templates: the Go-template subset renders what Prometheus renders.

The expected strings of ``PROMTOOL_CASES`` were produced by ``promtool test rules``
(Prometheus 2.42, Debian) for an alert whose value is 1234567 and whose labels are
``{instance="host.example.com:9100"}``; ``test_matches_promtool_live`` re-checks them
against the installed promtool when there is one.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from alerter.errors import TemplateExecError, TemplateSyntaxError
from alerter.template import compile_template
from alerter.template.gofmt import go_float, sprintf

LABELS = {"instance": "host.example.com:9100"}
VALUE = 1234567.0

PROMTOOL_CASES: dict[str, tuple[str, str]] = {
    "a1": (
        "{{ $value }}|{{ humanize $value }}|{{ humanize1024 $value }}|{{ humanizeDuration $value }}"
        "|{{ humanizePercentage $value }}|{{ humanizeTimestamp $value }}",
        "1.234567e+06|1.235M|1.177Mi|14d 6h 56m 7s|1.235e+08%|1970-01-15 06:56:07 +0000 UTC",
    ),
    "a2": (
        "{{ humanize 0.000123 }}|{{ humanize 0 }}|{{ humanizeDuration 0.5 }}|{{ humanizeDuration 90061.5 }}"
        '|{{ humanize1024 0.5 }}|{{ printf "%.2f|%d|%s|%v|%5.1f|%x" 3.14159 42 "s" 1e6 2.0 255 }}',
        "123u|0|500ms|1d 1h 1m 1s|0.5|3.14|42|s|1e+06|  2.0|ff",
    ),
    "a3": (
        '{{ title "hello world-x" }}|{{ stripPort $labels.instance }}|{{ stripDomain $labels.instance }}'
        '|{{ reReplaceAll "(\\\\w+)\\\\.(.*)" "${2}_$1" "abc.def" }}|{{ toUpper "x" }}|{{ match "a+" "baaa" }}',
        "Hello World-X|host.example.com|host:9100|def_abc|X|true",
    ),
    "a4": (
        '{{ 100000.0 }}|{{ 1234567.0 }}|{{ 0.00001 }}|{{ 0.0001 }}|{{ printf "%v %v" 1.5 3 }}'
        '|{{ printf "%d" 1.5 }}|{{ printf "%s" }}|{{ printf "%g" 1e21 }}|{{ humanize "1e9" }}',
        "100000|1.234567e+06|1e-05|0.0001|1.5 3|%!d(float64=1.5)|%!s(MISSING)|1e+21|1G",
    ),
    "a5": (
        "{{ humanize -1234.5 }}|{{ humanizeDuration -3725.0 }}|{{ humanizeDuration 59.99 }}"
        '|{{ humanizePercentage 0.123456 }}|{{ printf "%q %t %5s| %-5s|" "x\\"y" true "ab" "cd" }}'
        '|{{ print 1 2 "a" 3 }}|{{ len $labels }}|{{ index $labels "instance" }}',
        '-1.234k|-1h 2m 5s|59.99s|12.35%|"x\\"y" true    ab| cd   ||1 2a3|1|host.example.com:9100',
    ),
    "a6": (
        "{{ with $labels.instance }}{{ . }}{{ end }}|{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}"
        '|{{ if and true 0 }}y{{ else }}n{{ end }}|{{ or "" "z" }}|{{ not 0 }}|{{ eq 1 2 1 }}'
        '|{{ $labels.missing }}|{{ graphLink "up == 0" }}|{{ tableLink "rate(x[5m])" }}'
        '|{{ parseDuration "1h30m" }}|{{ humanizeTimestamp 1.5 }}|{{ toTime 1700000000.25 }}',
        "host.example.com:9100|instance=host.example.com:9100,|n|z|true|true||"
        "/graph?g0.expr=up+%3D%3D+0&g0.tab=0|/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1"
        "|5400|1970-01-01 00:00:01.5 +0000 UTC|2023-11-14 22:13:20.249 +0000 UTC",
    ),
}


def render(
    text: str, value: float = VALUE, labels: dict[str, str] | None = None, **kw: object
) -> str:
    return compile_template(text).render(labels=labels or LABELS, value=value, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", sorted(PROMTOOL_CASES))
def test_renders_like_prometheus(key: str) -> None:
    source, expected = PROMTOOL_CASES[key]
    assert render(source) == expected


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_matches_promtool_live(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "t",
                "rules": [
                    {
                        "alert": "T",
                        "expr": 'vector(1234567.0) * on() group_left(instance) label_replace(vector(1), "instance", "host.example.com:9100", "", "")',
                        "annotations": {k: src for k, (src, _exp) in PROMTOOL_CASES.items()},
                    }
                ],
            }
        ]
    }
    (tmp_path / "r.yml").write_text(yaml.safe_dump(rules))
    test = {
        "rule_files": ["r.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [],
                "alert_rule_test": [
                    {
                        "eval_time": "0m",
                        "alertname": "T",
                        "exp_alerts": [
                            {
                                "exp_labels": LABELS,
                                "exp_annotations": {k: e for k, (_s, e) in PROMTOOL_CASES.items()},
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "t.yml").write_text(yaml.safe_dump(test))
    run = subprocess.run(
        ["promtool", "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, check=False
    )
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.nan, "NaN|NaN|NaN|NaN|NaN%"),
        (math.inf, "+Inf|+Inf|+Inf|+Inf|+Inf%"),
        (-math.inf, "-Inf|-Inf|-Inf|-Inf|-Inf%"),
        (0.0, "0|0|0|0s|0%"),
    ],
)
def test_special_values_print_like_go(value: float, expected: str) -> None:
    text = "{{ $value }}|{{ humanize $value }}|{{ humanize1024 $value }}|{{ humanizeDuration $value }}|{{ humanizePercentage $value }}"
    assert render(text, value=value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1e21, "1e+21"), (123456.0, "123456"), (0.1, "0.1"), (-2.5e-7, "-2.5e-07"), (-0.0, "-0")],
)
def test_value_prints_with_go_shortest_g(value: float, expected: str) -> None:
    assert go_float(value) == expected


def test_dot_fields_external_labels_and_url() -> None:
    text = "{{ .Labels.instance }} {{ .Value }} {{ $externalLabels.cluster }} {{ .ExternalLabels.cluster }} {{ $externalURL }}"
    got = render(text, value=2.0, external_labels={"cluster": "eu"}, external_url="http://v:9090/x")
    assert got == "host.example.com:9100 2 eu eu http://v:9090/x"


def test_if_else_if_chains_and_comparisons() -> None:
    text = "{{ if gt $value 80.0 }}crit{{ else if gt $value 50.0 }}warn{{ else }}ok{{ end }}"
    assert [render(text, value=v) for v in (90.0, 60.0, 10.0)] == ["crit", "warn", "ok"]
    # Vigil compares int and float numerically (Go would fail the comparison).
    assert render("{{ if ge $value 80 }}y{{ end }}", value=80.0) == "y"


def test_trim_markers_and_comments() -> None:
    assert render("a  {{- /* note */ -}}  b {{- 1 }} c") == "ab1 c"


def test_variables_pipelines_and_parentheses() -> None:
    text = '{{ $v := $value | humanize }}{{ $v }}|{{ printf "%s!" (toUpper $labels.instance) }}|{{ $labels.instance | reReplaceAll ":.*" "" | toUpper }}'
    assert render(text) == "1.235M|HOST.EXAMPLE.COM:9100!|HOST.EXAMPLE.COM"


def test_range_over_labels_with_break_and_else() -> None:
    labels = {"a": "1", "b": "2", "c": "3"}
    text = '{{ range $k, $v := $labels }}{{ if eq $k "c" }}{{ break }}{{ end }}{{ $k }}{{ $v }}{{ end }}'
    assert render(text, labels=labels) == "a1b2"
    assert render("{{ range $k, $v := .ExternalLabels }}x{{ else }}empty{{ end }}") == "empty"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ $labels.x ", "unclosed action"),
        ('{{ query "up" }}', 'function "query" not defined'),
        ("{{ nosuch 1 }}", 'function "nosuch" not defined'),
        ('{{ define "x" }}{{ end }}', "not supported"),
        ('{{ template "x" }}', "not supported"),
        ("{{ $nope }}", 'undefined variable "$nope"'),
        ("{{ if 1 }}", "unclosed {{if}}"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ else }}", "unexpected {{else}}"),
        ("{{ break }}", "outside {{range}}"),
        ("{{ 1 | 2 }}", "non executable command"),
        ('{{ "abc }}', "unexpected"),
    ],
)
def test_unsupported_or_broken_templates_fail_at_parse(text: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=re.escape(message)):
        compile_template(text)


def test_execution_errors_expand_to_prometheus_error_text() -> None:
    tpl = compile_template('{{ humanize "abc" }}')
    with pytest.raises(TemplateExecError):
        tpl.render(labels={}, value=1.0)
    got = tpl.expand("__alert_X", labels={}, value=1.0)
    assert got.startswith("<error expanding template: error executing template __alert_X: ")
    assert "error calling humanize" in got


def test_bad_regex_is_an_execution_error() -> None:
    with pytest.raises(TemplateExecError, match="error parsing regexp"):
        render('{{ reReplaceAll "(" "" "x" }}')


def test_static_text_renders_unchanged() -> None:
    tpl = compile_template("just text")
    assert tpl.is_static
    assert tpl.render(labels={}, value=0.0) == "just text"
    assert compile_template("{{/* only a comment */}}").render(labels={}, value=0.0) == ""


def test_sprintf_extra_and_width() -> None:
    assert sprintf("%5.2f|%-4d|", 3.14159, 7, 9) == " 3.14|7   |%!(EXTRA int=9)"
    assert sprintf("%d%%", 50) == "50%"


def test_runaway_range_fails_instead_of_stalling() -> None:
    with pytest.raises(TemplateExecError, match="more than"):
        render("{{ range 100000000 }}x{{ end }}")
    with pytest.raises(TemplateExecError, match="more than"):
        render("{{ range 100000000 }}{{ end }}")


@pytest.mark.parametrize(
    "text", ['{{ printf "%c" 99999999999 }}', "{{ toTime 1e300 }}", "{{ printf 1 }}", "{{ len 1 }}"]
)
def test_bad_arguments_are_execution_errors(text: str) -> None:
    with pytest.raises(TemplateExecError):
        render(text)
