"""A local TimescaleDB for development and tests: a Debian root filesystem and servers in it.

Contracts:

- :func:`ensure_rootfs` returns a directory holding Debian trixie with
  ``postgresql-17`` and ``postgresql-17-timescaledb`` (the apache-licensed
  build). It is built once per cache folder with ``debootstrap`` (needs root,
  the network, ~700 MB) and reused afterwards. Concurrent callers (pytest-xdist
  workers, two terminals) serialise on an ``flock``: one builds, the others wait
  and reuse. A finished rootfs is never modified, copied or deleted here; a
  half-built one from a crashed build is removed only when nothing is mounted
  under it.
- :class:`LocalTimescale` runs one postgres from that rootfs, listening on
  127.0.0.1 only, with its data directory outside the rootfs, so any number of
  servers share one rootfs. Each server lives in private mount and PID
  namespaces: its mounts (proc, /dev/shm, the data directory) exist only there
  and go away with it, and the death of the wrapper process kills every
  postgres process in it. Authentication is ``trust``: a development server only.
- :func:`create_database`, :func:`drop_database` and :func:`server_info`
  import asyncpg when called: ``shared`` is installed on agent hosts without it.

Every failure is a :class:`shared.errors.DevEnvError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urlsplit, urlunsplit

import structlog

from shared.errors import DevEnvError

log = structlog.get_logger(__name__)

ROOTFS_NAME = "timescale-trixie-v1"
"""Folder name of the rootfs in the cache; bump the suffix when the recipe changes."""

_SUITE = "trixie"
_MIRROR = "http://deb.debian.org/debian"
_PACKAGES = ("postgresql-17", "postgresql-17-timescaledb")
_STAMP = ".vigil-rootfs-complete"
_BUILD_TIMEOUT_S = 1800.0
_PG_BIN = "/usr/lib/postgresql/17/bin"
_DATA_MOUNT = "/vigil-data"
_REQUIRED = (
    f"{_PG_BIN}/postgres",
    f"{_PG_BIN}/initdb",
    "/usr/lib/postgresql/17/lib/timescaledb.so",
)
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
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


def default_cache_dir() -> Path:
    """``$VIGIL_CACHE_DIR``, else ``$XDG_CACHE_HOME/vigil``, else ``~/.cache/vigil``."""
    if explicit := os.environ.get("VIGIL_CACHE_DIR"):
        return Path(explicit).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "vigil"
    return Path.home() / ".cache" / "vigil"


def database_url_from_env() -> str | None:
    """The developer's own server, ``$VIGIL_DATABASE_URL``, or None to start a local one."""
    return os.environ.get("VIGIL_DATABASE_URL") or None


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` in this process' mount namespace."""
    root = os.path.realpath(path)
    found = []
    with Path("/proc/self/mountinfo").open(encoding="utf-8") as mountinfo:
        for line in mountinfo:
            # Field 5 is the mount point, with blanks and backslashes octal-escaped.
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split(" ")[4])
            if point == root or point.startswith(root.rstrip("/") + "/"):
                found.append(point)
    return found


def built_rootfs(cache_dir: Path | None = None) -> Path | None:
    """The complete rootfs in ``cache_dir`` (default: :func:`default_cache_dir`), else None."""
    rootfs = (cache_dir or default_cache_dir()).expanduser().absolute() / ROOTFS_NAME
    return rootfs if (rootfs / _STAMP).is_file() else None


def ensure_rootfs(cache_dir: Path | None = None) -> Path:
    """Return ``<cache>/timescale-trixie-v1``, building it first if needed (blocking, minutes)."""
    cache = (cache_dir or default_cache_dir()).expanduser().absolute()
    rootfs = cache / ROOTFS_NAME
    if (rootfs / _STAMP).is_file():
        return rootfs
    debootstrap = _find_tool("debootstrap")
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DevEnvError(f"cannot create cache folder {cache}: {exc}") from exc
    with _exclusive(cache / f"{ROOTFS_NAME}.lock"):
        if (rootfs / _STAMP).is_file():  # built by another process while we waited
            return rootfs
        if rootfs.exists():
            raise DevEnvError(
                f"cannot build rootfs {rootfs}: it exists without the stamp {_STAMP};"
                " remove it by hand once nothing is mounted under it"
            )
        for stale in cache.glob(f"{ROOTFS_NAME}.tmp-*"):
            _remove_unmounted(stale)
        tmp = Path(tempfile.mkdtemp(prefix=f"{ROOTFS_NAME}.tmp-", dir=cache))
        started = time.monotonic()
        log.info("rootfs_build_started", path=str(rootfs), packages=_PACKAGES)
        _debootstrap(debootstrap, tmp, cache / f"{ROOTFS_NAME}.build.log")
        _finish(tmp)
        # The stamp is written inside before the rename, so the rename alone
        # publishes a complete rootfs.
        tmp.rename(rootfs)
        log.info(
            "rootfs_build_finished", path=str(rootfs), seconds=round(time.monotonic() - started, 1)
        )
    return rootfs


def _find_tool(name: str, package: str | None = None) -> str:
    # /usr/sbin is often missing from PATH outside a root login shell.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise DevEnvError(
            f"cannot find {name}: it is not installed (apt-get install {package or name})"
        )
    return found


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("rootfs_build_waiting", lock=str(lock_path))
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_unmounted(path: Path) -> None:
    # rmtree through a live /proc, /sys or bind mount would destroy what is mounted there.
    if mounted := mounts_under(path):
        raise DevEnvError(f"cannot remove {path}: still mounted there: {', '.join(mounted)}")
    log.info("rootfs_stale_removed", path=str(path))
    shutil.rmtree(path)


def _debootstrap(debootstrap: str, target: Path, log_path: Path) -> None:
    # Private namespaces: debootstrap's /proc and /sys mounts, and any daemon a
    # package's postinst starts in the chroot, die with it even if it crashes.
    cmd = [
        *_namespace_prefix(),
        debootstrap,
        "--variant=minbase",
        f"--include={','.join(_PACKAGES)}",
        _SUITE,
        str(target),
        _MIRROR,
    ]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=_BUILD_TIMEOUT_S)
        except BaseException:
            proc.kill()  # --kill-child takes debootstrap's whole namespace with it
            proc.wait()
            raise
    if code != 0:
        raise DevEnvError(
            f"cannot build rootfs {target}: debootstrap exited with {code}; log {log_path} ends:\n"
            + _tail(log_path)
        )


def _finish(target: Path) -> None:
    missing = [path for path in _REQUIRED if not (target / path.lstrip("/")).is_file()]
    if missing:
        raise DevEnvError(
            f"cannot build rootfs {target}: debootstrap left out {', '.join(missing)}"
        )
    if mounted := mounts_under(target):
        raise DevEnvError(
            f"cannot build rootfs {target}: still mounted there: {', '.join(mounted)}"
        )
    # mkdtemp made it 0700: the postgres user must be able to walk the chroot's /.
    target.chmod(0o755)
    (target / _DATA_MOUNT.lstrip("/")).mkdir(mode=0o755, exist_ok=True)
    (target / "dev" / "shm").mkdir(mode=0o1777, exist_ok=True)
    stamp = {"suite": _SUITE, "packages": list(_PACKAGES), "built_at": time.time()}
    (target / _STAMP).write_text(json.dumps(stamp) + "\n", encoding="utf-8")


def _namespace_prefix() -> list[str]:
    """A command prefix: private mount + PID namespaces that die with the returned process.

    From the main thread the whole tree also dies with this Python process
    (parent-death signal). Not from other threads: that signal fires when the
    *thread* that started the child exits, which would kill a server at random.
    """
    prefix = []
    if threading.current_thread() is threading.main_thread():
        prefix = [_find_tool("setpriv", "util-linux"), "--pdeathsig", "KILL", "--"]
    # util-linux's unshare blocks SIGINT/SIGTERM while it waits for its child:
    # only SIGKILL stops it, and --kill-child then SIGKILLs the namespace's PID 1.
    unshare = [
        _find_tool("unshare", "util-linux"),
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
    ]
    return [*prefix, *unshare, "--kill-child", "--"]


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _postgres_ids(rootfs: Path) -> tuple[int, int]:
    for line in (rootfs / "etc" / "passwd").read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if fields[0] == "postgres" and len(fields) >= 4:
            return int(fields[2]), int(fields[3])
    raise DevEnvError(f"cannot find user postgres in {rootfs}/etc/passwd: the rootfs is broken")


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
        ids = _postgres_ids(self.rootfs)
        self._prepare_data_dir(ids)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = self._requested_port or _free_port()
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            started = time.monotonic()
            postgres = [f"{_PG_BIN}/postgres", "-D", _DATA_MOUNT, *self._settings(port)]
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
        initdb = [f"{_PG_BIN}/initdb", f"--pgdata={_DATA_MOUNT}", "--username=postgres"]
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
            tail = _tail(self.log_path)
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
        cmd = [*_namespace_prefix(), "sh", "-c", _NS_SCRIPT, "vigil-timescale"]
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
                name = _query_one(port, "SHOW cluster_name")
            except (OSError, _NotReadyError) as exc:
                reason = str(exc) or type(exc).__name__
            else:
                if name == self._cluster_name:
                    return None
                reason = f"another server ({name}) answers on the port"
            if time.monotonic() > deadline:
                return f"not ready after {self._start_timeout:g} s ({reason})"
            time.sleep(0.05)
        return f"the server exited with {proc.returncode}"


class _NotReadyError(Exception):
    """The server answered but cannot run a query yet (starting up, shutting down)."""


def _query_one(port: int, sql: str) -> str | None:
    """First column of the first row of ``sql`` as user postgres, speaking protocol 3.0.

    A few lines of the wire protocol keep this module free of a driver and
    usable from inside a running event loop.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
        params = b"user\0postgres\0database\0postgres\0\0"
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        query = sql.encode() + b"\0"
        sent, value = False, None
        while True:
            kind, body = _read_message(sock)
            if kind == b"E":
                fields = {part[:1]: part[1:] for part in body.split(b"\0") if part}
                raise _NotReadyError(fields.get(b"M", b"error").decode(errors="replace"))
            if kind == b"R" and body[:4] != b"\0\0\0\0":
                raise _NotReadyError(
                    "the server asks for a password; trust authentication expected"
                )
            if kind == b"D" and value is None and body[:2] != b"\0\0":
                (length,) = struct.unpack("!i", body[2:6])
                value = None if length < 0 else body[6 : 6 + length].decode(errors="replace")
            if kind == b"Z":
                if sent:
                    sock.sendall(b"X\0\0\0\4")  # Terminate: no "unexpected EOF" in the server log
                    return value
                sock.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
                sent = True


def _read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    header = _read_exactly(sock, 5)
    (length,) = struct.unpack("!i", header[1:])
    return header[:1], _read_exactly(sock, length - 4)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        data += chunk
    return data


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


@dataclass(frozen=True)
class ServerInfo:
    """What a server runs.

    ``timescaledb_version`` is the extension version installed in the queried
    database, else the one the server would install, None if it has none.
    ``timescaledb_license`` is ``apache`` or ``timescale``; None unless the
    extension is created in the queried database (the setting is defined there only).
    """

    postgres_version: str
    timescaledb_version: str | None
    timescaledb_license: str | None


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _where(url: str) -> str:
    """Host, port and database of ``url``, never its password: fit for messages."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def _asyncpg() -> Any:
    """asyncpg, imported on first use: agent hosts install ``shared`` without it."""
    # asyncpg ships no type information; unused-ignore keeps this right once stubs exist.
    import asyncpg  # type: ignore[import-untyped, unused-ignore]

    return asyncpg


async def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` with the timescaledb extension; return its URL.

    ``name`` must be a plain lower-case identifier. Fails if it exists.
    """
    asyncpg = _asyncpg()
    if not _DB_NAME.fullmatch(name):
        raise DevEnvError(
            f"cannot create database {name!r}: want [a-z_][a-z0-9_]*, at most 63 bytes"
        )
    url = with_database(admin_url, name)
    try:
        admin = await asyncpg.connect(admin_url, timeout=10)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DevEnvError(f"cannot create database {name} on {_where(admin_url)}: {exc}") from exc
    return url


async def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions (``WITH (FORCE)``)."""
    asyncpg = _asyncpg()
    if not _DB_NAME.fullmatch(name):
        raise DevEnvError(f"cannot drop database {name!r}: want [a-z_][a-z0-9_]*, at most 63 bytes")
    try:
        admin = await asyncpg.connect(admin_url, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DevEnvError(f"cannot drop database {name} on {_where(admin_url)}: {exc}") from exc


async def server_info(url: str) -> ServerInfo:
    """Versions and TimescaleDB license of the server behind ``url``."""
    asyncpg = _asyncpg()
    try:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            row = await conn.fetchrow(
                "SELECT current_setting('server_version') AS postgres,"
                " coalesce("
                "  (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
                "  (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb')"
                " ) AS timescaledb,"
                " current_setting('timescaledb.license', true) AS license"
            )
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DevEnvError(f"cannot query server {_where(url)}: {exc}") from exc
    assert row is not None  # noqa: S101 - a SELECT without FROM returns exactly one row
    return ServerInfo(row["postgres"], row["timescaledb"], row["license"])
