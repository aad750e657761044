from __future__ import annotations

import pytest

from notifier.inhibit import Inhibitor, InhibitRule
from shared.alertmanager.errors import MatcherError
from shared.alertmanager.silence import Silencer, state, validate
from shared.wire import Matcher, Silence
from tests.notifier.helpers import alert, at, config


def _silence(*matchers: Matcher, start: float = 0, end: float = 3600, sid: str = "s1") -> Silence:
    return Silence(
        id=sid,
        matchers=list(matchers),
        starts_at=at(start),
        ends_at=at(end),
        created_by="me",
        comment="maintenance",
        updated_at=at(start),
    )


def test_silence_states_by_time() -> None:
    s = _silence(Matcher(name="a", value="b"), start=10, end=20)
    assert [state(s, at(t)) for t in (0, 10, 19.9, 20, 30)] == [
        "pending",
        "active",
        "active",
        "expired",
        "expired",
    ]


def test_silence_matchers_regex_anchored_negation_and_absent_labels() -> None:
    s = _silence(
        Matcher(name="service", value="api|web", is_regex=True),
        Matcher(name="env", value="dev", is_equal=False),
        Matcher(name="zone", value="", is_regex=False),
    )
    sil = Silencer([s])
    now = at(5)
    assert sil.silenced_by({"service": "api"}, now) == ["s1"]
    assert sil.silenced_by({"service": "api-2"}, now) == []
    assert sil.silenced_by({"service": "web", "env": "dev"}, now) == []
    assert sil.silenced_by({"service": "web", "zone": "z"}, now) == []
    assert sil.silenced_by({"service": "web"}, at(3600)) == []
    sil.remove("s1")
    assert sil.silenced_by({"service": "api"}, now) == []


def test_silence_matching_everything_is_refused() -> None:
    with pytest.raises(MatcherError, match="empty string"):
        validate(_silence(Matcher(name="a", value=".*", is_regex=True)))
    with pytest.raises(MatcherError, match="empty string"):
        validate(_silence(Matcher(name="a", value="x", is_equal=False)))
    with pytest.raises(MatcherError):
        validate(_silence(Matcher(name="a", value="(", is_regex=True)))
    validate(_silence(Matcher(name="a", value="x")))


def _inhibitor(equal: list[str]) -> Inhibitor:
    cfg = config(
        {
            "route": {"receiver": "r"},
            "receivers": [{"name": "r"}],
            "inhibit_rules": [
                {
                    "source_matchers": ['severity="critical"'],
                    "target_matchers": ['severity=~"warning|critical"'],
                    "equal": equal,
                }
            ],
        }
    )
    return Inhibitor(InhibitRule.from_config(r) for r in cfg.am.inhibit_rules)


def test_firing_source_inhibits_target_with_equal_labels() -> None:
    inh = _inhibitor(["cluster"])
    src = alert(0, severity="critical", cluster="c1", alertname="Down")
    inh.set_alerts([src])
    now = at(10)
    assert inh.inhibited_by({"severity": "warning", "cluster": "c1"}, now) == [src.fingerprint]
    assert inh.inhibited_by({"severity": "warning", "cluster": "c2"}, now) == []
    assert inh.inhibited_by({"severity": "info", "cluster": "c1"}, now) == []
    assert inh.inhibited_by({"severity": "warning", "cluster": "c1"}, at(3600)) == []


def test_equal_labels_missing_on_both_sides_count_as_equal() -> None:
    inh = _inhibitor(["cluster"])
    src = alert(0, severity="critical")
    inh.set_alerts([src])
    assert inh.inhibited_by({"severity": "warning"}, at(1)) == [src.fingerprint]


def test_an_alert_does_not_inhibit_itself_nor_its_two_sided_peers() -> None:
    inh = _inhibitor(["cluster"])
    a = alert(0, severity="critical", cluster="c1", alertname="A")
    b = alert(0, severity="critical", cluster="c1", alertname="B")
    inh.set_alerts([a, b])
    assert inh.inhibited_by(a.labels, at(1)) == []
    assert inh.inhibited_by(b.labels, at(1)) == []


def test_resolved_source_does_not_inhibit() -> None:
    inh = _inhibitor([])
    inh.set_alerts([alert(0, resolved=True, severity="critical")])
    assert inh.inhibited_by({"severity": "warning"}, at(1)) == []
