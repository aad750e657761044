"""HTTP endpoints of the reports, on the web service's port.

- ``GET /api/vigil/sla`` — ``match`` (a series selector, default
  ``probe_success``), ``range`` (``day,week,month,quarter`` or durations),
  ``start`` (adds a ``custom`` period), ``end`` (default and at most now), ``objective``
  (a fraction, or a percentage above 1; default ``visualization.sla_objective``),
  ``max_gap`` (default ``visualization.sla_max_gap``), ``gaps`` (``down`` or
  ``ignore``). Answers ``{"status": "success", "data": ...}`` (export.report_json).
- ``GET /api/vigil/sla.csv`` — the same parameters and ``rows`` (``summary``
  or ``downtime``): the same numbers as CSV.
- ``GET /api/vigil/capacity`` — ``lookback`` (default
  ``visualization.capacity_lookback``), ``kind`` (``filesystem``, ``memory``,
  comma-separated; default both), ``stale_after`` (default
  ``visualization.query_lookback_delta``: older newest samples are listed as
  ``stale``, not projected).

Errors use the Prometheus envelope: 400 ``bad_data`` for a bad parameter,
503 ``unavailable`` when the database cannot answer (or is not connected).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from shared.config.models import VisualizationConfig
from shared.log import get_logger
from shared.promql.errors import PromQLError
from web import render
from web.params import Params, parse_duration_ms, parse_selector, time_param
from web.reports.capacity import capacity_report, item_json
from web.reports.data import Database
from web.reports.errors import BadRequest, ReportError, ReportUnavailable
from web.reports.export import report_csv, report_json
from web.reports.periods import parse_periods
from web.reports.sla import SlaReport, sla_report

log = get_logger(__name__)

KINDS = frozenset({"filesystem", "memory"})


def _objective(params: Params, default: float) -> float:
    text = params.get("objective")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f'cannot parse "objective": "{text}" is not a number') from None
    if 1 < value < 100:
        value /= 100
    if not 0 < value < 1:
        raise BadRequest(
            f'cannot use "objective" {text}: it must lie between 0 and 1 (or 0 and 100 %), both excluded'
        )
    return value


def _duration(params: Params, name: str, default_s: float) -> int:
    text = params.get(name)
    ms = parse_duration_ms(name, text) if text else round(default_s * 1000)
    if ms <= 0:
        raise BadRequest(f'cannot use "{name}" {text}: it must be positive')
    return ms


def _choice(params: Params, name: str, allowed: tuple[str, ...]) -> str:
    value = params.get(name) or allowed[0]
    if value not in allowed:
        raise BadRequest(f'cannot use "{name}" {value}: expected one of {", ".join(allowed)}')
    return value


def build_router(
    database: Callable[[], Database | None],
    config: Callable[[], VisualizationConfig],
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> APIRouter:
    """``database`` and ``config`` are read per request (the pool opens at start, config reloads)."""
    router = APIRouter()

    def db() -> Database:
        found = database()
        if found is None:
            raise ReportUnavailable("cannot report: the database is not connected")
        return found

    async def answer(request: Request, make: Callable[[Params], Awaitable[Response]]) -> Response:
        try:
            params = Params.parse(request.url.query, b"", "")
            return await make(params)
        except (ReportError, PromQLError) as exc:
            return Response(
                render.error(exc.error_type, str(exc)),
                status_code=exc.http_status,
                media_type="application/json",
            )
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the server
            log.error("cannot answer report request", path=request.url.path, error=repr(exc))
            return Response(
                render.error("internal", f"internal error: {exc}"),
                status_code=500,
                media_type="application/json",
            )

    async def sla(params: Params) -> SlaReport:
        v = config()
        now = clock_ms()
        end = min(time_param(params, "end", now), now)  # the future has no data yet
        start_text = params.get("start")
        start = time_param(params, "start", 0) if start_text else None
        return await sla_report(
            db(),
            parse_selector(params.get("match") or "probe_success"),
            parse_periods(params.get("range"), end, start),
            objective=_objective(params, v.sla_objective),
            max_gap_ms=_duration(params, "max_gap", v.sla_max_gap),
            gaps_down=_choice(params, "gaps", ("down", "ignore")) == "down",
            now_ms=now,
        )

    def ok(data: Any) -> Response:
        body = json.dumps({"status": "success", "data": data}, allow_nan=False)
        return Response(body, media_type="application/json")

    @router.get("/api/vigil/sla")
    async def sla_json(request: Request) -> Response:
        async def make(params: Params) -> Response:
            return ok(report_json(await sla(params)))

        return await answer(request, make)

    @router.get("/api/vigil/sla.csv")
    async def sla_csv(request: Request) -> Response:
        async def make(params: Params) -> Response:
            rows = _choice(params, "rows", ("summary", "downtime"))
            text = report_csv(await sla(params), rows)
            return Response(
                text,
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="vigil-sla-{rows}.csv"'},
            )

        return await answer(request, make)

    @router.get("/api/vigil/capacity")
    async def capacity(request: Request) -> Response:
        async def make(params: Params) -> Response:
            lookback = _duration(params, "lookback", config().capacity_lookback)
            kinds = frozenset(k.strip() for k in (params.get("kind") or ",".join(KINDS)).split(","))
            if not kinds <= KINDS:
                raise BadRequest(
                    f'cannot use "kind" {params.get("kind")}: expected filesystem and/or memory'
                )
            stale_after = _duration(params, "stale_after", config().query_lookback_delta)
            now = clock_ms()
            report = await capacity_report(
                db(), lookback_ms=lookback, now_ms=now, kinds=kinds, stale_after_ms=stale_after
            )
            return ok(
                {
                    "now": now / 1000,
                    "lookback_seconds": lookback / 1000,
                    "stale_after_seconds": report.stale_after_ms / 1000,
                    "items": [item_json(i) for i in report.items],
                    "stale": [item_json(i) for i in report.stale],
                }
            )

        return await answer(request, make)

    return router
