"""node_exporter's ``meminfo`` collector: every field of /proc/meminfo as ``node_memory_*``.

``MemTotal:  16384 kB`` becomes ``node_memory_MemTotal_bytes 16777216``;
fields without a unit (``HugePages_Total``) keep their name without
``_bytes``; ``Active(anon)`` becomes ``Active_anon``. Help texts are
node_exporter's ("Memory information field MemTotal_bytes.").
"""

from __future__ import annotations

from agent.collectors.base import Sample


class MeminfoNames:
    """(metric name, help) per /proc/meminfo key and unit, computed once per key."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[tuple[str, bool], tuple[str, str]] = {}

    def get(self, key: str, in_kb: bool) -> tuple[str, str]:
        hit = self._cache.get((key, in_kb))
        if hit is None:
            field = key.replace("(", "_").replace(")", "")
            if in_kb:
                field += "_bytes"
            hit = (f"node_memory_{field}", f"Memory information field {field}.")
            # Bounded: the kernel's field list, a few dozen keys.
            self._cache[(key, in_kb)] = hit
        return hit


def meminfo_samples(text: str, out: list[Sample], names: MeminfoNames) -> None:
    """One gauge per /proc/meminfo line; kB values are converted to bytes."""
    no_labels: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        in_kb = len(parts) > 1 and parts[1] == "kB"
        value = float(parts[0])
        if in_kb:
            value *= 1024
        name, help_ = names.get(key, in_kb)
        out.append(Sample(name, no_labels, value, "gauge", help_, "bytes" if in_kb else None))
