"""The notifier's view of alerts: the latest state of each fingerprint.

An alert is resolved at ``now`` when its event says ``resolved`` or its
``endsAt`` has passed (a lost resolve expires by itself: the alerter sends
``endsAt`` ahead and re-sends while the alert fires). A new event for a
known fingerprint whose period overlaps the stored one (Alertmanager's test in
``provider/mem``) is merged as ``Alert.Merge`` does: the earliest ``startsAt``
is kept, and the later ``endsAt`` while the new event fires (or when both are
resolved); otherwise the new event replaces the stored one. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from shared.wire import AlertEvent


def is_resolved(alert: AlertEvent, now: datetime) -> bool:
    return alert.status == "resolved" or alert.ends_at <= now


def merge(old: AlertEvent, new: AlertEvent, now: datetime) -> AlertEvent:
    """The stored alert after ``new`` (the younger event) arrives."""
    overlaps = (old.starts_at < new.ends_at < old.ends_at) or (
        old.starts_at < new.starts_at < old.ends_at
    )
    if not overlaps:
        return new
    update: dict[str, object] = {}
    if old.starts_at < new.starts_at:
        update["starts_at"] = old.starts_at
    if is_resolved(new, now):
        if is_resolved(old, now) and old.ends_at > new.ends_at:
            update["ends_at"] = old.ends_at
    elif old.ends_at > new.ends_at:
        update["ends_at"] = old.ends_at
    return new.model_copy(update=update) if update else new


class AlertStore:
    """Every alert the notifier knows, by fingerprint, each with a version number.

    The version grows with each ``put``; a group deletes a resolved alert after
    notifying it only if its version did not change meanwhile.
    """

    def __init__(self) -> None:
        self._alerts: dict[str, tuple[AlertEvent, int]] = {}
        self._version = 0

    def put(self, alert: AlertEvent, now: datetime) -> tuple[AlertEvent, int]:
        old = self._alerts.get(alert.fingerprint)
        merged = merge(old[0], alert, now) if old is not None else alert
        self._version += 1
        self._alerts[alert.fingerprint] = (merged, self._version)
        return merged, self._version

    def get(self, fp: str) -> AlertEvent | None:
        entry = self._alerts.get(fp)
        return entry[0] if entry else None

    def __iter__(self) -> Iterator[AlertEvent]:
        return iter([a for a, _ in self._alerts.values()])

    def __len__(self) -> int:
        return len(self._alerts)

    def gc(self, now: datetime, keep: timedelta) -> list[str]:
        """Forget alerts resolved for longer than ``keep``; their fingerprints."""
        gone = [
            fp
            for fp, (a, _) in self._alerts.items()
            if is_resolved(a, now) and min(a.ends_at, now) + keep <= now
        ]
        for fp in gone:
            del self._alerts[fp]
        return gone
