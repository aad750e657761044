"""Restart backoff (pure) and the supervisor restarting a crashing child."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from shared.devenv.supervisor import ChildSpec, RestartPlan, Supervisor


def test_backoff_doubles_up_to_the_cap() -> None:
    plan = RestartPlan(base=1, cap=8, stable_after=60)
    delays = [plan.after_exit(started_at=0, exited_at=1) for _ in range(6)]
    assert delays == [1, 2, 4, 8, 8, 8]


def test_backoff_resets_after_a_stable_run() -> None:
    plan = RestartPlan(base=1, cap=8, stable_after=60)
    for _ in range(3):
        plan.after_exit(0, 1)
    assert plan.after_exit(started_at=100, exited_at=200) == 1


async def test_crashing_child_is_restarted_and_stop_ends_it(tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    script = f"open({str(marker)!r}, 'a').write('x'); import sys; sys.exit(3)"
    sup = Supervisor([ChildSpec("crasher", [sys.executable, "-c", script])], grace=5)
    sup._children[0].plan = RestartPlan(base=0.05, cap=0.05)
    await sup.start()
    for _ in range(200):
        if marker.exists() and len(marker.read_text()) >= 3:
            break
        await asyncio.sleep(0.05)
    await sup.stop()
    assert len(marker.read_text()) >= 3


async def test_stop_terminates_a_running_child(tmp_path: Path) -> None:
    sup = Supervisor(
        [ChildSpec("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])], grace=5
    )
    await sup.start()
    for _ in range(100):
        if sup.pids()["sleeper"]:
            break
        await asyncio.sleep(0.02)
    pid = sup.pids()["sleeper"]
    assert pid is not None
    await sup.stop()
    assert sup._children[0].proc is not None
    assert sup._children[0].proc.returncode is not None
