"""``vigil-web`` as a process: configured by environment, serves, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.timescale

REPO = Path(__file__).resolve().parents[2]


def test_process_serves_and_stops_on_sigterm(migrated_db: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VIGIL_DATABASE_URL": migrated_db,
        "VIGIL_VISUALIZATION__LISTEN_ADDRESS": "127.0.0.1:0",
        "VIGIL_LOG__FORMAT": "json",
    }
    env.pop("VIGIL_CONFIG", None)
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "web"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            port = 0
            deadline = time.monotonic() + 30
            while not port and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                for line in log.read_text().splitlines():
                    if '"web started"' in line:
                        port = json.loads(line)["port"]
                time.sleep(0.05)
            assert port, log.read_text()
            r = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/query", params={"query": "1+1", "time": "10"}
            )
            assert r.json() == {
                "status": "success",
                "data": {"resultType": "scalar", "result": [10, "2"]},
            }
            assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "configuration reloaded" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "configuration reloaded" in log.read_text()
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_check_config() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "web", "--check-config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "VIGIL_VISUALIZATION__QUERY_TIMEOUT": "-1"},
    )
    assert r.returncode == 1
    assert "visualization.query_timeout" in r.stderr
