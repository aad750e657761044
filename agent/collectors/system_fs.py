"""node_exporter's ``filesystem`` collector: the mount table and one ``statvfs`` per mount.

Mounts come from ``/proc/1/mounts`` (the host's table even when the agent
runs in a container with the host's /proc), else ``/proc/mounts``. A mount
whose mount point or type matches the exclusion patterns is skipped; the
same (device, fstype, mountpoint) seen twice is reported once. Per mount:
``node_filesystem_device_error`` always, and when ``statvfs`` succeeds the
size, free, avail, files, files_free and readonly gauges, all labelled
``device``, ``fstype``, ``mountpoint`` as in node_exporter 1.5.

A ``statvfs`` on a dead network mount can block for minutes. The mount is
remembered while its call runs; if a later cycle (the scheduler abandoned
the blocked one) finds it still running, that mount is reported with
``device_error 1`` instead of being asked again, so one stuck mount holds
at most one thread, as node_exporter's "stuck mounts" do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Final

from agent.collectors.base import Sample

DEFAULT_MOUNT_POINTS_EXCLUDE: Final = (
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
"""node_exporter's default ``--collector.filesystem.mount-points-exclude`` (upstream, not Debian's)."""
DEFAULT_FS_TYPES_EXCLUDE: Final = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs"
    r"|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs"
    r"|squashfs|erofs|sysfs|tracefs)$"
)
"""node_exporter's default ``--collector.filesystem.fs-types-exclude``."""

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
_DEVICE_ERROR = (
    "node_filesystem_device_error",
    "Whether an error occurred while getting statistics for the given device.",
)
_SIZE = ("node_filesystem_size_bytes", "Filesystem size in bytes.")
_FREE = ("node_filesystem_free_bytes", "Filesystem free space in bytes.")
_AVAIL = ("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.")
_FILES = ("node_filesystem_files", "Filesystem total file nodes.")
_FILES_FREE = ("node_filesystem_files_free", "Filesystem total free file nodes.")
_READONLY = ("node_filesystem_readonly", "Filesystem read-only status.")
_LABEL_CACHE_MAX = 4096  # mounts come and go (containers): start over past this many

StatVFS = Callable[[str], os.statvfs_result]


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal (fstab(5)).
    if "\\" not in field:
        return field
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str, rootfs: str = "/") -> list[tuple[str, str, str, str]]:
    """(device, mountpoint, fstype, options) per line; mount points relative to ``rootfs``."""
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            if parts:
                raise ValueError(
                    f"cannot parse mount table line {line[:200]!r}: fewer than 4 fields"
                )
            continue
        mountpoint = _unescape(parts[1])
        if rootfs != "/":
            mountpoint = mountpoint.removeprefix(rootfs) or "/"
        mounts.append((parts[0], mountpoint, parts[2], parts[3]))
    return mounts


class Filesystems:
    """Turns a mount table into ``node_filesystem_*`` samples; one instance per collector."""

    def __init__(
        self,
        mount_points_exclude: re.Pattern[str],
        fs_types_exclude: re.Pattern[str],
        rootfs: str = "/",
        statvfs: StatVFS = os.statvfs,
    ) -> None:
        self._mp_exclude = mount_points_exclude
        self._type_exclude = fs_types_exclude
        self._rootfs = rootfs.rstrip("/") or "/"
        self._statvfs = statvfs
        self._running: set[str] = set()  # mount points whose statvfs has not returned yet
        self._labels: dict[tuple[str, str, str], dict[str, str]] = {}

    @property
    def stuck(self) -> frozenset[str]:
        """Mount points whose ``statvfs`` from an earlier call has not returned."""
        return frozenset(self._running)

    def samples(self, mounts_text: str, out: list[Sample]) -> None:
        seen: set[tuple[str, str, str]] = set()
        if len(self._labels) > _LABEL_CACHE_MAX:
            self._labels.clear()
        for device, mountpoint, fstype, options in parse_mounts(mounts_text, self._rootfs):
            if self._mp_exclude.search(mountpoint) or self._type_exclude.search(fstype):
                continue
            key = (device, fstype, mountpoint)
            if key in seen:
                continue
            seen.add(key)
            labels = self._labels.get(key)
            if labels is None:
                labels = {"device": device, "fstype": fstype, "mountpoint": mountpoint}
                self._labels[key] = labels
            st = self._stat(mountpoint)
            error = 0.0 if st is not None else 1.0
            out.append(Sample(_DEVICE_ERROR[0], labels, error, "gauge", _DEVICE_ERROR[1]))
            if st is None:
                continue
            bsize = st.f_bsize  # node_exporter multiplies by Bsize, not Frsize
            ro = 1.0 if "ro" in options.split(",") else 0.0
            out.append(
                Sample(_SIZE[0], labels, float(st.f_blocks * bsize), "gauge", _SIZE[1], "bytes")
            )
            out.append(
                Sample(_FREE[0], labels, float(st.f_bfree * bsize), "gauge", _FREE[1], "bytes")
            )
            out.append(
                Sample(_AVAIL[0], labels, float(st.f_bavail * bsize), "gauge", _AVAIL[1], "bytes")
            )
            out.append(Sample(_FILES[0], labels, float(st.f_files), "gauge", _FILES[1]))
            out.append(Sample(_FILES_FREE[0], labels, float(st.f_ffree), "gauge", _FILES_FREE[1]))
            out.append(Sample(_READONLY[0], labels, ro, "gauge", _READONLY[1]))

    def _stat(self, mountpoint: str) -> os.statvfs_result | None:
        if mountpoint in self._running:
            return None  # still blocked in an abandoned cycle: do not pile up threads
        path = mountpoint if self._rootfs == "/" else self._rootfs + mountpoint
        self._running.add(mountpoint)
        try:
            return self._statvfs(path)
        except OSError:
            return None
        finally:
            self._running.discard(mountpoint)
