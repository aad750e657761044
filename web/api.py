"""The Prometheus HTTP API (``/api/v1/...``) over a PromQL engine and a ``Storage``.

Every endpoint takes GET, and POST with an ``application/x-www-form-urlencoded``
body where Prometheus does. Answers use Prometheus' envelope
(``{"status":"success","data":...,"warnings":[...]}`` or
``{"status":"error","errorType":...,"error":...}``) and its status codes:
400 ``bad_data``, 422 ``execution``, 503 ``timeout``/``unavailable``, and its
validation messages for times, steps and resolutions.

Limits: the engine enforces max samples and its own timeout; a request's
``timeout`` parameter can only shorten it (``query timed out in expression
evaluation``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from fastapi import APIRouter, Request, Response

from shared.log import get_logger
from shared.promql.errors import BadData, PromQLError, QueryTimeout, StorageFailure
from shared.promql.result import Result
from shared.promql.storage import Storage
from web import render
from web.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    Params,
    match_sets,
    parse_duration_ms,
    parse_limit,
    time_param,
)

log = get_logger(__name__)

JSON = "application/json"
MAX_POINTS = 11_000
THREAD_RENDER_POINTS = 1_000_000
"""Results with more points than this are rendered in a worker thread. Rendering runs at
about 25 ns per point (``web.render``), so a smaller one stays on the loop: the thread
hand-off and GIL contention would cost more than the rendering itself."""
PROMETHEUS_VERSION = "2.53.0"
"""What ``buildinfo`` claims: Grafana enables features by the Prometheus version."""
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class QueryEngine(Protocol):
    """What the API needs of ``shared.promql.engine.Engine``."""

    async def instant(self, query: str, time_ms: int) -> Result: ...

    async def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Result: ...


@dataclass
class ApiState:
    """What the handlers read; ``App`` swaps the engine on reload."""

    storage: Storage | None
    engine: QueryEngine | None
    flags: dict[str, str] = field(default_factory=dict)
    start_time: float = field(default_factory=time.time)
    reload_ok: Callable[[], bool] = lambda: True
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)


def _json(body: bytes, status: int = 200) -> Response:
    return Response(content=body, status_code=status, media_type=JSON)


def error_response(exc: PromQLError) -> Response:
    return _json(render.error(exc.error_type, str(exc)), exc.http_status)


Handler = Callable[[Params], Awaitable[bytes]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            body = await request.body() if request.method == "POST" else b""
            params = Params.parse(request.url.query, body, request.headers.get("content-type", ""))
            return _json(await handler(params))
        except PromQLError as exc:
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the server
            log.error("cannot answer API request", path=request.url.path, error=repr(exc))
            return _json(render.error("internal", f"internal error: {exc}"), 500)

    return endpoint


def build_router(state: ApiState) -> APIRouter:  # noqa: PLR0915 - one closure per endpoint
    router = APIRouter()

    def engine() -> QueryEngine:
        if state.engine is None:
            raise StorageFailure("cannot run query: the query engine is not available")
        return state.engine

    def storage() -> Storage:
        if state.storage is None:
            raise StorageFailure("cannot read series: the storage is not available")
        return state.storage

    def query_text(params: Params) -> str:
        text = params.get("query") or ""
        if not text.strip():
            raise BadData(
                'invalid parameter "query": 1:1: parse error: no expression found in input'
            )
        return text

    async def run(params: Params, evaluate: Callable[[], Awaitable[Result]]) -> bytes:
        text = params.get("timeout")
        timeout_ms = parse_duration_ms("timeout", text) if text else None
        try:
            async with asyncio.timeout(None if timeout_ms is None else max(timeout_ms, 0) / 1000):
                result = await evaluate()
        except TimeoutError:
            raise QueryTimeout("query timed out in expression evaluation") from None
        points = sum(len(s.values) for s in result.matrix) + len(result.vector)
        if points > THREAD_RENDER_POINTS:
            # Tens of milliseconds of string building for a huge matrix: off the loop,
            # so that health checks and small queries keep being answered meanwhile.
            data = await asyncio.to_thread(render.render_result, result)
        else:
            data = render.render_result(result)
        return render.success(data, result.warnings or None)

    async def query(params: Params) -> bytes:
        text = query_text(params)
        t = time_param(params, "time", state.clock_ms())
        eng = engine()
        return await run(params, lambda: eng.instant(text, t))

    async def query_range(params: Params) -> bytes:
        start_text, end_text = params.get("start"), params.get("end")
        if not start_text:
            raise BadData('invalid parameter "start": cannot parse "" to a valid timestamp')
        start = time_param(params, "start", 0)
        if not end_text:
            raise BadData('invalid parameter "end": cannot parse "" to a valid timestamp')
        end = time_param(params, "end", 0)
        if end < start:
            raise BadData("end timestamp must not be before start time")
        step = parse_duration_ms("step", params.get("step") or "")
        if step <= 0:
            raise BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
            )
        if (end - start) // step > MAX_POINTS:
            raise BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
            )
        text = query_text(params)
        eng = engine()
        return await run(params, lambda: eng.range(text, start, end, step))

    async def series(params: Params) -> bytes:
        matches = params.all("match[]")
        if not matches:
            raise BadData("no match[] parameter provided")
        sets = match_sets(params)
        start = time_param(params, "start", MIN_TIME_MS)
        end = time_param(params, "end", MAX_TIME_MS)
        limit = parse_limit(params)
        found = await storage().series(sets, start, end)
        warnings = None
        if limit is not None and len(found) > limit:
            found, warnings = found[:limit], ["results truncated due to limit"]
        return render.success_json(found, warnings)

    async def labels(params: Params) -> bytes:
        sets = match_sets(params)
        start = time_param(params, "start", MIN_TIME_MS)
        end = time_param(params, "end", MAX_TIME_MS)
        limit = parse_limit(params)
        names = await storage().label_names(sets, start, end)
        warnings = None
        if limit is not None and len(names) > limit:
            names, warnings = names[:limit], ["results truncated due to limit"]
        return render.success_json(names, warnings)

    def label_values(name: str) -> Handler:
        async def handler(params: Params) -> bytes:
            if not _LABEL_NAME.fullmatch(name):
                raise BadData(f'invalid label name: "{name}"')
            sets = match_sets(params)
            start = time_param(params, "start", MIN_TIME_MS)
            end = time_param(params, "end", MAX_TIME_MS)
            limit = parse_limit(params)
            values = await storage().label_values(name, sets, start, end)
            warnings = None
            if limit is not None and len(values) > limit:
                values, warnings = values[:limit], ["results truncated due to limit"]
            return render.success_json(values, warnings)

        return handler

    async def metadata(params: Params) -> bytes:
        limit = _int_param(params, "limit")
        per_metric = _int_param(params, "limit_per_metric")
        metric = params.get("metric") or None
        found = await storage().metadata(metric, None)
        if per_metric is not None and per_metric > 0:
            found = {k: v[:per_metric] for k, v in found.items()}
        if limit is not None and limit >= 0:
            found = dict(list(found.items())[:limit])
        return render.success_json(found)

    async def exemplars(params: Params) -> bytes:
        query_text(params)
        start = time_param(params, "start", MIN_TIME_MS)
        end = time_param(params, "end", MAX_TIME_MS)
        if end < start:
            raise BadData("end timestamp must not be before start time")
        return render.success_json([])

    async def buildinfo(_params: Params) -> bytes:
        return render.success_json(
            {
                "version": PROMETHEUS_VERSION,
                "revision": "vigil",
                "branch": "vigil",
                "buildUser": "vigil",
                "buildDate": "",
                "goVersion": "python3.11",
            }
        )

    async def runtimeinfo(_params: Params) -> bytes:
        return render.success_json(
            {
                "startTime": render_time(state.start_time),
                "CWD": "/",
                "reloadConfigSuccess": state.reload_ok(),
                "lastConfigTime": render_time(state.start_time),
                "corruptionCount": 0,
                "goroutineCount": 0,
                "GOMAXPROCS": 1,
                "GOMEMLIMIT": 0,
                "GOGC": "",
                "GODEBUG": "",
                "storageRetention": "",
            }
        )

    async def flags(_params: Params) -> bytes:
        return render.success_json(state.flags)

    routes: list[tuple[str, Handler, list[str]]] = [
        ("/api/v1/query", query, ["GET", "POST"]),
        ("/api/v1/query_range", query_range, ["GET", "POST"]),
        ("/api/v1/series", series, ["GET", "POST"]),
        ("/api/v1/labels", labels, ["GET", "POST"]),
        ("/api/v1/metadata", metadata, ["GET"]),
        ("/api/v1/query_exemplars", exemplars, ["GET", "POST"]),
        ("/api/v1/status/buildinfo", buildinfo, ["GET"]),
        ("/api/v1/status/runtimeinfo", runtimeinfo, ["GET"]),
        ("/api/v1/status/flags", flags, ["GET"]),
    ]
    for path, handler, methods in routes:
        router.add_api_route(path, _endpoint(handler), methods=methods, name=path)

    async def values_endpoint(request: Request) -> Response:
        return await _endpoint(label_values(request.path_params["name"]))(request)

    router.add_api_route(
        "/api/v1/label/{name}/values", values_endpoint, methods=["GET"], name="label_values"
    )
    return router


def _int_param(params: Params, name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise BadData(f'invalid parameter "{name}": cannot parse "{text}"') from None


def render_time(seconds: float) -> str:
    """RFC 3339 with a Z, as Go's ``time.Time`` marshals."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
