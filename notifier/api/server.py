"""The notifier's HTTP server: Alertmanager API v2 plus the operations endpoints.

One FastAPI app on ``notifier.listen_address`` (port 0 picks one; ``.port``
says which), run by uvicorn inside the notifier's event loop without its
signal handlers (the service runner owns the signals). The handlers of
``shared.admin.AdminServer`` (``/metrics``, ``/healthz``, ``/readyz``,
``/-/reload``) are mounted unchanged.

Reads come from the notifier's own state (``NotifierView``: the alert store,
the dispatcher's groups, the routing tree, the configuration) and from the
silences watch; writes go to NATS only: alerts to the alerts stream (the
notifier's consumer then feeds them back in, as it does the alerter's),
silences to the KV bucket and the silences stream. So every replica answers
the same, and a POSTed alert shows in ``GET /api/v2/alerts`` once consumed
(milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import re
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import TypeAdapter, ValidationError

from notifier.alerts import AlertStore, is_resolved
from notifier.api import alerts as api_alerts
from notifier.api.original import original
from notifier.config import NotifierConfig
from notifier.group import Dispatcher
from notifier.route import Route
from shared.admin import AdminServer, Handler
from shared.alertmanager.apierrors import ApiError, BadRequest
from shared.alertmanager.filters import (
    matches_filter,
    parse_filter,
    parse_receiver,
    receivers_match,
)
from shared.alertmanager.matchers import LabelMatcher
from shared.alertmanager.models import (
    PostableAlert,
    PostableSilence,
    fmt_time,
    gettable_alert,
    gettable_silence,
)
from shared.alertmanager.silence import state
from shared.alertmanager.silences import SilenceStore
from shared.config.loader import LoadedConfig
from shared.httpsec.middleware import HttpSecurityMiddleware, warn_if_open
from shared.httpsec.tls import uvicorn_ssl_options
from shared.log import get_logger
from shared.wire import AlertEvent, AlertStatus, Names

log = get_logger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
_ALERTS = TypeAdapter(list[PostableAlert])
_SILENCE = TypeAdapter(PostableSilence)


class NotifierView(Protocol):
    """What the API reads from the notifier (the ``App``); every read is from the loop's thread.

    ``root``, ``dispatcher``, ``config`` and ``loaded`` are replaced on reload: read them
    per request. ``updated`` maps a fingerprint to when its last event arrived.
    """

    names: Names
    store: AlertStore
    root: Route
    dispatcher: Dispatcher
    config: NotifierConfig
    loaded: LoadedConfig
    updated: dict[str, datetime]

    def status_of(self, alert: AlertEvent, now: datetime) -> AlertStatus: ...


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return True
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequest(f"cannot parse {name}={raw!r}: not a boolean")


def _receivers(root: Route, labels: dict[str, str]) -> list[str]:
    return [r.opts.receiver for r in root.match(labels)]


def _version() -> str:
    try:
        return version("vigil")
    except PackageNotFoundError:
        return "0.0.0"


class ApiServer:
    def __init__(
        self,
        view: NotifierView,
        admin: AdminServer,
        *,
        host: str,
        port: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.view = view
        self.admin = admin
        self.host = host
        self.port = port
        self.clock = clock
        self.started_at = clock()
        self.silences = SilenceStore(view.names, clock)
        self._js: JetStreamContext | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self.app = self._build()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind and serve (the API answers 500 for NATS-backed calls until ``attach``)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=5,
            **uvicorn_ssl_options(self.view.loaded.config.notifier.tls),
        )
        warn_if_open("notifier", self.host, self.view.loaded.config.notifier)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server = server
        self._task = asyncio.create_task(server.main_loop())

    async def attach(self, js: JetStreamContext, silences: KeyValue) -> None:
        self._js = js
        await self.silences.start(js, silences)

    async def stop(self) -> None:
        await self.silences.stop()
        if self._server is not None:
            self._server.should_exit = True
            if self._task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            await self._server.shutdown(sockets=[self._sock] if self._sock else None)
            self._server = None

    # ------------------------------------------------------------------ routes

    def _build(self) -> FastAPI:
        app = FastAPI(title="Vigil notifier", docs_url=None, redoc_url=None, openapi_url=None)
        app.add_middleware(
            HttpSecurityMiddleware, settings=lambda: self.view.loaded.config.notifier
        )

        @app.exception_handler(ApiError)
        async def _api_error(_request: Request, exc: ApiError) -> Response:
            if exc.status >= 500:
                log.warning("cannot answer API request", error=exc.message)
            return JSONResponse(exc.message, status_code=exc.status)

        for (method, path), handler in self.admin.routes.items():
            app.add_api_route(path, _admin_endpoint(handler), methods=[method])

        v2 = "/api/v2"
        app.add_api_route(f"{v2}/status", self.get_status, methods=["GET"])
        app.add_api_route(f"{v2}/receivers", self.get_receivers, methods=["GET"])
        app.add_api_route(f"{v2}/alerts", self.get_alerts, methods=["GET"])
        app.add_api_route(f"{v2}/alerts", self.post_alerts, methods=["POST"])
        app.add_api_route(f"{v2}/alerts/groups", self.get_groups, methods=["GET"])
        app.add_api_route(f"{v2}/silences", self.get_silences, methods=["GET"])
        app.add_api_route(f"{v2}/silences", self.post_silences, methods=["POST"])
        app.add_api_route(f"{v2}/silence/{{silence_id}}", self.get_silence, methods=["GET"])
        app.add_api_route(f"{v2}/silence/{{silence_id}}", self.delete_silence, methods=["DELETE"])
        return app

    async def get_status(self) -> Response:
        try:
            text = await asyncio.to_thread(original, self.view.loaded)
        except (OSError, yaml.YAMLError) as exc:
            raise ApiError(f"cannot read the Alertmanager configuration: {exc}") from exc
        return JSONResponse(
            {
                "cluster": {"status": "disabled", "peers": []},
                "versionInfo": {
                    "version": _version(),
                    "revision": "",
                    "branch": "",
                    "buildUser": "",
                    "buildDate": "",
                    "goVersion": f"python{platform.python_version()}",
                },
                "config": {"original": text},
                "uptime": fmt_time(self.started_at),
            }
        )

    async def get_receivers(self) -> Response:
        return JSONResponse([{"name": r.name} for r in self.view.config.am.receivers])

    def _alert_filter(
        self, request: Request, *, unprocessed: bool = True
    ) -> Callable[[AlertEvent, list[str], AlertStatus], bool]:
        matchers = parse_filter(request.query_params.getlist("filter"))
        receiver = parse_receiver(request.query_params.get("receiver"))
        active = _flag(request, "active")
        silenced = _flag(request, "silenced")
        inhibited = _flag(request, "inhibited")
        show_unprocessed = _flag(request, "unprocessed") if unprocessed else True

        def keep(alert: AlertEvent, receivers: list[str], status: AlertStatus) -> bool:
            return (
                receivers_match(receivers, receiver)
                and matches_filter(matchers, alert.labels)
                and (active or status.state != "active")
                and (show_unprocessed or status.state != "unprocessed")
                and (silenced or not status.silenced_by)
                and (inhibited or not status.inhibited_by)
            )

        return keep

    def _gettable(self, alert: AlertEvent, receivers: list[str], status: AlertStatus) -> Any:
        updated = self.view.updated.get(alert.fingerprint, alert.starts_at)
        return gettable_alert(alert, status, receivers, updated)

    async def get_alerts(self, request: Request) -> Response:
        keep = self._alert_filter(request)
        now = self.clock()
        root = self.view.root
        out = []
        for alert in self.view.store:
            if is_resolved(alert, now):
                continue
            receivers = _receivers(root, alert.labels)
            status = self.view.status_of(alert, now)
            if keep(alert, receivers, status):
                out.append(self._gettable(alert, receivers, status))
        out.sort(key=lambda a: a["fingerprint"])
        return JSONResponse(out)

    async def get_groups(self, request: Request) -> Response:
        keep = self._alert_filter(request, unprocessed=False)
        now = self.clock()
        root = self.view.root
        out: list[dict[str, Any]] = []
        for group in list(self.view.dispatcher.groups.values()):
            alerts = []
            for alert, _version in sorted(group.alerts.values(), key=lambda e: e[0].fingerprint):
                if is_resolved(alert, now):
                    continue
                receivers = _receivers(root, alert.labels)
                status = self.view.status_of(alert, now)
                if keep(alert, [group.route.opts.receiver], status):
                    alerts.append(self._gettable(alert, receivers, status))
            if alerts:
                out.append(
                    {
                        "labels": dict(group.labels),
                        "receiver": {"name": group.route.opts.receiver},
                        "alerts": alerts,
                    }
                )
        out.sort(key=lambda g: (sorted(g["labels"].items()), g["receiver"]["name"]))
        return JSONResponse(out)

    async def post_alerts(self, request: Request) -> Response:
        body = await _body(request)
        try:
            posted = _ALERTS.validate_json(body)
        except ValidationError as exc:
            raise BadRequest(_validation_message(exc)) from exc
        await api_alerts.publish(
            self._js,
            self.view.names,
            posted,
            self.clock(),
            self.view.config.am.global_.resolve_timeout,
        )
        return Response(status_code=200)

    async def get_silences(self, request: Request) -> Response:
        matchers: list[LabelMatcher] = parse_filter(request.query_params.getlist("filter"))
        creators = request.query_params.getlist("creator")
        now = self.clock()
        out = []
        for silence in self.silences.all():
            values = {m.name: m.value for m in silence.matchers}
            if creators and silence.created_by not in creators:
                continue
            if matches_filter(matchers, values):
                out.append(gettable_silence(silence, state(silence, now)))
        return JSONResponse(out)

    async def post_silences(self, request: Request) -> Response:
        body = await _body(request)
        try:
            posted = _SILENCE.validate_json(body)
        except ValidationError as exc:
            raise BadRequest(_validation_message(exc)) from exc
        silence_id = await self.silences.set(posted)
        return JSONResponse({"silenceID": silence_id})

    async def get_silence(self, silence_id: str) -> Response:
        silence = self.silences.get(silence_id)
        return JSONResponse(gettable_silence(silence, state(silence, self.clock())))

    async def delete_silence(self, silence_id: str) -> Response:
        await self.silences.expire(silence_id)
        return Response(status_code=200)


def _admin_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        answer = await handler(await request.body())
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    return endpoint


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise BadRequest(f"body too large: more than {MAX_BODY_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"body too large: more than {MAX_BODY_BYTES} bytes")
    return body


_LOC_CLEAN = re.compile(r"\.?function-[a-z-]+\[[^\]]*\]")


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{_LOC_CLEAN.sub('', loc) or 'body'}: {err['msg']}")
    return "; ".join(parts)
