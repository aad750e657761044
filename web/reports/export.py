"""The SLA report as the JSON API's ``data`` and as CSV, from the same rows.

Both render :func:`web.reports.sla.summary_rows` and ``downtime_rows``; the
CSV writes each number with ``repr`` (the shortest text that reads back to
the same float), so a CSV cell parses to exactly the JSON's number. Empty
cells are JSON's ``null``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from web.reports.sla import SlaReport, downtime_rows, finite, series_key, summary_rows

SUMMARY_COLUMNS = (
    "target",
    "labels",
    "period",
    "start",
    "end",
    "source",
    "availability",
    "objective",
    "met",
    "up_seconds",
    "down_seconds",
    "no_data_seconds",
    "unmonitored_seconds",
    "budget_seconds",
    "budget_left_seconds",
    "budget_left",
    "downtime_intervals",
)
DOWNTIME_COLUMNS = (
    "target",
    "labels",
    "period",
    "start",
    "end",
    "duration_seconds",
    "down_seconds",
    "reason",
)


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: finite(v) if isinstance(v, float) else v for k, v in row.items()}


def report_json(report: SlaReport) -> dict[str, Any]:
    """``{"objective", ..., "periods", "targets": [{"key", "labels", "name", "periods": [row],
    "downtime": [row]}]}``: each target's rows without the repeated target columns;
    ``key`` is :func:`web.reports.sla.series_key`, what the UI keeps in its URL."""
    targets: list[dict[str, Any]] = [
        {
            "key": series_key(t.series),
            "name": "",
            "metric": t.series.metric,
            "labels": t.series.labels,
            "periods": [],
            "downtime": [],
        }
        for t in report.targets
    ]
    for row in summary_rows(report):
        target = targets[row.pop("target_index")]
        target["name"] = row.pop("target")
        target["periods"].append(_clean(row))
    for row in downtime_rows(report):
        target = targets[row.pop("target_index")]
        row.pop("target")
        target["downtime"].append(_clean(row))
    return {
        "objective": report.objective,
        "max_gap_seconds": report.max_gap_ms / 1000,
        "gaps": "down" if report.gaps_down else "ignore",
        "periods": [
            {"name": p.name, "start": p.start_ms / 1000, "end": p.end_ms / 1000}
            for p in report.periods
        ],
        "targets": targets,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _labels(report: SlaReport, index: int) -> str:
    labels = report.targets[index].series.labels
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def report_csv(report: SlaReport, rows: str = "summary") -> str:
    """``rows`` is ``summary`` (one line per target and period) or ``downtime``."""
    columns, data = (
        (DOWNTIME_COLUMNS, downtime_rows(report))
        if rows == "downtime"
        else (SUMMARY_COLUMNS, summary_rows(report))
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for raw in data:
        row = _clean(raw)
        row["labels"] = _labels(report, row["target_index"])
        writer.writerow([_cell(row[c]) for c in columns])
    return out.getvalue()
