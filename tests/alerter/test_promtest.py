"""Rule unit tests in promtool's format, run through Vigil's engine and state machine.

Each ``*_test.yml`` under ``tests/testdata/rules/tests`` must pass here, and under
the real ``promtool test rules`` when it is installed (the oracle). The Python tests
below add what promtool cannot check: the firing and resolved events themselves.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alerter.rules import load_file
from shared.wire import is_stale
from tests.alerter.promtest import expand_values, load_suite, run_suite, run_test, series_labels

TESTS = Path(__file__).parent.parent / "testdata" / "rules" / "tests"
FILES = sorted(TESTS.glob("*_test.yml"))
MIN = 60_000


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
async def test_rule_unit_tests_pass(path: Path) -> None:
    failures = await run_suite(load_suite(path))
    assert failures == []


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_promtool_agrees(path: Path) -> None:
    run = subprocess.run(
        ["promtool", "test", "rules", path.name], cwd=path.parent, capture_output=True, check=False
    )
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()


async def test_wrong_expectation_is_reported() -> None:
    groups = load_file(TESTS / "alerts.yml")
    test = {
        "interval": "1m",
        "input_series": [{"series": 'up{job="node", instance="a"}', "values": "0x5"}],
        "alert_rule_test": [
            {
                "eval_time": "1m",
                "alertname": "InstanceDown",
                "exp_alerts": [{"exp_labels": {"instance": "a"}}],
            }
        ],
    }
    outcome = await run_test(test, groups, MIN)
    (failure,) = outcome.failures
    assert failure.got == []


async def test_events_fire_then_resolve_with_prometheus_times() -> None:
    groups = load_file(TESTS / "alerts.yml")
    test = {
        "interval": "1m",
        "input_series": [
            {"series": 'up{job="node", instance="a"}', "values": "1 1 0 0 0 0 0 1 1 1 1"}
        ],
        "alert_rule_test": [{"eval_time": "10m", "alertname": "InstanceDown", "exp_alerts": []}],
    }
    outcome = await run_test(test, groups, MIN, resend_delay_ms=MIN)
    events = [
        (t // MIN, s.status, s.starts_at_ms // MIN, s.ends_at_ms // MIN) for t, s in outcome.sends
    ]
    # Firing at 5m (active at 2m + for 3m), endsAt 4 x max(interval, resend_delay) ahead;
    # no re-send at 6m (due strictly after last send + 1m); resolved at 7m, endsAt = 7m;
    # the resolved alert is re-sent while retained (9m: strictly after 7m + 1m).
    assert events == [(5, "firing", 5, 9), (7, "resolved", 5, 7), (9, "resolved", 5, 7)]


async def test_keep_firing_for_delays_the_resolved_event() -> None:
    groups = load_file(TESTS / "alerts.yml")
    test = {
        "interval": "1m",
        "input_series": [
            {"series": 'latency_seconds{path="/"}', "values": "0.9 0.2 0.2 0.2 0.2 0.2"}
        ],
        "alert_rule_test": [{"eval_time": "5m", "alertname": "HighLatency", "exp_alerts": []}],
    }
    outcome = await run_test(test, groups, MIN, resend_delay_ms=10 * MIN)
    assert [(t // MIN, s.status) for t, s in outcome.sends] == [(0, "firing"), (4, "resolved")]


def test_expanding_notation_matches_promtool() -> None:
    assert expand_values("1+1x3") == [1, 2, 3, 4]
    assert expand_values("10-2x2 _ 7") == [10, 8, 6, None, 7]
    assert expand_values("5x2") == [5, 5, 5]
    assert expand_values("_x3 1") == [None, None, None, 1]
    assert expand_values("-1+0.5x2 Inf -Inf") == [-1, -0.5, 0, float("inf"), float("-inf")]
    (stale,) = expand_values("stale")
    assert stale is not None
    assert is_stale(stale)
    with pytest.raises(ValueError, match="cannot parse"):
        expand_values("1 x")


def test_series_notation_gives_labels_with_name() -> None:
    assert series_labels('up{job="a", instance="b"}') == {
        "__name__": "up",
        "job": "a",
        "instance": "b",
    }
