"""The ingest service: wires NATS, the database, the consumers and the admin port.

``App.start()`` connects to NATS, provisions the contract's streams, binds
the admin port (``/metrics``, ``/healthz``, ``/readyz``; ``admin_port`` says
which) and returns; a background task then migrates the schema and starts
the workers, retrying with back-off while the database is unreachable (a
database that is down at start-up delays ingest, it does not fail it).
``/readyz`` answers 200 once the workers run.

``App.stop()``: workers finish the fetch in hand (write, ack), NATS is
drained (acks flushed), the pool closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from ingest.backoff import Backoff
from ingest.cache import SeriesCache
from ingest.consumer import MetricsHandler
from ingest.errors import IngestError
from ingest.history import KINDS, AlertStatusRecorder, HistoryHandler
from ingest.metrics import IngestMetrics
from ingest.prepare import prepare_database
from ingest.pull import PullLoop, ensure_consumer
from ingest.rollup.errors import RollupConfigError
from ingest.rollup.jobs import RollupJobs
from ingest.rows import FastKey
from ingest.writer import SampleWriter
from shared.admin import AdminServer
from shared.bus.connect import connect
from shared.bus.provision import provision
from shared.config.loader import LoadedConfig
from shared.devenv.databases import configured_database_url
from shared.errors import VigilError
from shared.log import get_logger
from shared.wire import Names

log = get_logger(__name__)

HISTORY_FETCH = 64


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


class App:
    def __init__(self, loaded: LoadedConfig, *, registry: CollectorRegistry | None = None) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.registry = registry or CollectorRegistry()
        self.metrics = IngestMetrics(self.registry)
        self.names = Names(self.config.nats.prefix)
        host, port = _split_address(self.config.ingest.listen_address)
        self.admin = AdminServer(host=host, port=port, registry=self.registry, ready=self.ready)
        self.cache: SeriesCache[FastKey] = SeriesCache(self.config.ingest.series_cache_size)
        self._nc: Client | None = None
        self._pool: asyncpg.Pool | None = None
        self._loops: list[PullLoop] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._boot: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.writer: SampleWriter | None = None
        self._rollups: RollupJobs | None = None
        self._rollup_task: asyncio.Task[None] | None = None

    @property
    def admin_port(self) -> int:
        return self.admin.port

    def ready(self) -> bool:
        return bool(self._loops) and all(loop.running for loop in self._loops)

    def database_url(self) -> str:
        url = configured_database_url(self.config.storage)
        if not url:
            raise VigilError(
                "cannot start ingest: no database URL (storage.database_url or VIGIL_DATABASE_URL)"
            )
        return url

    async def start(self) -> None:
        url = self.database_url()
        self._nc = await connect(
            self.config.nats, name="vigil-ingest", base_dir=self.loaded.base_dir, wait=30
        )
        await provision(self._nc.jetstream(), self.config.nats)
        await self.admin.start()
        self._boot = asyncio.create_task(self._bootstrap(url))
        log.info("ingest started", admin_port=self.admin.port)

    async def _bootstrap(self, url: str) -> None:
        backoff = Backoff(self.config.ingest.retry_initial, self.config.ingest.retry_max)
        rollups = True
        while not self._stopping.is_set():
            try:
                await prepare_database(url, self.config.storage)
                break
            except RollupConfigError as exc:
                # Retrying cannot fix settings that would lose data; store samples
                # anyway and leave rollups alone until the config is fixed.
                log.error("cannot set up rollups, ingesting without them", error=str(exc))
                rollups = False
                break
            except IngestError as exc:
                delay, first = backoff.failed(time.monotonic())
                if first:
                    log.warning("cannot prepare the database: retrying", error=str(exc))
                await self._pause(delay)
        if self._stopping.is_set():
            return
        if rollups:
            self._rollups = RollupJobs(url, self.config.storage)
            self._rollup_task = asyncio.create_task(
                self._rollups.run_forever(self.config.storage.rollup_interval)
            )
        storage, ingest = self.config.storage, self.config.ingest
        self._pool = await asyncpg.create_pool(
            url,
            min_size=0,
            max_size=max(storage.pool_max, ingest.workers + 2),
            command_timeout=max(60.0, ingest.ack_wait),
        )
        while not self._stopping.is_set():
            try:
                await self._start_workers()
            except Exception as exc:  # noqa: BLE001 - NATS trouble at start-up: retry, never die
                delay, first = backoff.failed(time.monotonic())
                if first:
                    log.warning("cannot start consumers: retrying", error=str(exc) or repr(exc))
                await self._pause(delay)
            else:
                return

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` or until stop is asked, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    def _connections(self) -> tuple[Client, asyncpg.Pool]:
        if self._nc is None or self._pool is None:
            raise RuntimeError("BUG: cannot start workers before NATS and the pool exist")
        return self._nc, self._pool

    async def _start_workers(self) -> None:
        nc, pool = self._connections()
        js = nc.jetstream()
        ingest, names = self.config.ingest, self.names
        await ensure_consumer(
            js,
            stream=names.stream_metrics,
            durable=ingest.consumer,
            subject=names.metrics_wildcard,
            ack_wait=ingest.ack_wait,
            max_ack_pending=ingest.max_ack_pending,
        )
        self.writer = SampleWriter(pool, self.cache)
        handler = MetricsHandler(
            names=names,
            limits=self.config.nats.limits,
            writer=self.writer,
            cache=self.cache,
            metrics=self.metrics,
            backoff=Backoff(ingest.retry_initial, ingest.retry_max),
            keepalive_s=max(0.1, ingest.ack_wait / 3),
            table_cache_series=ingest.table_cache_series,
        )
        loops = [
            PullLoop(
                js,
                stream=names.stream_metrics,
                durable=ingest.consumer,
                batch=ingest.fetch_batch,
                timeout=ingest.fetch_timeout,
                handler=handler,
            )
            for _ in range(ingest.workers)
        ]
        if ingest.history:
            loops += await self._history_loops()
            recorder = AlertStatusRecorder(pool, self.metrics)
            await nc.subscribe(names.alertstatus, cb=recorder.record)
        self._loops = loops
        self._tasks += [asyncio.create_task(loop.run()) for loop in loops]
        self._tasks.append(asyncio.create_task(self._watch_lag()))

    async def _history_loops(self) -> list[PullLoop]:
        nc, pool = self._connections()
        js = nc.jetstream()
        ingest, names = self.config.ingest, self.names
        streams = {
            "alerts": (names.stream_alerts, names.alerts_wildcard),
            "notifications": (names.stream_notifications, names.notifications_wildcard),
            "silences": (names.stream_silences, names.silences),
        }
        loops = []
        for kind in KINDS:
            stream, subject = streams[kind]
            durable = f"{ingest.consumer}_{kind}"
            await ensure_consumer(
                js, stream=stream, durable=durable, subject=subject,
                ack_wait=ingest.ack_wait, max_ack_pending=ingest.max_ack_pending,
            )  # fmt: skip
            handler = HistoryHandler(
                kind=kind, stream=stream, pool=pool, metrics=self.metrics,
                backoff=Backoff(ingest.retry_initial, ingest.retry_max),
            )  # fmt: skip
            loops.append(
                PullLoop(
                    js,
                    stream=stream,
                    durable=durable,
                    batch=HISTORY_FETCH,
                    timeout=ingest.fetch_timeout,
                    handler=handler,
                )
            )
        return loops

    async def _watch_lag(self) -> None:
        js = self._connections()[0].jetstream()
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):
                info = await js.consumer_info(
                    self.names.stream_metrics, self.config.ingest.consumer
                )
                self.metrics.consumer_lag.set(info.num_pending or 0)
            await self._pause(self.config.ingest.lag_interval)

    async def stop(self) -> None:
        self._stopping.set()
        for loop in self._loops:
            loop.stop()
        if self._boot is not None:
            with contextlib.suppress(Exception):
                await self._boot
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._rollup_task is not None:
            self._rollup_task.cancel()  # runs until cancelled; a run in hand rolls back
            await asyncio.gather(self._rollup_task, return_exceptions=True)
        if self._rollups is not None:
            with contextlib.suppress(Exception):
                await self._rollups.close()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
        if self._pool is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await self._pool.close()
        await self.admin.stop()
        log.info("ingest stopped")
