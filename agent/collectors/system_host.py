"""node_exporter's ``uname`` and ``time`` collectors."""

from __future__ import annotations

import os
import time

from agent.collectors.base import Sample

_UNAME = ("node_uname_info", "Labeled system information as provided by the uname system call.")
_TIME = ("node_time_seconds", "System time in seconds since epoch (1970).")
_TZ = ("node_time_zone_offset_seconds", "System time zone offset in seconds.")


def uname_labels(uname: os.uname_result, domainname: str) -> dict[str, str]:
    """node_exporter's ``node_uname_info`` labels; ``domainname`` is ``(none)`` when unset."""
    return {
        "sysname": uname.sysname,
        "release": uname.release,
        "version": uname.version,
        "machine": uname.machine,
        "nodename": uname.nodename,
        "domainname": domainname.strip() or "(none)",
    }


def uname_samples(labels: dict[str, str], out: list[Sample]) -> None:
    out.append(Sample(_UNAME[0], labels, 1.0, "gauge", _UNAME[1]))


def time_samples(out: list[Sample], now: float | None = None) -> None:
    """``node_time_seconds`` and ``node_time_zone_offset_seconds{time_zone}``."""
    if now is None:
        now = time.time()
    local = time.localtime(now)
    out.append(Sample(_TIME[0], {}, now, "gauge", _TIME[1], "seconds"))
    out.append(
        Sample(
            _TZ[0], {"time_zone": local.tm_zone}, float(local.tm_gmtoff), "gauge", _TZ[1], "seconds"
        )
    )
