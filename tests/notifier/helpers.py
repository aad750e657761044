"""Builders shared by the notifier's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from notifier.config import NotifierConfig, parse
from shared.wire import AlertEvent

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)  # a Monday


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def alert(
    start: float = 0.0,
    end: float | None = None,
    *,
    resolved: bool = False,
    annotations: dict[str, str] | None = None,
    **labels: str,
) -> AlertEvent:
    """An alert starting at T0+start, ending at T0+end (default: an hour later)."""
    return AlertEvent(
        labels=labels,
        annotations=annotations or {},
        starts_at=at(start),
        ends_at=at(end if end is not None else start + 3600),
        generator_url="http://vigil.example/graph",
        status="resolved" if resolved else "firing",
    )


def config(data: dict[str, Any]) -> NotifierConfig:
    return parse(data, base_dir=Path(), source="test")
