"""Aggregation groups and their timers, as a pure state machine (Alertmanager's dispatcher).

Events in: ``Dispatcher.process(alert, now)`` (an alert received, updated or
resolved), ``Dispatcher.tick(now)`` and ``Dispatcher.complete(flush, ok)``.
Actions out: the ``Flush``es ``tick`` returns. The clock is always passed in.

Timers, per group (route + its group labels):

- a new group flushes ``group_wait`` after it was created, or at once when an
  alert arrives, before the first flush, whose ``startsAt + group_wait`` has
  already passed (Alertmanager's rule: an old alert is not held back);
- after each flush the next one is due ``group_interval`` later; each flush
  carries every alert of the group, split into firing and resolved at the
  flush's instant (``endsAt`` passed counts as resolved);
- whether a flush is *sent* is the notification log's decision
  (``notifier.nflog.needs_update``), which applies ``repeat_interval``;
- a group has at most one flush in flight; a flush that comes due meanwhile
  waits for ``complete``; after a successful flush its resolved alerts are
  dropped from the group unless they changed since; an empty group is removed;
- ``look_again(flush, at)`` brings the next flush forward to ``at`` (another
  replica held the delivery lease until then: if it died, this one covers
  once the lease is over instead of a whole ``group_interval`` later).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from notifier.alerts import is_resolved
from notifier.route import Route, group_key
from shared.wire import AlertEvent


@dataclass(frozen=True, slots=True)
class Flush:
    """One group's alerts at one instant, to be sent to the route's receiver."""

    group_key: str
    route: Route
    group_labels: dict[str, str]
    firing: list[AlertEvent]
    resolved: list[AlertEvent]
    at: datetime
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def receiver(self) -> str:
        return self.route.opts.receiver

    @property
    def alerts(self) -> list[AlertEvent]:
        return [*self.firing, *self.resolved]


class AggregationGroup:
    def __init__(self, route: Route, labels: dict[str, str], now: datetime) -> None:
        self.route = route
        self.labels = labels
        self.key = group_key(route, labels)
        self.alerts: dict[str, tuple[AlertEvent, int]] = {}
        self.next_flush: datetime = now + timedelta(seconds=route.opts.group_wait)
        self.has_flushed = False
        self.in_flight: Flush | None = None

    def insert(self, alert: AlertEvent, version: int, now: datetime) -> None:
        self.alerts[alert.fingerprint] = (alert, version)
        wait = timedelta(seconds=self.route.opts.group_wait)
        if not self.has_flushed and alert.starts_at + wait < now:
            self.next_flush = min(self.next_flush, now)

    def due(self, now: datetime) -> bool:
        return self.in_flight is None and bool(self.alerts) and now >= self.next_flush

    def flush(self, now: datetime) -> Flush:
        self.next_flush = now + timedelta(seconds=self.route.opts.group_interval)
        self.has_flushed = True
        ordered = sorted(self.alerts.values(), key=lambda e: e[0].fingerprint)
        firing = [a for a, _ in ordered if not is_resolved(a, now)]
        resolved = [a for a, _ in ordered if is_resolved(a, now)]
        out = Flush(
            self.key,
            self.route,
            dict(self.labels),
            firing,
            resolved,
            now,
            {fp: v for fp, (_, v) in self.alerts.items()},
        )
        self.in_flight = out
        return out

    def look_again(self, at: datetime) -> None:
        self.next_flush = min(self.next_flush, at)

    def complete(self, flush: Flush, ok: bool) -> None:
        if self.in_flight is flush:
            self.in_flight = None
        if not ok:
            return
        for alert in flush.resolved:
            entry = self.alerts.get(alert.fingerprint)
            if entry is not None and entry[1] == flush.versions.get(alert.fingerprint):
                del self.alerts[alert.fingerprint]

    @property
    def empty(self) -> bool:
        return not self.alerts and self.in_flight is None


class Dispatcher:
    """Every aggregation group of one routing tree."""

    def __init__(self, root: Route) -> None:
        self.root = root
        self.groups: dict[tuple[str, str], AggregationGroup] = {}

    def process(self, alert: AlertEvent, version: int, now: datetime) -> list[AggregationGroup]:
        """Put an alert (its latest merged state) into every group its routes give it."""
        out = []
        for route in self.root.match(alert.labels):
            labels = route.opts.group_labels(alert.labels)
            gid = (route.id, group_key(route, labels))
            group = self.groups.get(gid)
            if group is None:
                group = self.groups[gid] = AggregationGroup(route, labels, now)
            group.insert(alert, version, now)
            out.append(group)
        return out

    def tick(self, now: datetime) -> list[Flush]:
        """The flushes due at ``now`` (each marks its group in flight)."""
        return [g.flush(now) for g in self.groups.values() if g.due(now)]

    def complete(self, flush: Flush, ok: bool) -> None:
        """A flush was handled (``ok``: every integration succeeded or decided not to send)."""
        gid = (flush.route.id, flush.group_key)
        group = self.groups.get(gid)
        if group is None:
            return
        group.complete(flush, ok)
        if group.empty:
            del self.groups[gid]

    def look_again(self, flush: Flush, at: datetime) -> None:
        """Flush ``flush``'s group again at ``at`` if that is sooner than planned."""
        group = self.groups.get((flush.route.id, flush.group_key))
        if group is not None:
            group.look_again(at)

    def next_deadline(self) -> datetime | None:
        """When the earliest flush is due (``None``: no group waits)."""
        times = [g.next_flush for g in self.groups.values() if g.alerts and g.in_flight is None]
        return min(times) if times else None
