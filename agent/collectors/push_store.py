"""Pushed metric groups as a pure state machine: pushes in, samples out, clock passed in.

The Pushgateway's model: a *group* is identified by its grouping key (``job``
plus optional labels from the URL) and holds metric families.

- ``put`` replaces the whole group; ``post`` replaces only the families
  named in the push and keeps the group's others; ``delete`` removes the
  group.
- The grouping labels are set on every sample of the group, replacing a
  pushed label of the same name.
- A push is all or nothing: it is rejected (``PushRejected``, nothing
  stored) when a sample carries a timestamp (the Pushgateway rejects those
  too: a pushed value is "now" at every collection), a series appears twice,
  a family's type differs from the same family's type in another group, or
  the store would hold more than ``max_series`` series.
- **Expiry**, the Pushgateway's missing TTL: a group not pushed to for
  ``ttl`` seconds is dropped (``ttl`` 0 keeps groups forever, as the
  Pushgateway does). Each group also yields ``push_time_seconds`` (the Unix
  time of its last successful push, the Pushgateway's name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from agent.collectors.base import Sample
from agent.collectors.exec_formats import Family
from shared.wire import MetricType

GroupKey = tuple[tuple[str, str], ...]
"""The grouping labels of a group, sorted: its identity."""

_PUSH_TIME_HELP: Final = "Last Unix time when this group was changed in the push endpoint."


@dataclass(slots=True)
class SavedFamily:
    name: str
    type: MetricType
    help: str | None
    samples: list[tuple[str, dict[str, str], float]]


@dataclass(slots=True)
class SavedGroup:
    labels: dict[str, str]
    pushed_unix: float
    families: list[SavedFamily]


class PushRejected(ValueError):
    """A push that is not stored; the message says why (sent back with status 400)."""


@dataclass(slots=True)
class _Group:
    labels: dict[str, str]
    families: dict[str, Family] = field(default_factory=dict)
    pushed: float = 0.0  # the caller's monotonic clock
    pushed_unix: float = 0.0


def group_key(labels: Mapping[str, str]) -> GroupKey:
    return tuple(sorted(labels.items()))


class PushStore:
    """The groups of one push endpoint; see the module docstring."""

    def __init__(self, *, ttl: float, max_series: int) -> None:
        self.ttl = ttl
        self.max_series = max_series
        self._groups: dict[GroupKey, _Group] = {}

    def __len__(self) -> int:
        return len(self._groups)

    @property
    def series(self) -> int:
        return sum(_count(g.families) for g in self._groups.values())

    def put(
        self, labels: Mapping[str, str], families: list[Family], now: float, unix: float
    ) -> None:
        """Replace the group of ``labels`` with ``families``."""
        self._store(labels, families, now, unix, replace_all=True)

    def post(
        self, labels: Mapping[str, str], families: list[Family], now: float, unix: float
    ) -> None:
        """Replace, in the group of ``labels``, the families named in ``families``."""
        self._store(labels, families, now, unix, replace_all=False)

    def delete(self, labels: Mapping[str, str]) -> bool:
        """Remove the group of ``labels``; whether it existed."""
        return self._groups.pop(group_key(labels), None) is not None

    def expire(self, now: float) -> None:
        if self.ttl <= 0:
            return
        cutoff = now - self.ttl
        for key in [k for k, g in self._groups.items() if g.pushed < cutoff]:
            del self._groups[key]

    def samples(self, now: float) -> list[Sample]:
        """Expire, then every sample of every group, plus ``push_time_seconds`` per group."""
        self.expire(now)
        out: list[Sample] = []
        for group in self._groups.values():
            for fam in group.families.values():
                out += fam.samples
            out.append(
                Sample(
                    "push_time_seconds", group.labels, group.pushed_unix, "gauge", _PUSH_TIME_HELP
                )
            )
        return out

    def snapshot(self) -> list[SavedGroup]:
        """Every group as plain data (for ``agent.collectors.push_persist``); see ``restore``."""
        return [
            SavedGroup(
                dict(g.labels),
                g.pushed_unix,
                [
                    SavedFamily(
                        f.name,
                        f.type,
                        f.help,
                        [(x.name, dict(x.labels), x.value) for x in f.samples],
                    )
                    for f in g.families.values()
                ],
            )
            for g in self._groups.values()
        ]

    def restore(self, groups: list[SavedGroup], now: float, unix: float) -> None:
        """Replace the store by ``groups``; their age is kept (``now - (unix - pushed_unix)``).

        Groups older than ``ttl`` are dropped; past ``max_series`` the rest is dropped.
        """
        self._groups = {}
        total = 0
        for saved in groups:
            fams = {
                f.name: Family(
                    f.name,
                    f.type,
                    f.help,
                    [Sample(n, lb, v, f.type, f.help) for n, lb, v in f.samples],
                )
                for f in saved.families
            }
            total += _count(fams)
            if total > self.max_series:
                break
            pushed = now - max(0.0, unix - saved.pushed_unix)
            self._groups[group_key(saved.labels)] = _Group(
                dict(saved.labels), fams, pushed, saved.pushed_unix
            )
        self.expire(now)

    def _store(
        self,
        labels: Mapping[str, str],
        families: list[Family],
        now: float,
        unix: float,
        *,
        replace_all: bool,
    ) -> None:
        self.expire(now)
        key = group_key(labels)
        incoming = _relabel(families, dict(labels))
        self._check_types(key, incoming)
        old = self._groups.get(key)
        merged = {} if replace_all or old is None else dict(old.families)
        merged.update(incoming)
        total = self.series - (_count(old.families) if old else 0) + _count(merged)
        if total > self.max_series:
            raise PushRejected(
                f"cannot store push: the endpoint would hold {total} series, more than "
                f"max_series ({self.max_series})"
            )
        self._groups[key] = _Group(dict(labels), merged, now, unix)

    def _check_types(self, key: GroupKey, incoming: dict[str, Family]) -> None:
        for other_key, group in self._groups.items():
            if other_key == key:
                continue
            for name, fam in incoming.items():
                theirs = group.families.get(name)
                if theirs is not None and theirs.type != fam.type:
                    raise PushRejected(
                        f"cannot store push: metric {name} is a {fam.type} here but a "
                        f"{theirs.type} in group {dict(other_key)}"
                    )


def _relabel(families: list[Family], grouping: dict[str, str]) -> dict[str, Family]:
    """Families by name with the grouping labels set; ``PushRejected`` on timestamps, duplicates."""
    out: dict[str, Family] = {}
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    for fam in families:
        mine = out.get(fam.name)
        if mine is None:
            mine = out[fam.name] = Family(fam.name, fam.type, fam.help)
        elif mine.type != fam.type:
            raise PushRejected(f"cannot store push: metric {fam.name} is declared twice")
        for s in fam.samples:
            if s.ts_ms is not None:
                raise PushRejected(
                    f"cannot store push: pushed metrics must not have timestamps ({s.name})"
                )
            labels = {**s.labels, **grouping}
            ident = (s.name, frozenset(labels.items()))
            if ident in seen:
                raise PushRejected(
                    f"cannot store push: series {s.name}{labels} appears more than once"
                )
            seen.add(ident)
            mine.samples.append(Sample(s.name, labels, s.value, mine.type, mine.help))
    return out


def _count(families: Mapping[str, Family]) -> int:
    return sum(len(f.samples) for f in families.values())
