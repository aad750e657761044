"""The agent, wired: collectors -> scheduler -> batcher -> publisher (+ spool) -> JetStream.

``App(loaded)`` builds nothing until ``start()``; ``start`` opens the spool,
builds the collectors, starts their loops, the publisher and the flush timer,
and connects to NATS in the background (an agent must start, collect and
spool while NATS is down: hosts boot before the bus is reachable). It
publishes only to ``<prefix>.metrics.<host>`` and never creates streams
(enrolled agents have no permission to). ``stop()`` marks every live series
stale, flushes, publishes what is queued for up to ``publish_timeout`` and
spools the rest.

Reload (SIGHUP, ``POST /-/reload``) rebuilds every collector from the new
``collectors`` section and applies new host labels; a collector that cannot
be built fails the reload and the old set keeps running. Changes to ``nats``
and the rest of ``agent`` need a restart (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path

from nats.aio.client import Client

from agent.batcher import Batcher, FlushPolicy
from agent.collectors.base import Registry
from agent.collectors.registry import Unavailable, build, default_registry
from agent.errors import CollectorBuildError
from agent.publisher import Publisher
from agent.scheduler import CollectorEntry, Scheduler
from agent.selfmetrics import AgentMetrics, SelfCollector
from agent.spool import Spool
from shared.admin import AdminServer
from shared.bus.connect import connect
from shared.config.loader import LoadedConfig
from shared.config.reload import Reloader
from shared.errors import BusConnectError
from shared.log import get_logger
from shared.wire import Names

log = get_logger(__name__)

SELF_COLLECTOR = "_agent"
"""Name of the built-in collector of the agent's own metrics (config names cannot start so)."""


def default_spool_dir() -> Path:
    """$STATE_DIRECTORY (systemd's StateDirectory=), else the user's XDG state folder."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vigil" / "agent"


class App:
    def __init__(self, loaded: LoadedConfig, *, registry: Registry | None = None) -> None:
        self.loaded = loaded
        self.registry = registry or default_registry()
        cfg = loaded.config
        self.hostname = cfg.agent.hostname or socket.gethostname()
        self.subject = Names(cfg.nats.prefix).metrics(self.hostname)
        self.metrics = AgentMetrics()
        self.port: int | None = None
        self.nc: Client | None = None
        self.spool: Spool | None = None
        self.publisher: Publisher | None = None
        self.batcher: Batcher | None = None
        self.scheduler: Scheduler | None = None
        self.reloader: Reloader | None = None
        self._admin: AdminServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def instance_id(self) -> str:
        return self.batcher.instance_id if self.batcher else ""

    async def start(self) -> None:
        cfg = self.loaded.config
        a = cfg.agent
        entries = self._build(self.loaded)  # fail before anything runs
        spool_dir = self.loaded.resolve(a.spool_dir) if a.spool_dir else default_spool_dir()
        self.spool = Spool(
            spool_dir, max_bytes=a.spool_max_bytes, fsync_interval=a.spool_fsync_interval
        )
        self.publisher = Publisher(
            self.spool,
            self.metrics,
            subject=self.subject,
            max_inflight=a.max_inflight,
            publish_timeout=a.publish_timeout,
        )
        limits = cfg.nats.limits
        policy = FlushPolicy(
            max_samples=min(a.batch_max_samples, limits.max_samples_per_batch),
            max_series=limits.max_series_per_batch,
            # The size estimate is checked after each sample: leave room for one more series.
            max_bytes=min(a.batch_max_bytes, limits.max_batch_bytes) * 3 // 4,
            interval_s=a.flush_interval,
        )
        self.batcher = Batcher(policy, self.publisher, clock=time.monotonic)
        self.scheduler = Scheduler(
            self.batcher,
            self.metrics,
            hostname=self.hostname,
            host_labels=a.labels,
            limits=limits,
            on_idle=self.batcher.flush,
        )
        await self.scheduler.replace(entries)
        self._tasks = [
            asyncio.create_task(self.publisher.run(), name="publisher"),
            asyncio.create_task(self._flush_timer(a.flush_interval), name="flush timer"),
            asyncio.create_task(self._connect(), name="nats connect"),
        ]
        self.reloader = Reloader(self.loaded, self._apply, registry=self.metrics.registry)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self.reloader.install_sighup()
        if a.listen_address is not None:
            host, _, port = a.listen_address.rpartition(":")
            self._admin = AdminServer(
                host=host.strip("[]") or "127.0.0.1",
                port=int(port),
                registry=self.metrics.registry,
                ready=lambda: self.publisher is not None and self.publisher.connected,
                reloader=self.reloader,
            )
            await self._admin.start()
            self.port = self._admin.port
        log.info(
            "agent started",
            host=self.hostname,
            subject=self.subject,
            instance=self.instance_id,
            spool=str(spool_dir),
            collectors=[e.name for e in entries],
            admin_port=self.port,
        )

    def _build(self, loaded: LoadedConfig) -> list[CollectorEntry]:
        """Build every configured collector plus the built-in one; raise on the first bad one."""
        entries: list[CollectorEntry] = []
        for c in loaded.config.collectors:
            try:
                collector = build(self.registry, c)
            except Unavailable as exc:
                log.error(
                    "cannot run collector, skipping it", collector=c.effective_name, reason=str(exc)
                )
                continue
            entries.append(
                CollectorEntry(c.effective_name, collector, c.effective_interval, c.labels)
            )
        interval = loaded.config.agent.self_metrics_interval
        entries.append(
            CollectorEntry(SELF_COLLECTOR, SelfCollector(self.metrics.registry), interval)
        )
        return entries

    async def _apply(self, new: LoadedConfig) -> None:
        try:
            entries = self._build(new)
        except CollectorBuildError as exc:
            raise ValueError(str(exc)) from exc
        old = self.loaded.config
        if (
            new.config.nats != old.nats
            or new.config.agent.model_copy(update={"labels": old.agent.labels}) != old.agent
        ):
            log.warning(
                "changes to the nats and agent sections need a restart; applying collectors and labels only"
            )
        if self.scheduler is None:
            raise RuntimeError("BUG: reload before start")
        self.scheduler.host_labels = dict(new.config.agent.labels)
        await self.scheduler.replace(entries)
        self.loaded = new

    async def _flush_timer(self, interval: float) -> None:
        step = min(interval / 4, 0.25)
        while True:
            await asyncio.sleep(step)
            if self.batcher is not None:
                self.batcher.tick(time.monotonic())

    async def _connect(self) -> None:
        failing = False
        while True:
            try:
                nc = await connect(
                    self.loaded.config.nats,
                    name=f"vigil-agent {self.hostname}",
                    base_dir=self.loaded.base_dir,
                    wait=5.0,
                )
            except BusConnectError as exc:
                if not failing:
                    log.warning("cannot connect to NATS yet, spooling meanwhile", reason=str(exc))
                    failing = True
                continue
            if failing:
                log.info("connected to NATS", servers=self.loaded.config.nats.servers)
            self.nc = nc
            if self.publisher is not None:
                self.publisher.attach(nc)
            return

    async def stop(self) -> None:
        if self.reloader is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self.reloader.remove_sighup()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.batcher is not None:
            self.batcher.flush()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.publisher is not None:
            await self.publisher.close(self.loaded.config.agent.publish_timeout)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
        if self._admin is not None:
            await self._admin.stop()
        log.info(
            "agent stopped",
            instance=self.instance_id,
            next_seq=self.batcher.next_seq if self.batcher else 0,
        )
