"""Relabeling against Prometheus' semantics; cases follow model/relabel/relabel_test.go."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
from pydantic import ValidationError

from agent.collectors.scrape_relabel import RelabelConfig, compile_rules, expand, relabel

BASE = {"a": "foo", "b": "bar", "c": "baz"}


def run(labels: dict[str, str], *rules: Mapping[str, object]) -> dict[str, str] | None:
    compiled = compile_rules(RelabelConfig.model_validate(r) for r in rules)
    return relabel(dict(labels), compiled)


def test_replace_with_groups_and_expanded_target_label() -> None:
    assert run(
        BASE, {"source_labels": ["a"], "regex": "f(.*)", "target_label": "d", "replacement": "ch${1}-ch${1}"}
    ) == {**BASE, "d": "choo-choo"}  # fmt: skip
    assert run(
        BASE,
        {"source_labels": ["a", "b"], "regex": "f(.*);(.*)r", "target_label": "a", "replacement": "b${1}${2}m"},
    ) == {**BASE, "a": "boobam"}  # fmt: skip
    assert run(
        BASE,
        {"source_labels": ["a"], "regex": "(f)(.*)", "target_label": "${1}${2}", "replacement": "${2}"},
    ) == {**BASE, "foo": "oo"}  # fmt: skip


def test_replace_regex_is_anchored_and_no_match_changes_nothing() -> None:
    rule = {"source_labels": ["a"], "regex": "o", "target_label": "d", "replacement": "x"}
    assert run(BASE, rule) == BASE
    assert run(BASE, {**rule, "regex": "f"}) == BASE
    assert run(BASE, {**rule, "regex": "fo+"}) == {**BASE, "d": "x"}


def test_replace_to_empty_deletes_and_missing_source_reads_as_empty() -> None:
    assert run(
        BASE, {"source_labels": ["a"], "regex": ".*", "target_label": "b", "replacement": ""}
    ) == {
        "a": "foo",
        "c": "baz",
    }
    assert run(BASE, {"source_labels": ["nope"], "regex": "", "target_label": "e", "replacement": "empty"}) == {
        **BASE,
        "e": "empty",
    }  # fmt: skip


def test_replace_with_an_invalid_expanded_target_changes_nothing() -> None:
    assert run(BASE, {"source_labels": ["a"], "regex": "(.*)", "target_label": "${1}-x"}) == BASE


def test_keep_and_drop_match_the_joined_source_values() -> None:
    assert run(BASE, {"source_labels": ["a"], "regex": "f.*", "action": "drop"}) is None
    assert run(BASE, {"source_labels": ["a"], "regex": "f", "action": "drop"}) == BASE
    assert run(BASE, {"source_labels": ["a", "b"], "regex": "foo;bar", "action": "keep"}) == BASE
    assert run(BASE, {"source_labels": ["a"], "regex": "no", "action": "keep"}) is None


def test_keepequal_and_dropequal_compare_with_the_target_label() -> None:
    labels = {"a": "x", "b": "x", "c": "y"}
    assert (
        run(labels, {"source_labels": ["a"], "target_label": "b", "action": "keepequal"}) == labels
    )
    assert run(labels, {"source_labels": ["a"], "target_label": "c", "action": "keepequal"}) is None
    assert run(labels, {"source_labels": ["a"], "target_label": "b", "action": "dropequal"}) is None


def test_hashmod_matches_prometheus() -> None:
    # relabel_test.go: md5("baz") mod 1000 is 976.
    rule = {"source_labels": ["c"], "target_label": "d", "modulus": 1000, "action": "hashmod"}
    assert run(BASE, rule) == {**BASE, "d": "976"}


def test_labelmap_copies_matching_label_names() -> None:
    assert run(BASE, {"regex": "(b.*)", "replacement": "bar_${1}", "action": "labelmap"}) == {
        **BASE,
        "bar_b": "bar",
    }
    assert run(BASE, {"regex": "([bc])", "replacement": "x_$1", "action": "labelmap"}) == {
        **BASE,
        "x_b": "bar",
        "x_c": "baz",
    }


def test_labeldrop_and_labelkeep_on_names() -> None:
    assert run(BASE, {"regex": "a|b", "action": "labeldrop"}) == {"c": "baz"}
    assert run(BASE, {"regex": "a|b", "action": "labelkeep"}) == {"a": "foo", "b": "bar"}
    assert run(BASE, {"regex": "(b.*)", "action": "labelkeep"}) == {"b": "bar"}


def test_lowercase_and_uppercase() -> None:
    labels = {"foo": "bAr123Foo", "bar": "X"}
    assert run(labels, {"source_labels": ["foo"], "target_label": "l", "action": "lowercase"}) == {
        **labels,
        "l": "bar123foo",
    }
    assert run(labels, {"source_labels": ["foo", "bar"], "target_label": "u", "action": "uppercase"}) == {
        **labels,
        "u": "BAR123FOO;X",
    }  # fmt: skip


def test_rules_apply_in_order_and_see_earlier_results() -> None:
    assert run(
        {"__name__": "http_total", "code": "500"},
        {"source_labels": ["code"], "regex": "(5)..", "target_label": "class", "replacement": "${1}xx"},
        {"source_labels": ["__name__", "class"], "regex": "http_total;5xx", "action": "drop"},
    ) is None  # fmt: skip


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$1", "foo"),
        ("${1}x", "foox"),
        ("$1x", ""),  # Go reads the name "1x": no such group
        ("$name-$2", "foo-bar"),
        ("$$1", "$1"),
        ("${}", "${}"),
        ("$9", ""),
        ("a$", "a$"),
    ],
)
def test_expand_follows_go_templates(template: str, expected: str) -> None:
    match = re.match(r"(?P<name>foo)(bar)", "foobar")
    assert match is not None
    assert expand(template, match) == expected


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"action": "replace"}, "requires target_label"),
        ({"action": "hashmod", "target_label": "x"}, "non-zero modulus"),
        ({"action": "labeldrop", "source_labels": ["a"]}, "takes only regex"),
        ({"action": "lowercase", "target_label": "x", "replacement": "y"}, "cannot be set"),
        ({"action": "labelmap", "replacement": "-bad"}, "not a valid replacement"),
        ({"target_label": "1bad"}, "not a valid label name"),
        ({"regex": "("}, "invalid regex"),
        ({"action": "keepequal", "target_label": "x", "regex": "a"}, "takes only source_labels"),
    ],
)
def test_invalid_rules_are_rejected_like_prometheus(rule: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RelabelConfig.model_validate(rule)
