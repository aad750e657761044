"""Named fault points, armed from the environment, for deterministic crash tests.

A service marks the exact steps where a crash matters::

    fault_point("ingest.after_copy_before_ack")

and a test starts that service with ``VIGIL_FAULTS`` naming the points to arm,
comma-separated, each optionally with an action and a count::

    VIGIL_FAULTS="ingest.after_copy_before_ack=crash"        # exit at once (os._exit(77))
    VIGIL_FAULTS="ingest.after_copy_before_ack=crash@3"      # on the 3rd time it is reached
    VIGIL_FAULTS="agent.before_publish=hang"                 # block forever (a stuck process)
    VIGIL_FAULTS="notifier.after_send_before_log=raise"      # raise FaultInjected

An unarmed point costs one dict lookup. ``os._exit`` skips every cleanup on
purpose: that is what a crash looks like to the rest of the system.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

CRASH_EXIT_CODE = 77
ENV = "VIGIL_FAULTS"


class FaultInjected(Exception):
    """Raised at a point armed with ``raise``."""


@dataclass(slots=True)
class _Armed:
    action: str
    at: int
    hits: int = 0


def parse_faults(spec: str) -> dict[str, _Armed]:
    """Parse a ``VIGIL_FAULTS`` value; raise ValueError naming a bad entry."""
    armed: dict[str, _Armed] = {}
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, _, rest = entry.partition("=")
        action, _, count = (rest or "crash").partition("@")
        if action not in {"crash", "hang", "raise"}:
            raise ValueError(
                f"cannot parse {ENV} entry {entry!r}: action must be crash, hang or raise"
            )
        if count and not count.isdigit():
            raise ValueError(f"cannot parse {ENV} entry {entry!r}: count after @ must be a number")
        armed[name.strip()] = _Armed(action, int(count) if count else 1)
    return armed


_ARMED = parse_faults(os.environ.get(ENV, ""))
_LOCK = threading.Lock()


def fault_point(name: str) -> None:
    """Crash, hang or raise here if the environment armed ``name``; else nothing."""
    armed = _ARMED.get(name)
    if armed is None:
        return
    with _LOCK:
        armed.hits += 1
        fire = armed.hits == armed.at
    if not fire:
        return
    sys.stderr.write(f"vigil: fault point {name} fired ({armed.action})\n")
    sys.stderr.flush()
    if armed.action == "crash":
        os._exit(CRASH_EXIT_CODE)
    if armed.action == "hang":
        while True:
            time.sleep(3600)
    raise FaultInjected(name)


def arm(spec: str) -> None:
    """Arm points in this process (tests of in-process code); same syntax as the variable."""
    _ARMED.clear()
    _ARMED.update(parse_faults(spec))
