from __future__ import annotations

from notifier.route import build, group_key, labelset_string
from tests.notifier.helpers import config

TREE = {
    "route": {
        "receiver": "default",
        "group_by": ["alertname"],
        "routes": [
            {"matchers": ['team="a"'], "receiver": "a", "continue": True},
            {
                "matchers": ['team=~"a|b"'],
                "receiver": "ab",
                "routes": [{"matchers": ['severity="critical"'], "receiver": "ab-pager"}],
            },
            {"match": {"team": "c"}, "receiver": "c", "group_by": ["..."]},
        ],
    },
    "receivers": [{"name": n} for n in ("default", "a", "ab", "ab-pager", "c")],
}


def _receivers(labels: dict[str, str]) -> list[str]:
    return [r.opts.receiver for r in build(config(TREE).route).match(labels)]


def test_unmatched_alert_goes_to_the_root_receiver() -> None:
    assert _receivers({"team": "z"}) == ["default"]


def test_continue_lets_later_siblings_match_too() -> None:
    assert _receivers({"team": "a"}) == ["a", "ab"]


def test_first_matching_sibling_without_continue_stops_the_search() -> None:
    assert _receivers({"team": "b", "severity": "critical"}) == ["ab-pager"]
    assert _receivers({"team": "b"}) == ["ab"]


def test_keys_and_ids_follow_alertmanager() -> None:
    root = build(config(TREE).route)
    assert root.key == "{}"
    pager = root.routes[1].routes[0]
    assert pager.key == '{}/{team=~"a|b"}/{severity="critical"}'
    assert pager.id == '{}/{team=~"a|b"}/1/{severity="critical"}/0'


def test_group_key_is_route_key_and_group_labels() -> None:
    root = build(config(TREE).route)
    labels = root.opts.group_labels({"alertname": "Down", "instance": "x"})
    assert labels == {"alertname": "Down"}
    assert group_key(root, labels) == '{}:{alertname="Down"}'
    c = root.routes[2]
    assert c.opts.group_labels({"team": "c", "x": "1"}) == {"team": "c", "x": "1"}
    assert labelset_string({"b": "2", "a": 'q"'}) == '{a="q\\"", b="2"}'


def test_absent_group_by_labels_are_left_out() -> None:
    root = build(config(TREE).route)
    assert root.opts.group_labels({"instance": "x"}) == {}
