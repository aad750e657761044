"""Fault points fire exactly where and when the environment armed them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.faults import CRASH_EXIT_CODE, FaultInjected, arm, fault_point, parse_faults

SCRIPT = """
from shared.faults import fault_point
for i in range(5):
    print("step", i, flush=True)
    fault_point("demo.step")
print("done", flush=True)
"""


def run(env_value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={"VIGIL_FAULTS": env_value, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_unarmed_point_does_nothing() -> None:
    result = run("")
    assert result.returncode == 0
    assert "done" in result.stdout


def test_crash_at_the_nth_hit_exits_with_the_crash_code() -> None:
    result = run("demo.step=crash@3")
    assert result.returncode == CRASH_EXIT_CODE
    assert result.stdout.split("\n")[:3] == ["step 0", "step 1", "step 2"]
    assert "step 3" not in result.stdout
    assert "fault point demo.step fired" in result.stderr


def test_raise_in_process() -> None:
    arm("x.y=raise")
    try:
        with pytest.raises(FaultInjected):
            fault_point("x.y")
        fault_point("x.y")  # fires once only
    finally:
        arm("")


@pytest.mark.parametrize("spec", ["a=explode", "a=crash@x"])
def test_bad_specs_name_the_entry(spec: str) -> None:
    with pytest.raises(ValueError, match="cannot parse VIGIL_FAULTS entry"):
        parse_faults(spec)
