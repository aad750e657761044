"""HTTP endpoints of alerting on the web service's port: state from NATS KV, history from the DB.

- ``GET /api/v1/rules`` (``type=alert|record``, ``rule_name[]``, ``rule_group[]``,
  ``file[]``), ``GET /api/v1/alerts``, ``GET /api/v1/targets`` (``state``,
  ``scrapePool``): Prometheus' shapes, from the KV buckets ``alert_state`` (alert
  states, and the rules' status documents under ``rules.*``) and ``agents``
  (``web.alerting_state``). The rules are those the alerter published (it writes
  every group at start, health ``unknown`` until evaluated): no alerter, no rules.
- ``GET/POST /api/v2/silences``, ``GET/DELETE /api/v2/silence/{id}``:
  Alertmanager API v2, through the notifier's ``SilenceStore`` (KV ``silences``
  with compare-and-set, events on the silences stream), so a silence made here
  is the one the notifier applies. Errors are JSON strings, as Alertmanager's.
- ``GET /api/vigil/alerts/history`` (``start``, ``end``, ``match[]``,
  ``state=firing|resolved|expired``, ``limit``): ``web.alerting_history``.

Until NATS is reached (``web.bus``) the NATS endpoints answer 503 ``unavailable``;
without the database the history does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import nats.errors
import nats.js.errors
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from nats.js.kv import KeyValue
from pydantic import ValidationError

from shared import hosttoken
from shared.alertmanager.apierrors import ApiError, BadRequest
from shared.alertmanager.errors import MatcherError
from shared.alertmanager.filters import matches_filter, parse_filter
from shared.alertmanager.models import PostableSilence, gettable_silence
from shared.alertmanager.silence import state as silence_state
from shared.config.loader import LoadedConfig
from shared.log import get_logger
from shared.promql.errors import BadData, PromQLError, StorageFailure
from shared.wire import RULE_STATUS_PREFIX
from web import render
from web.alerting_history import STATES, HistoryQuery, Rows, alert_history
from web.alerting_state import active_alerts, go_json, rule_groups, targets
from web.bus import Buckets, BusUnavailable, WebBus
from web.params import Params, match_sets, parse_limit, time_param

log = get_logger(__name__)

JSON = "application/json"
MAX_BODY_BYTES = 1 << 20
SILENCES_READY_S = 5.0
"""How long a silences read waits for the KV watch's first pass after connecting."""
DEFAULT_HISTORY_S = 86_400
DEFAULT_HISTORY_LIMIT = 500
KV_ERRORS = (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError)


class GoJSON:
    """Data to be written as Go writes JSON (``alerting_state.go_json``), not ``json.dumps``."""

    def __init__(self, data: object) -> None:
        self.data = data


def _prom(data: object, status: int = 200) -> Response:
    if isinstance(data, GoJSON):
        body = render.success(go_json(data.data))
    else:
        body = render.success_json(data)
    return Response(body, status_code=status, media_type=JSON)


def _prom_error(kind: str, message: str, status: int) -> Response:
    return Response(render.error(kind, message), status_code=status, media_type=JSON)


async def _documents(kv: KeyValue) -> dict[str, dict[str, Any]]:
    """Every entry of a bucket, decoded JSON, by key (bad entries skipped)."""
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            continue
        if not entry.value:
            continue
        try:
            doc = json.loads(entry.value)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out[key] = doc
    return out


