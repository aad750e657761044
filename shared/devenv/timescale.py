"""A local TimescaleDB server for development and tests, run from the cached rootfs.

:class:`LocalTimescale` runs one postgres from a rootfs made by
:func:`shared.devenv.rootfs.ensure_rootfs`, listening on 127.0.0.1 only, with
its data directory outside the rootfs, so any number of servers share one
rootfs. Each server lives in private mount and PID namespaces: its mounts
(proc, /dev/shm, the data directory) exist only there and go away with it, and
the death of the wrapper process kills every postgres process in it.
Authentication is ``trust``: a development server only.

Every failure is a :class:`shared.errors.DevEnvError`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from shared.devenv.pgprobe import NotReadyError, query_one
from shared.devenv.procs import free_port, log_tail, namespace_prefix
from shared.devenv.rootfs import DATA_MOUNT, PG_BIN, postgres_ids
from shared.errors import DevEnvError
from shared.log import get_logger

log = get_logger(__name__)

_PORT_ATTEMPTS = 5

# Runs as PID 1 of a fresh PID namespace inside a private mount namespace, so
# every mount below dies with it. It stays as postgres' parent rather than
# exec'ing it: chroot's switch to the postgres user clears the parent-death
# signal that `unshare --kill-child` relies on, and when this PID 1 dies the
# kernel kills everything left in the namespace. SIGINT/SIGTERM become SIGINT,
# postgres' fast shutdown. `wait` returns early when a trap runs: wait again.
_NS_SCRIPT = """\
set -eu
root=$1 data=$2 ids=$3
shift 3
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
mount --bind "$data" "$root/vigil-data"
chroot --userspec="$ids" "$root" "$@" &
child=$!
trap 'kill -INT "$child" 2>/dev/null || :' INT TERM
while :; do
    status=0
    wait "$child" || status=$?
    kill -0 "$child" 2>/dev/null || exit "$status"
