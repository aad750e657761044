"""Alert history from the database, for the Alerts page's timeline.

Ingest writes every event of the ``ALERTS`` stream to ``alert_events`` (one
row per send: the first ``firing``, its periodic re-sends with ``endsAt`` ahead,
the ``resolved``). Here the rows of a time range become, per alert
(fingerprint) and firing (``startsAt``), one interval:

- ``start`` = ``startsAt``;
- a ``resolved`` event ends it at its ``endsAt`` (``state`` ``resolved``);
- otherwise the latest ``endsAt`` of its re-sends: in the future, the alert
  still fires (``end`` null, ``state`` ``firing``); in the past, it expired
  without a resolve reaching us (``state`` ``expired``, ended then).

``events`` are the transitions (``firing`` at a start, ``resolved`` or
``expired`` at an end) inside the range, newest first. Times are Unix seconds.
``match`` are matcher sets (any set may match, all matchers of a set must);
equality matchers narrow the SQL (GIN index on ``labels``), the rest are applied
here. ``limit`` caps the intervals (newest first).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.promql.memory import matches
from shared.promql.seriessql import ms_to_datetime
from shared.promql.storage import LabelMatcher

MAX_ROWS = 50_000
"""Rows read for one answer at most (re-sends included); the answer says when it was cut."""
STATES = ("firing", "resolved", "expired")


class Rows(Protocol):
    async def fetch(self, query: str, *args: Any) -> list[Any]:
        """Rows of ``query`` with ``$n`` bound to ``args``; raises the driver's errors."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    start_ms: int
    end_ms: int
    now_ms: int
    match: Sequence[Sequence[LabelMatcher]] = ()
    state: str | None = None
    limit: int = 500


_SQL = """
SELECT fingerprint, status, labels, annotations, starts_at, ends_at
FROM alert_events
WHERE starts_at <= $2 AND ends_at >= $1 AND ($3::jsonb IS NULL OR labels @> $3::jsonb)
ORDER BY starts_at, stream_seq
LIMIT $4
"""


def _labels(raw: Any) -> dict[str, str]:
    value = json.loads(raw) if isinstance(raw, str | bytes) else raw
    return {str(k): str(v) for k, v in (value or {}).items()}


def _equalities(ms: Sequence[LabelMatcher]) -> str | None:
    eq = {m.name: m.value for m in ms if m.op == "=" and m.value != "" and m.name != "__name__"}
    return json.dumps(eq) if eq else None


def _selected(labels: dict[str, str], match: Sequence[Sequence[LabelMatcher]]) -> bool:
    if not match:
        return True
    named = {**labels, "__name__": "ALERTS"}
    return any(all(matches(m, named) for m in ms) for ms in match)


async def alert_history(db: Rows, q: HistoryQuery) -> dict[str, Any]:
    """``{"alerts": [...], "events": [...], "truncated": bool}`` for ``q``."""
    # one SQL narrowing only when there is a single matcher set
    narrow = _equalities(q.match[0]) if len(q.match) == 1 else None
    rows = await db.fetch(
        _SQL, ms_to_datetime(q.start_ms), ms_to_datetime(q.end_ms), narrow, MAX_ROWS
    )
    firings: dict[tuple[str, float], dict[str, Any]] = {}
    for row in rows:
        labels = _labels(row["labels"])
        if not _selected(labels, q.match):
            continue
        start = row["starts_at"].timestamp()
        key = (row["fingerprint"], start)
        f = firings.get(key)
        if f is None:
            f = firings[key] = {
                "fingerprint": row["fingerprint"],
                "labels": labels,
                "annotations": _labels(row["annotations"]),
                "start": start,
                "last_end": 0.0,
                "resolved": None,
            }
        end = row["ends_at"].timestamp()
        if row["status"] == "resolved":
            f["resolved"] = end if f["resolved"] is None else min(f["resolved"], end)
        else:
            f["last_end"] = max(f["last_end"], end)
    intervals = []
    for f in firings.values():
        if f["resolved"] is not None:
            end, state = f["resolved"], "resolved"
        elif f["last_end"] * 1000 > q.now_ms:
            end, state = None, "firing"
        else:
            end, state = f["last_end"], "expired"
        if q.state is not None and state != q.state:
            continue
        intervals.append({**f, "end": end, "state": state})
    intervals.sort(key=lambda i: i["start"], reverse=True)
    cut = len(rows) >= MAX_ROWS or len(intervals) > q.limit
    intervals = intervals[: q.limit]
    return {
        "alerts": _per_alert(intervals),
        "events": _events(intervals, q),
        "truncated": cut,
    }


def _per_alert(intervals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    alerts: dict[str, dict[str, Any]] = {}
    for i in intervals:
        a = alerts.setdefault(
            i["fingerprint"],
            {
                "fingerprint": i["fingerprint"],
                "labels": i["labels"],
                "annotations": i["annotations"],
                "intervals": [],
            },
        )
        a["intervals"].append({"start": i["start"], "end": i["end"], "state": i["state"]})
    out = list(alerts.values())
    for a in out:
        a["intervals"].sort(key=lambda x: x["start"])
    out.sort(key=lambda a: (a["labels"].get("alertname", ""), sorted(a["labels"].items())))
    return out


def _events(intervals: list[dict[str, Any]], q: HistoryQuery) -> list[dict[str, Any]]:
    lo, hi = q.start_ms / 1000, q.end_ms / 1000
    events = []
    for i in intervals:
        base = {"fingerprint": i["fingerprint"], "labels": i["labels"]}
        if lo <= i["start"] <= hi:
            events.append({**base, "time": i["start"], "state": "firing"})
        if i["end"] is not None and lo <= i["end"] <= hi:
            events.append({**base, "time": i["end"], "state": i["state"]})
    events.sort(key=lambda e: e["time"], reverse=True)
    return events
