"""Series identity: the canonical label set of a series and its stable 128-bit hash.

A series is its metric name and its labels, where the ``host`` label is
always the host of the NATS subject the batch came on (a host speaks only
for itself: a ``host`` label inside the batch is overridden). The hash is
BLAKE2b-128 over the name and the labels sorted by name, each part followed
by 0xFF (a byte UTF-8 never contains, so no two label sets share an
encoding). It is stable across processes, replicas and versions: the
``series.hash`` column relies on it, so changing it is a migration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import blake2b

HOST_LABEL = "host"
_SEP = b"\xff"


def canonical_labels(host: str, labels: Mapping[str, str]) -> dict[str, str]:
    """``labels`` with ``host`` set to the subject's host, sorted by label name."""
    merged = dict(labels)
    merged[HOST_LABEL] = host
    return {k: merged[k] for k in sorted(merged)}


def series_hash(metric: str, labels: Mapping[str, str]) -> bytes:
    """16-byte BLAKE2b of the metric name and ``labels`` in label-name order."""
    h = blake2b(digest_size=16)
    h.update(metric.encode())
    h.update(_SEP)
    for name in sorted(labels):
        h.update(name.encode())
        h.update(_SEP)
        h.update(labels[name].encode())
        h.update(_SEP)
    return h.digest()


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """A series as the ``series`` table stores it: name, canonical labels, hash."""

    metric: str
    labels: dict[str, str]
    hash: bytes

    @classmethod
    def of(cls, host: str, metric: str, labels: Mapping[str, str]) -> SeriesKey:
        canonical = canonical_labels(host, labels)
        return cls(metric, canonical, series_hash(metric, canonical))

    def labels_json(self) -> str:
        return json.dumps(self.labels, separators=(",", ":"), ensure_ascii=False)
