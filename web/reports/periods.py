"""The periods an SLA report covers: rolling windows that end at the report's end.

``day``, ``week``, ``month`` and ``quarter`` are the last 1, 7, 30 and 90 days;
any Prometheus duration (``36h``, ``2w``) is a window of that length; a
``start`` parameter adds a ``custom`` period ``[start, end)``. Rolling windows
rather than calendar ones: an SLO's budget is spent and earned back
continuously, and every period then has the same length whenever it is asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.promql.errors import BadData
from web.params import parse_duration_ms
from web.reports.errors import BadRequest

DAY_MS = 86_400_000
NAMED_MS = {"day": DAY_MS, "week": 7 * DAY_MS, "month": 30 * DAY_MS, "quarter": 90 * DAY_MS}
DEFAULT_PERIODS = "day,week,month,quarter"
MAX_PERIODS = 8
MAX_SPAN_MS = 400 * DAY_MS


@dataclass(frozen=True, slots=True)
class Period:
    """A named half-open window ``[start_ms, end_ms)``."""

    name: str
    start_ms: int
    end_ms: int

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms


def parse_periods(text: str | None, end_ms: int, start_ms: int | None = None) -> list[Period]:
    """``range`` (comma-separated names or durations) and ``start`` as periods ending at ``end_ms``.

    Without ``range``: the four named periods, or only ``custom`` when ``start`` is given.
    """
    names = text if text else ("" if start_ms is not None else DEFAULT_PERIODS)
    out: list[Period] = []
    for raw in (n.strip() for n in names.split(",")):
        if not raw:
            continue
        if raw in NAMED_MS:
            span = NAMED_MS[raw]
        else:
            try:
                span = parse_duration_ms("range", raw)
            except BadData as exc:
                raise BadRequest(
                    f'cannot parse "range": "{raw}" is neither day, week, month, quarter nor a duration'
                ) from exc
        if not 0 < span <= MAX_SPAN_MS:
            raise BadRequest(f'cannot use "range" {raw}: a period must last from 1 ms to 400d')
        if all(p.name != raw for p in out):
            out.append(Period(raw, end_ms - span, end_ms))
    if start_ms is not None:
        if not 0 < end_ms - start_ms <= MAX_SPAN_MS:
            raise BadRequest('cannot use "start": it must lie before "end", at most 400d before')
        out.append(Period("custom", start_ms, end_ms))
    if not out:
        raise BadRequest('cannot report: "range" names no period')
    if len(out) > MAX_PERIODS:
        raise BadRequest(f'cannot report: "range" names {len(out)} periods, at most {MAX_PERIODS}')
    return out
