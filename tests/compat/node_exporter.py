"""A real node_exporter as a test oracle: started on 127.0.0.1 only, stopped by its PID.

Debian's ``prometheus-node-exporter`` (installed, never started as a service,
by ``deploy/local/install-oracles.sh``). Used by the compatibility test and
the agent benchmark.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CANDIDATES = ("/usr/bin/prometheus-node-exporter", "prometheus-node-exporter", "node_exporter")
MISSING_REASON = (
    "prometheus-node-exporter is not installed: run deploy/local/install-oracles.sh as root "
    "(or apt-get install --no-install-recommends prometheus-node-exporter)"
)


def find_binary() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own loopback URL
        body: bytes = resp.read()
    return body.decode()


class NodeExporter:
    """A running node_exporter process: ``url`` of its /metrics and ``pid``."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url

    @property
    def pid(self) -> int:
        return self.proc.pid

    def scrape(self) -> str:
        return scrape(self.url)


@contextmanager
def running_node_exporter(binary: str, args: Sequence[str] = ()) -> Iterator[NodeExporter]:
    """Start ``binary`` on a free loopback port with ``args``; stop it (its PID only) on exit."""
    with tempfile.TemporaryDirectory(prefix="vigil-node-exporter-") as tmp:
        log_path = Path(tmp) / "stderr.log"
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = free_port()
            url = f"http://127.0.0.1:{port}/metrics"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    [binary, f"--web.listen-address=127.0.0.1:{port}", *args],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            try:
                if _wait_ready(proc, url):
                    yield NodeExporter(proc, url)
                    return
            finally:
                _stop(proc)
        raise RuntimeError(
            f"cannot start {binary} on 127.0.0.1: {log_path.read_text(errors='replace')[-2000:]}"
        )


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> bool:
    for _ in range(200):  # up to ~10 s
        if proc.poll() is not None:
            return False
        try:
            scrape(url, timeout=2.0)
        except OSError:
            time.sleep(0.05)
        else:
            return True
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM to this PID only
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