def _split(
    docs: dict[str, dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Alert-state documents by KV key, and the rules' status documents."""
    states = {k: d for k, d in docs.items() if not k.startswith(RULE_STATUS_PREFIX)}
    return states, [d for k, d in docs.items() if k.startswith(RULE_STATUS_PREFIX)]


def _group_key(kv_key: str, doc: dict[str, Any]) -> str:
    group = doc.get("group")
    if isinstance(group, str) and group:
        return group
    try:
        return hosttoken.decode(kv_key)
    except ValueError:
        return kv_key


def build_router(  # noqa: PLR0915 - one closure per endpoint
    bus: Callable[[], WebBus],
    loaded: Callable[[], LoadedConfig],
    database: Callable[[], Rows | None],
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> APIRouter:
    router = APIRouter()

    def buckets() -> Buckets:
        return bus().require()

    def prom_endpoint(
        handler: Callable[[Params], Awaitable[object]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                params = Params.parse(request.url.query, b"", "")
                return _prom(await handler(params))
            except BusUnavailable as exc:
                return _prom_error("unavailable", str(exc), 503)
            except PromQLError as exc:
                return _prom_error(exc.error_type, str(exc), exc.http_status)
            except KV_ERRORS as exc:
                return _prom_error("unavailable", f"cannot read NATS KV: {exc}", 503)

        return endpoint

    async def rules(params: Params) -> object:
        kind = params.get("type")
        if kind not in (None, "", "alert", "record"):
            raise BadData(f'invalid parameter "type": "{kind}" is not alert or record')
        states, statuses = _split(await _documents(buckets().alert_state))
        groups = rule_groups(
            statuses,
            {_group_key(k, d): d for k, d in states.items()},
            kind=kind or None,
        )
        names, group_names, file_names = (
            set(params.all("rule_name[]")),
            set(params.all("rule_group[]")),
            set(params.all("file[]")),
        )
        if group_names:
            groups = [g for g in groups if g["name"] in group_names]
        if file_names:
            groups = [g for g in groups if g["file"] in file_names]
        if names:
            groups = [{**g, "rules": [r for r in g["rules"] if r["name"] in names]} for g in groups]
            groups = [g for g in groups if g["rules"]]
        return GoJSON({"groups": groups})

    async def alerts(_params: Params) -> object:
        states, _ = _split(await _documents(buckets().alert_state))
        return {"alerts": active_alerts(states.values())}

    async def target_list(params: Params) -> object:
        wanted = params.get("state") or "any"
        if wanted not in ("active", "dropped", "any"):
            raise BadData(f'invalid parameter "state": "{wanted}" is not active, dropped or any')
        docs = await _documents(buckets().agents)
        settings = loaded().config.alerter
        active = targets(
            docs.values(),
            clock_ms(),
            up_within_ms=round((settings.up_timeout + settings.agents_write_interval) * 1000),
        )
        pool = params.get("scrapePool")
        if pool:
            active = [t for t in active if t["scrapePool"] == pool]
        # agents push: nothing is ever dropped by relabelling
        return {"activeTargets": active if wanted != "dropped" else [], "droppedTargets": []}

    async def history(params: Params) -> object:
        db = database()
        if db is None:
            raise StorageFailure("cannot read alert history: the database is not connected")
        now = clock_ms()
        end = time_param(params, "end", now)
        start = time_param(params, "start", end - DEFAULT_HISTORY_S * 1000)
        if start > end:
            raise BadData('invalid parameter "end": end timestamp must not be before start time')
        state = params.get("state") or None
        if state is not None and state not in STATES:
            raise BadData(f'invalid parameter "state": "{state}" is not one of {", ".join(STATES)}')
        q = HistoryQuery(
            start_ms=start,
            end_ms=end,
            now_ms=now,
            match=match_sets(params),
            state=state,
            limit=parse_limit(params) or DEFAULT_HISTORY_LIMIT,
        )
        try:
            return await alert_history(db, q)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageFailure(f"cannot read alert history: {exc}") from exc

    router.add_api_route("/api/v1/rules", prom_endpoint(rules), methods=["GET", "POST"])
    router.add_api_route("/api/v1/alerts", prom_endpoint(alerts), methods=["GET", "POST"])
    router.add_api_route("/api/v1/targets", prom_endpoint(target_list), methods=["GET"])
    router.add_api_route("/api/vigil/alerts/history", prom_endpoint(history), methods=["GET"])

    # ------------------------------------------------------------ silences (Alertmanager v2)

    def am_endpoint(
        handler: Callable[..., Awaitable[Response]],
    ) -> Callable[..., Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                b = buckets()
                if not b.silences.ready.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(SILENCES_READY_S):
                            await b.silences.ready.wait()
                return await handler(request, b.silences)
            except BusUnavailable as exc:
                return JSONResponse(str(exc), status_code=503)
            except ApiError as exc:
                if exc.status >= 500:
                    log.warning("cannot answer silences request", error=exc.message)
                return JSONResponse(exc.message, status_code=exc.status)
            except MatcherError as exc:
                return JSONResponse(str(exc), status_code=400)

        return endpoint

    def now() -> datetime:
        return datetime.fromtimestamp(clock_ms() / 1000, UTC)

    async def get_silences(request: Request, store: Any) -> Response:
        matchers = parse_filter(request.query_params.getlist("filter"))
        creators = request.query_params.getlist("creator")
        at = now()
        out = []
        for silence in store.all():
            if creators and silence.created_by not in creators:
                continue
            if matches_filter(matchers, {m.name: m.value for m in silence.matchers}):
                out.append(gettable_silence(silence, silence_state(silence, at)))
        return JSONResponse(out)

    async def post_silences(request: Request, store: Any) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"body too large: more than {MAX_BODY_BYTES} bytes")
        try:
            posted = PostableSilence.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise BadRequest(f"{where}: {first['msg']}") from exc
        return JSONResponse({"silenceID": await store.set(posted)})

    async def get_silence(request: Request, store: Any) -> Response:
        silence = store.get(request.path_params["silence_id"])
        return JSONResponse(gettable_silence(silence, silence_state(silence, now())))

    async def delete_silence(request: Request, store: Any) -> Response:
        await store.expire(request.path_params["silence_id"])
        return Response(status_code=200)

    v2 = "/api/v2"
    router.add_api_route(f"{v2}/silences", am_endpoint(get_silences), methods=["GET"])
    router.add_api_route(f"{v2}/silences", am_endpoint(post_silences), methods=["POST"])
    router.add_api_route(f"{v2}/silence/{{silence_id}}", am_endpoint(get_silence), methods=["GET"])
    router.add_api_route(
        f"{v2}/silence/{{silence_id}}", am_endpoint(delete_silence), methods=["DELETE"]
    )
    return router
