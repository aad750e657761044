from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.alertmanager.errors import MatcherError
from shared.alertmanager.matchers import (
    LabelMatcher,
    go_quote,
    matchers_string,
    parse_matcher,
    parse_matchers,
)


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('alertname="Watchdog"', "alertname", "=", "Watchdog"),
        ("alertname=Watchdog", "alertname", "=", "Watchdog"),
        ('severity=~"warning|critical"', "severity", "=~", "warning|critical"),
        ("severity!~info", "severity", "!~", "info"),
        ('  env != "prod"  ', "env", "!=", "prod"),
        ('msg="a \\"quoted\\" \\\\ word\\n"', "msg", "=", 'a "quoted" \\ word\n'),
        ('x="a\\zb"', "x", "=", "a\\zb"),
        ('x=""', "x", "=", ""),
        ("x=", "x", "=", ""),
        ("foo:bar=1", "foo:bar", "=", "1"),
        ('x="a,b"', "x", "=", "a,b"),
    ],
)
def test_parse_matcher_reads_alertmanagers_syntax(
    text: str, name: str, op: str, value: str
) -> None:
    m = parse_matcher(text)
    assert (m.name, m.op, m.value) == (name, op, value)


@pytest.mark.parametrize(
    "text", ['x=="y"', "1x=y", 'x="unterminated', 'x=a"b', "no operator", 'x=~"("']
)
def test_parse_matcher_rejects_malformed_text(text: str) -> None:
    with pytest.raises(MatcherError):
        parse_matcher(text)


def test_parse_matchers_splits_on_commas_outside_quotes_and_strips_braces() -> None:
    ms = parse_matchers('{env="prod", msg="a,b", severity!~"info|debug"}')
    assert [str(m) for m in ms] == ['env="prod"', 'msg="a,b"', 'severity!~"info|debug"']


def test_regex_matchers_are_anchored_and_absent_labels_are_empty() -> None:
    m = parse_matcher('service=~"api|web"')
    assert m.matches_labels({"service": "api"})
    assert not m.matches_labels({"service": "api2"})
    assert not m.matches_labels({})
    assert parse_matcher('x=""').matches_labels({})
    assert not parse_matcher('x!=""').matches_labels({})
    assert parse_matcher('x!~"a.*"').matches_labels({})
    assert parse_matcher("x=~.*").matches_labels({})


def test_strings_use_go_quoting_like_alertmanager() -> None:
    assert go_quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    ms = parse_matchers('b=~"x", a="1"')
    assert matchers_string(ms) == '{b=~"x",a="1"}'


@given(
    name=st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True),
    op=st.sampled_from(["=", "!=", "=~", "!~"]),
    value=st.text(alphabet=st.sampled_from('ab ,{}="\\\n.|'), max_size=12),
)
def test_printed_matchers_parse_back_to_themselves(name: str, op: str, value: str) -> None:
    if op in ("=~", "!~"):
        value = re.escape(value)
    m = LabelMatcher.make(name, op, value)  # type: ignore[arg-type]
    [back] = parse_matchers("{" + str(m) + "}")
    assert back == m