done
"""


class LocalTimescale:
    """One postgres + TimescaleDB from ``rootfs``, on 127.0.0.1, data kept in ``data_dir``.

    ``start()`` runs initdb when ``data_dir`` is missing or empty (a non-empty
    directory must already be a postgres 17 data directory), then starts the
    server and returns once it answers a query. ``port=0`` picks a free loopback
    port, retrying on a bind race. ``fast=True`` trades crash safety for speed
    (fsync, synchronous_commit and full_page_writes off): for throwaway data.
    The server log is appended to ``<data_dir>.log``. ``stop()``
    is idempotent and returns once every process of the server is gone.
    Not thread-safe; one instance per server.
    """

    def __init__(
        self,
        rootfs: Path,
        data_dir: Path,
        *,
        port: int = 0,
        fast: bool = False,
        max_connections: int = 200,
        start_timeout: float = 60.0,
    ) -> None:
        self.rootfs = rootfs.absolute()
        self.data_dir = data_dir.absolute()
        if self.data_dir == self.rootfs or self.rootfs in self.data_dir.parents:
            raise DevEnvError(f"cannot use data directory {data_dir}: it is inside the rootfs")
        self._requested_port = port
        self._fast = fast
        self._max_connections = max_connections
        self._start_timeout = start_timeout
        # A name unique to this start: the readiness probe checks it to know the
        # server that answered on the port is ours, not a racer's.
        self._cluster_name = f"vigil-{secrets.token_hex(4)}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def log_path(self) -> Path:
        """Output of initdb and postgres, appended; beside ``data_dir`` (initdb wants it empty)."""
        return self.data_dir.with_name(f"{self.data_dir.name}.log")

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1; 0 until started."""
        return self._port

    @property
    def pid(self) -> int | None:
        """PID of the wrapper process started (unshare); None before start()."""
        return None if self._proc is None else self._proc.pid

    @property
    def url(self) -> str:
        """Superuser URL of the ``postgres`` database (trust authentication)."""
        return f"postgresql://postgres@127.0.0.1:{self._port}/postgres"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._proc is not None:
            raise DevEnvError(f"cannot start TimescaleDB in {self.data_dir}: already started")
        ids = postgres_ids(self.rootfs)
        self._prepare_data_dir(ids)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = self._requested_port or free_port()
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            started = time.monotonic()
            postgres = [f"{PG_BIN}/postgres", "-D", DATA_MOUNT, *self._settings(port)]
            with self.log_path.open("ab") as out:
                self._proc = self._spawn(ids, postgres, out)
            self._port = port
            try:
                failure = self._wait_ready(self._proc, port)
            except BaseException:  # Ctrl-C while waiting: leave no server behind
                self.stop()
                raise
            if failure is None:
                log.info(
                    "timescale_started",
                    port=port,
                    pid=self._proc.pid,
                    seconds=round(time.monotonic() - started, 2),
                )
                return
            self.stop()
            new_log = self.log_path.read_bytes()[offset:].decode("utf-8", errors="replace")
            tail = "\n".join(new_log.splitlines()[-20:])
            if (
                self._requested_port == 0
                and "Address already in use" in new_log
                and attempt < _PORT_ATTEMPTS
            ):
                continue
            self._port = 0
            raise DevEnvError(
                f"cannot start TimescaleDB on 127.0.0.1:{port}: {failure}; server log ends:\n{tail}"
            )

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT to postgres); after ``timeout`` seconds, SIGKILL everything."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            init = _only_child(proc.pid)  # the script, PID 1 of the server's namespace
            _signal(init, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("timescale_stop_timeout", pid=proc.pid, seconds=timeout)
                # When a namespace's PID 1 dies the kernel kills everything in it
                # before unshare's wait returns: nothing outlives proc.wait().
                _signal(init, signal.SIGKILL)
                try:
                    proc.wait(10.0)
                except subprocess.TimeoutExpired:
                    proc.kill()  # --kill-child SIGKILLs the namespace's PID 1
                    proc.wait()
        log.info("timescale_stopped", port=self._port, pid=proc.pid, returncode=proc.returncode)

    def _prepare_data_dir(self, ids: tuple[int, int]) -> None:
        data = self.data_dir
        try:
            data.mkdir(parents=True, exist_ok=True)
            fresh = not (data / "PG_VERSION").exists()
            if fresh and any(data.iterdir()):
                raise DevEnvError(
                    f"cannot initialise {data}: not empty and not a postgres data directory"
                )
            if not fresh and (version := (data / "PG_VERSION").read_text().strip()) != "17":
                raise DevEnvError(f"cannot use {data}: it holds postgres {version} data, not 17")
            # postgres refuses to run as root: it runs as the rootfs' postgres user.
            os.chown(data, *ids)
            data.chmod(0o700)
        except OSError as exc:
            raise DevEnvError(f"cannot prepare data directory {data}: {exc}") from exc
        if not fresh:
            return
        initdb = [f"{PG_BIN}/initdb", f"--pgdata={DATA_MOUNT}", "--username=postgres"]
        initdb += ["--auth=trust", "--encoding=UTF8", "--no-locale"]
        with self.log_path.open("ab") as out:
            proc = self._spawn(ids, initdb, out)
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = -1
        if code != 0:
            tail = log_tail(self.log_path)
            raise DevEnvError(
                f"cannot initialise {data}: initdb exited with {code}; log ends:\n{tail}"
            )
        # Loopback-only development server: anyone who can open a TCP connection
        # to 127.0.0.1 on this host is trusted as any user. The unix socket is off.
        (data / "pg_hba.conf").write_text(
            "# Written by shared.devenv.timescale: loopback-only development server.\n"
            "host all all 127.0.0.1/32 trust\n",
            encoding="utf-8",
        )

    def _settings(self, port: int) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": "",
            "cluster_name": self._cluster_name,
            "max_connections": str(self._max_connections),
            "shared_preload_libraries": "timescaledb",
            "timescaledb.telemetry_level": "off",
        }
        if self._fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        return [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]

    def _spawn(
        self, ids: tuple[int, int], command: list[str], out: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        """Run ``command`` in the chroot as postgres, in fresh namespaces, output to ``out``."""
        cmd = [*namespace_prefix(), "sh", "-c", _NS_SCRIPT, "vigil-timescale"]
        cmd += [str(self.rootfs), str(self.data_dir), f"{ids[0]}:{ids[1]}", *command]
        # A session of its own: a terminal's Ctrl-C reaches Python, which stops the server in order.
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int) -> str | None:
        """None once our server answers a query on ``port``, else why not."""
        deadline = time.monotonic() + self._start_timeout
        reason = "no answer yet"
        while proc.poll() is None:
            try:
                name = query_one(port, "SHOW cluster_name")
            except (OSError, NotReadyError) as exc:
                reason = str(exc) or type(exc).__name__
            else:
                if name == self._cluster_name:
                    return None
                reason = f"another server ({name}) answers on the port"
            if time.monotonic() > deadline:
                return f"not ready after {self._start_timeout:g} s ({reason})"
            time.sleep(0.05)
        return f"the server exited with {proc.returncode}"


def _only_child(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _signal(pid: int | None, signum: int) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
