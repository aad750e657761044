"""The cached Debian root filesystem that local TimescaleDB servers run from.

Contracts:

- :func:`ensure_rootfs` returns a directory holding Debian trixie with
  ``postgresql-17`` and ``postgresql-17-timescaledb`` (the apache-licensed
  build). It is built once per cache folder with ``debootstrap`` (needs root,
  the network, ~700 MB) and reused afterwards. Concurrent callers (pytest-xdist
  workers, two terminals) serialise on an ``flock``: one builds, the others wait
  and reuse. A finished rootfs is never modified, copied or deleted here; a
  half-built one from a crashed build is removed only when nothing is mounted
  under it.
- A finished rootfs has the postgres binaries in :data:`PG_BIN`, an empty
  :data:`DATA_MOUNT` for a server's data directory to be bound on, a
  ``/dev/shm`` to mount a tmpfs on, and a ``postgres`` user
  (:func:`postgres_ids`).

Every failure is a :class:`shared.errors.DevEnvError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from shared.devenv.procs import find_system_tool, log_tail, namespace_prefix
from shared.errors import DevEnvError
from shared.log import get_logger

log = get_logger(__name__)

ROOTFS_NAME = "timescale-trixie-v1"
"""Folder name of the rootfs in the cache; bump the suffix when the recipe changes."""

PG_BIN = "/usr/lib/postgresql/17/bin"
"""Folder of ``postgres`` and ``initdb`` inside the rootfs."""

DATA_MOUNT = "/vigil-data"
"""Empty folder inside the rootfs where a server's data directory is bound."""

_SUITE = "trixie"
_MIRROR = "http://deb.debian.org/debian"
_PACKAGES = ("postgresql-17", "postgresql-17-timescaledb")
_STAMP = ".vigil-rootfs-complete"
_BUILD_TIMEOUT_S = 1800.0
_REQUIRED = (
    f"{PG_BIN}/postgres",
    f"{PG_BIN}/initdb",
    "/usr/lib/postgresql/17/lib/timescaledb.so",
)


def default_cache_dir() -> Path:
    """``$VIGIL_CACHE_DIR``, else ``$XDG_CACHE_HOME/vigil``, else ``~/.cache/vigil``."""
    if explicit := os.environ.get("VIGIL_CACHE_DIR"):
        return Path(explicit).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "vigil"
    return Path.home() / ".cache" / "vigil"


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
    debootstrap = find_system_tool("debootstrap")
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


def package_version(rootfs: Path, package: str) -> str | None:
    """The version dpkg installed of ``package`` in the rootfs, without starting anything."""
    try:
        status = (rootfs / "var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in stanza.splitlines()
            if ": " in line and not line[0].isspace()
        )
        if fields.get("Package") == package and "installed" in fields.get("Status", ""):
            return fields.get("Version")
    return None


def postgres_ids(rootfs: Path) -> tuple[int, int]:
    """UID and GID of the rootfs' ``postgres`` user, who owns and runs a server's data."""
    for line in (rootfs / "etc" / "passwd").read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if fields[0] == "postgres" and len(fields) >= 4:
            return int(fields[2]), int(fields[3])
    raise DevEnvError(f"cannot find user postgres in {rootfs}/etc/passwd: the rootfs is broken")


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
        *namespace_prefix(),
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
            + log_tail(log_path)
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
    (target / DATA_MOUNT.lstrip("/")).mkdir(mode=0o755, exist_ok=True)
    (target / "dev" / "shm").mkdir(mode=0o1777, exist_ok=True)
    stamp = {"suite": _SUITE, "packages": list(_PACKAGES), "built_at": time.time()}
    (target / _STAMP).write_text(json.dumps(stamp) + "\n", encoding="utf-8")
