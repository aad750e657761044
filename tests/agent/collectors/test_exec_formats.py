"""Output formats of custom commands and pushes: sniffing, naming, Prometheus text corrections."""

from __future__ import annotations

import pytest

from agent.collectors.exec_formats import (
    ExpositionError,
    influx_samples,
    parse_families,
    parse_prometheus,
    sanitize_label_name,
    sanitize_metric_name,
    sniff,
)
from agent.lineprotocol import parse
from shared.wire import LABEL_NAME_RE, METRIC_NAME_RE


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("", "prometheus"),
        ("# just a comment\n", "prometheus"),
        ("# HELP x y\nx 1\n", "prometheus"),
        ("up 1\n", "prometheus"),
        ('up{job="a b=c"} 1 1700000000000\n', "prometheus"),
        ("up NaN\n", "prometheus"),
        ("cpu usage=1\n", "influx"),
        ("cpu,host=a usage=1i 1700000000000000000\n", "influx"),
        ("# influx comment\ncpu value=1\n", "influx"),
        ("this is garbage\n", "influx"),
    ],
)
def test_sniff_tells_prometheus_from_line_protocol(text: str, fmt: str) -> None:
    assert sniff(text) == fmt


@pytest.mark.parametrize(
    ("raw", "metric", "label"),
    [
        ("cpu.load-1m", "cpu_load_1m", "cpu_load_1m"),
        ("ns:sub", "ns:sub", "ns_sub"),
        ("1st", "_1st", "_1st"),
        ("__meta", "__meta", "tag__meta"),
        ("héllo wörld", "h_llo_w_rld", "h_llo_w_rld"),
        ("", "_", "_"),
    ],
)
def test_names_are_sanitised_to_prometheus_syntax(raw: str, metric: str, label: str) -> None:
    assert sanitize_metric_name(raw) == metric
    assert sanitize_label_name(raw) == label
    assert METRIC_NAME_RE.fullmatch(metric)
    assert LABEL_NAME_RE.fullmatch(label)


def test_counters_keep_the_name_they_were_declared_with() -> None:
    got = parse_prometheus(
        "# TYPE plain counter\nplain 1\n# TYPE done_total counter\ndone_total 2\n"
    )
    assert [(s.name, s.type) for s in got] == [("plain", "counter"), ("done_total", "counter")]


def test_histograms_keep_their_family_and_untyped_is_unknown() -> None:
    fams = parse_families(
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\nloose 5\n'
    )
    assert [(f.name, f.type, len(f.samples)) for f in fams] == [
        ("h", "histogram", 4),
        ("loose", "unknown", 1),
    ]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("ok 1\nbad line here\n", 2),
        ("ok 1\nok2 1\nx{a=unquoted} 1\n", 3),
        ("# TYPE x bogus\nx 1\n", 2),
    ],
)
def test_parse_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(ExpositionError, match=f"at line {line}: "):
        parse_prometheus(text)


def test_influx_points_with_precision_and_booleans() -> None:
    samples, skipped = influx_samples(parse('m,2x=a v=1i,b=f,s="t" 1700000000\n'), precision="s")
    assert [(s.name, dict(s.labels), s.value, s.ts_ms) for s in samples] == [
        ("m_v", {"_2x": "a"}, 1.0, 1700000000000),
        ("m_b", {"_2x": "a"}, 0.0, 1700000000000),
    ]
    assert skipped == 1


def test_empty_label_values_are_no_labels() -> None:
    (s,) = parse_prometheus('x{a="",b="1"} 1\n')
    assert dict(s.labels) == {"b": "1"}
