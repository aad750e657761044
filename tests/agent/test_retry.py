"""The publish retry gate: backoff, one probe, reset on success."""

from __future__ import annotations

from agent.retry import RetryGate


def test_open_gate_allows_the_whole_window() -> None:
    assert RetryGate().window(0.0, 32) == 32


def test_failure_closes_then_probes_with_one_then_reopens_on_success() -> None:
    g = RetryGate(base_s=1.0, cap_s=8.0)
    g.failure(10.0)
    assert g.window(10.5, 32) == 0
    assert g.wait_s(10.5) == 0.5
    assert g.window(11.0, 32) == 1
    g.success()
    assert g.window(11.0, 32) == 32
    assert not g.failing


def test_failed_probes_double_the_delay_up_to_the_cap() -> None:
    g = RetryGate(base_s=1.0, cap_s=4.0)
    now = 0.0
    delays = []
    for _ in range(5):
        g.failure(now)
        delays.append(g.wait_s(now))
        now += delays[-1]
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_failures_of_one_window_count_once() -> None:
    g = RetryGate(base_s=1.0)
    for _ in range(32):
        g.failure(5.0)
    assert g.wait_s(5.0) == 1.0
