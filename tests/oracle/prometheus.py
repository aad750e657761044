"""A real Prometheus (Debian's ``prometheus`` 2.x) as the PromQL oracle.

Installed by ``deploy/local/install-oracles.sh``, never run as a service: the fixture
backfills blocks with ``promtool tsdb create-blocks-from openmetrics``, starts the
binary on 127.0.0.1 with its own TSDB folder and a 100-year retention, and stops it
by its PID.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.compat.node_exporter import free_port

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
MISSING_REASON = (
    "prometheus is not installed: run deploy/local/install-oracles.sh as root "
    "(or apt-get install --no-install-recommends prometheus)"
)


def available() -> bool:
    return Path(PROMETHEUS).exists() and shutil.which(PROMTOOL) is not None


class Prometheus:
    def __init__(self, proc: subprocess.Popen[bytes], base: str) -> None:
        self.proc = proc
        self.base = base

    def api(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        body = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(f"{self.base}{path}", data=body, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
                answer: dict[str, Any] = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read())
        return answer


def backfill(openmetrics: Path, tsdb: Path) -> None:
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(tsdb)],
        check=True,
        capture_output=True,
    )


@contextmanager
def running_prometheus(tsdb: Path) -> Iterator[Prometheus]:
    config = tsdb.parent / "prometheus.yml"
    config.write_text("global:\n  evaluation_interval: 1m\n")
    log_path = tsdb.parent / "prometheus.log"
    for _attempt in range(3):
        port = free_port()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--storage.tsdb.path={tsdb}",
                    "--storage.tsdb.retention.time=100y",
                    "--web.enable-remote-write-receiver",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            if _wait_ready(proc, base):
                yield Prometheus(proc, base)
                return
        finally:
            _stop(proc)
    raise RuntimeError(f"cannot start prometheus: {log_path.read_text(errors='replace')[-2000:]}")


def _wait_ready(proc: subprocess.Popen[bytes], base: str) -> bool:
    for _ in range(600):  # up to ~30 s
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM to this PID only
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
