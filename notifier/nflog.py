"""The notification log's rules: what was last sent per group and integration, and whether
a flush must be sent now (Alertmanager's ``DedupStage.needsUpdate``). Pure.

An ``Entry`` per (group key, receiver, integration type, index) records the
fingerprints of the firing and resolved alerts last notified and when. A flush
is sent when

- nothing was sent before and something fires;
- a firing alert was not in the last notification;
- everything resolved and the last notification had firing alerts (sent even
  with ``send_resolved: false``, so the log forgets the firing ones; the
  integration then drops the resolved alerts it would not show);
- ``send_resolved`` and an alert resolved that the last notification did not
  have as resolved;
- otherwise, when ``repeat_interval`` has passed since the last one.

Replicas share the log through KV (``notifier.nflogkv``): the entry also holds
a delivery *lease* (owner, until); a replica delivers only after winning the
lease by compare-and-set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Entry:
    firing: frozenset[str] = frozenset()
    resolved: frozenset[str] = frozenset()
    timestamp: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def leased_by_other(self, owner: str, now: datetime) -> bool:
        return (
            self.lease_owner is not None
            and self.lease_owner != owner
            and self.lease_until is not None
            and now < self.lease_until
        )

    def encode(self) -> bytes:
        return json.dumps(
            {
                "firing": sorted(self.firing),
                "resolved": sorted(self.resolved),
                "timestamp": self.timestamp.isoformat() if self.timestamp else None,
                "lease_owner": self.lease_owner,
                "lease_until": self.lease_until.isoformat() if self.lease_until else None,
                **({"extra": self.extra} if self.extra else {}),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        """Parse a stored entry; a damaged one reads as empty (sending again is the safe side)."""
        try:
            doc = json.loads(data)
            return cls(
                frozenset(doc.get("firing") or ()),
                frozenset(doc.get("resolved") or ()),
                _time(doc.get("timestamp")),
                doc.get("lease_owner"),
                _time(doc.get("lease_until")),
                dict(doc.get("extra") or {}),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()


def _time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def needs_update(
    entry: Entry | None,
    firing: set[str],
    resolved: set[str],
    *,
    send_resolved: bool,
    repeat_interval: float,
    now: datetime,
) -> bool:
    if entry is None or entry.timestamp is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.timestamp <= now - timedelta(seconds=repeat_interval)


def key(group_key: str, receiver: str, integration: str, index: int) -> str:
    """A KV-safe key for one group and integration (a hash: group keys hold any text)."""
    raw = "\x00".join((group_key, receiver, integration, str(index)))
    return hashlib.sha256(raw.encode()).hexdigest()
