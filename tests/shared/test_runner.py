"""A service under run_service stops gracefully on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

SERVICE = """
import asyncio, sys
from shared.runner import run_service

class App:
    async def start(self):
        print("started", flush=True)
    async def stop(self):
        await asyncio.sleep(0.1)
        print("stopped cleanly", flush=True)

sys.exit(run_service(App))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_service_gracefully(sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
        assert "stopped cleanly" in out
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_failing_start_exits_non_zero() -> None:
    script = SERVICE.replace('print("started", flush=True)', 'raise RuntimeError("cannot bind")')
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 1
    assert "cannot bind" in result.stderr
