"""The web service: the Prometheus HTTP API on ``visualization.listen_address``.

``App.start()`` opens the database pool (lazily: a database that is down at
start-up makes queries answer 503 ``unavailable`` and ``/readyz`` 503, it does
not stop the service), builds the PromQL engine over
:class:`web.storage_tsdb.TimescaleStorage`, binds the port (``port`` says
which; tests pass 0) and returns once uvicorn serves. ``App.stop()`` lets
in-flight requests finish and closes the pool.

Own endpoints on the same port: ``/metrics``, ``/healthz``, ``/readyz``
(the database answers ``SELECT 1``) and ``POST /-/reload`` (also SIGHUP when
``sighup=True``, as ``vigil-web`` runs it): query limits and rollup use are
re-read; the listen address and database URL need a restart. The UI
(``/``, ``/assets/``, ``/api/vigil/dashboards``) is :mod:`web.ui`.
Alerting (rules, alerts, targets, silences, alert history) is :mod:`web.alerting`;
its NATS link (:mod:`web.bus`) is made in the background like the pool: NATS down
at start-up makes those endpoints answer 503 ``unavailable``, it does not stop web.

Tests may pass ``engine`` (any object with the engine's ``instant``/``range``)
and ``storage`` to run the HTTP layer over something else.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config.loader import LoadedConfig
from shared.config.reload import Reloader
from shared.devenv.databases import configured_database_url
from shared.duration import format_duration
from shared.errors import VigilError
from shared.httpsec.middleware import HttpSecurityMiddleware, warn_if_open
from shared.httpsec.tls import uvicorn_ssl_options
from shared.log import get_logger
from shared.promql.engine import Engine
from shared.promql.storage import Storage
from web import alerting, ui
from web.api import ApiState, QueryEngine, build_router
from web.bus import WebBus
from web.reports.router import build_router as build_reports_router
from web.storage_tsdb import POOL_OPTIONS, TimescaleStorage

log = get_logger(__name__)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


def make_engine(storage: Storage, loaded: LoadedConfig) -> QueryEngine:
    """The PromQL engine with the limits of ``visualization``."""
    v = loaded.config.visualization
    return Engine(
        storage,
        lookback_ms=round(v.query_lookback_delta * 1000),
        max_samples=v.query_max_samples,
        timeout_s=v.query_timeout,
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: ``shared.runner`` owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "vigil_web_http_requests_total",
            "HTTP requests answered, by route and status code.",
            ["handler", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "vigil_web_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["handler"],
            registry=registry,
        )


class _Observe:
    """Counts and times every request by route (pure ASGI: no per-request task or copy)."""

    def __init__(self, app: ASGIApp, metrics: WebMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            handler = getattr(route, "path", None) or "other"
            self.metrics.requests.labels(handler, str(status)).inc()
            self.metrics.duration.labels(handler).observe(time.perf_counter() - began)


class App:
    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        registry: CollectorRegistry | None = None,
        storage: Storage | None = None,
        engine: QueryEngine | None = None,
        database_url: str | None = None,
        sighup: bool = False,
    ) -> None:
        self.loaded = loaded
        self._sighup = sighup
        self.config = loaded.config
        self.registry = registry or CollectorRegistry()
        self.metrics = WebMetrics(self.registry)
        self._database_url = database_url
        self._pool: asyncpg.Pool | None = None
        self.bus = WebBus(loaded.config.nats, base_dir=loaded.base_dir)
        self._own_storage = storage is None
        self._engine_given = engine is not None
        self.state = ApiState(storage=storage, engine=engine, flags=self._flags())
        self.reloader = Reloader(loaded, self._apply, registry=self.registry)
        self.state.reload_ok = lambda: not self.reloader_failing
        self.reloader_failing = False
        self.fastapi = self._build()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    def database_url(self) -> str:
        if self._database_url:
            return self._database_url
        url = configured_database_url(self.config.storage)
        if not url:
            raise VigilError(
                "cannot start web: no database URL (storage.database_url or VIGIL_DATABASE_URL)"
            )
        return url

    def _flags(self) -> dict[str, str]:
        v = self.config.visualization
        return {
            "query.lookback-delta": format_duration(v.query_lookback_delta),
            "query.max-samples": str(v.query_max_samples),
            "query.timeout": format_duration(v.query_timeout),
            "web.listen-address": v.listen_address,
        }

    async def _apply(self, new: LoadedConfig) -> None:
        self.loaded, self.config = new, new.config
        self.state.flags = self._flags()
        storage = self.state.storage
        if isinstance(storage, TimescaleStorage):
            storage.rollups = new.config.visualization.query_rollups
        if not self._engine_given and storage is not None:
            self.state.engine = make_engine(storage, new)

    def _build(self) -> FastAPI:
        api = FastAPI(title="Vigil", docs_url=None, redoc_url=None, openapi_url=None)
        api.add_middleware(HttpSecurityMiddleware, settings=lambda: self.config.visualization)
        api.include_router(build_router(self.state))
        api.include_router(ui.build_router(lambda: self.loaded))
        api.include_router(
            alerting.build_router(lambda: self.bus, lambda: self.loaded, lambda: self._pool)
        )
        api.include_router(
            build_reports_router(lambda: self._pool, lambda: self.config.visualization)
        )
        metrics = self.metrics

        api.add_middleware(_Observe, metrics=metrics)  # outermost: times auth refusals too

        @api.get("/metrics")
        async def prom_metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        @api.get("/healthz")
        async def healthz() -> Response:
            return Response("ok\n", media_type="text/plain")

        @api.get("/readyz")
        async def readyz() -> Response:
            if await self.ready():
                return Response("ready\n", media_type="text/plain")
            return Response("not ready\n", status_code=503, media_type="text/plain")

        @api.api_route("/-/reload", methods=["POST", "PUT"])
        async def reload() -> Response:
            outcome = await self.reloader.reload()
            self.reloader_failing = not outcome.ok
            if outcome.ok:
                return Response("configuration reloaded\n", media_type="text/plain")
            return Response(f"{outcome.error}\n", status_code=500, media_type="text/plain")

        return api

    async def ready(self) -> bool:
        if self._server is None or not self._server.started:
            return False
        if self._pool is None:
            return self.state.storage is not None
        try:
            async with asyncio.timeout(2):
                await self._pool.fetchval("SELECT 1")
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def start(self) -> None:
        if self._own_storage:
            storage = self.config.storage
            self._pool = await asyncpg.create_pool(
                self.database_url(),
                min_size=0,
                max_size=storage.pool_max,
                command_timeout=max(60.0, self.config.visualization.query_timeout),
                **POOL_OPTIONS,
            )
            self.state.storage = TimescaleStorage(
                self._pool, rollups=self.config.visualization.query_rollups
            )
        if self.state.engine is None and self.state.storage is not None:
            self.state.engine = make_engine(self.state.storage, self.loaded)
        host, port = split_address(self.config.visualization.listen_address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            await self._close_pool()
            raise VigilError(f"cannot listen on {host}:{port}: {exc}") from exc
        sock.listen(1024)
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.fastapi,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=10,
            **uvicorn_ssl_options(self.config.visualization.tls),
        )
        warn_if_open("web", host, self.config.visualization)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise VigilError(f"cannot serve on {host}:{self.port}: uvicorn stopped")
            await asyncio.sleep(0.01)
        if self._sighup:
            self.reloader.install_sighup()
        await self.bus.start()  # in the background: NATS down does not stop web
        log.info("web started", port=self.port)

    async def stop(self) -> None:
        if self._sighup:
            with contextlib.suppress(Exception):
                self.reloader.remove_sighup()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = self._task = None
        await self.bus.stop()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        await self._close_pool()

    async def _close_pool(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                async with asyncio.timeout(10):
                    await pool.close()
            except TimeoutError:
                pool.terminate()
