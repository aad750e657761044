"""The notifier service: wires NATS, the state machines, delivery and the admin port.

``App.start()`` connects to NATS, provisions the contract's streams and
buckets, starts watching the silences bucket, (re)creates this replica's
durable consumer on the alerts stream starting ``replay`` seconds back (so a
restart rebuilds its groups; the notification log keeps it from re-sending),
binds ``listen_address`` (Alertmanager API v2 from ``notifier.api`` beside
``/metrics``, ``/healthz``, ``/readyz``, ``POST /-/reload``; ``admin_port``
says which) and returns.

Loops: the *consumer* decodes alert events into the alert store and the
dispatcher and publishes each alert's status (active or suppressed, with the
silences and inhibiting alerts) on ``<prefix>.alertstatus``; the *ticker*
wakes every ``tick`` seconds, or sooner when a new alert brings a timer
forward, and starts one task per due flush (``notifier.pipeline``); the
*silence watcher* keeps the silences current (a change makes the next tick
re-publish the status of every firing alert).

Every replica consumes every alert (each has its own consumer) and keeps all
groups; the notification log in KV makes one of them deliver each flush.
Reload (SIGHUP, ``/-/reload``) re-reads the Alertmanager configuration, builds
a new dispatcher and re-feeds it every known alert, as Alertmanager does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from prometheus_client import CollectorRegistry

from notifier.alerts import AlertStore, is_resolved
from notifier.api import ApiServer
from notifier.config import NotifierConfig, load_from
from notifier.delivery import Attempt, RetryPolicy
from notifier.group import Dispatcher, Flush
from notifier.inhibit import Inhibitor, InhibitRule
from notifier.metrics import NotifierMetrics
from notifier.nflogkv import NotificationLog
from notifier.pipeline import Pipeline
from notifier.receivers.base import BuildContext, Integration
from notifier.receivers.registry import build_receivers
from notifier.route import build
from notifier.ssrf import URLGuard
from shared.admin import AdminServer
from shared.alertmanager.silence import Silencer
from shared.bus.connect import connect
from shared.bus.provision import provision
from shared.codec import decode_message, encode_message
from shared.config.loader import LoadedConfig
from shared.config.reload import Reloader
from shared.errors import DecodeError
from shared.log import get_logger
from shared.tasks import cancel_all, close_nats
from shared.wire import AlertEvent, AlertStatus, Names, NotificationResult, Silence

log = get_logger(__name__)

FETCH_BATCH = 256


def _pending(msg: Msg) -> int:
    """Messages the consumer still holds after ``msg`` (0 when the metadata is unreadable)."""
    try:
        return int(msg.metadata.num_pending)
    except Exception:  # noqa: BLE001 - not a JetStream message: assume no backlog
        return 0


GC_EVERY_S = 60.0
RESOLVED_KEEP = timedelta(minutes=15)


def default_replica() -> str:
    """Host name and process id: unique per process, readable in consumer lists."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _token(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:64]


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass
class Settings:
    """The notifier's own settings (not part of the Alertmanager file).

    Until Vigil's config grows a ``notifier`` section these come from the
    command line or environment (see ``notifier.__main__``).
    """

    listen_address: str = "127.0.0.1:9093"
    replica: str = field(default_factory=default_replica)
    allow_networks: list[str] = field(default_factory=list)
    replay: float = 3600.0
    tick: float = 0.1
    policy: RetryPolicy = field(default_factory=RetryPolicy)


class App:
    def __init__(
        self,
        loaded: LoadedConfig,
        settings: Settings | None = None,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.loaded = loaded
        self.settings = settings or Settings()
        self.registry = registry or CollectorRegistry()
        self.metrics = NotifierMetrics(self.registry)
        self.names = Names(loaded.config.nats.prefix)
        self.clock = clock
        self.guard = URLGuard(self.settings.allow_networks)
        self.store = AlertStore()
        self.silencer = Silencer()
        self.reloader = Reloader(loaded, self._apply, registry=self.registry)
        host, port = _split_address(self.settings.listen_address)
        self.admin = AdminServer(
            host=host, port=port, registry=self.registry, ready=self.ready, reloader=self.reloader
        )
        self.updated: dict[str, datetime] = {}  # fingerprint -> last event (API's updatedAt)
        # the Alertmanager API v2, with the admin endpoints mounted, on listen_address
        self.api = ApiServer(self, self.admin, host=host, port=port, clock=clock)
        self.nflog = NotificationLog(None, self.settings.replica)
        self._nc: Client | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._flushes: set[asyncio.Task[None]] = set()
        self._retired: list[Integration] = []
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._silences_ready = False
        self._consuming = False
        self._inhibit_dirty = True
        self._statuses_dirty = False
        self._install(load_from(loaded))

    # ------------------------------------------------------------------ config

    def _install(self, cfg: NotifierConfig) -> None:
        """Make ``cfg`` current: routing tree, dispatcher, receivers, inhibition, pipeline."""
        for where, message in cfg.warnings:
            log.warning("alertmanager configuration", field=where, problem=message)
        self.config = cfg
        self.root = build(cfg.route)
        self.dispatcher = Dispatcher(self.root)
        old = getattr(self, "receivers", {})
        self.receivers = build_receivers(
            cfg.am,
            BuildContext(cfg.base_dir, self.guard, self.loaded.config.alerting.external_url),
        )
        for integrations in old.values():
            self._retired += integrations
        self.inhibitor = Inhibitor(InhibitRule.from_config(r) for r in cfg.am.inhibit_rules)
        self._inhibit_dirty = True
        self.pipeline = Pipeline(
            receivers=self.receivers,
            intervals=cfg.am.intervals(),
            silencer=self.silencer,
            inhibitor=self.inhibitor,
            nflog=self.nflog,
            publish=self._publish_result,
            publish_status=self._publish_status,
            policy=self.settings.policy,
            external_url=self.loaded.config.alerting.external_url,
            on_attempt=self._count_attempt,
            on_done=self._count_done,
            on_leased=self._look_again,
        )
        now = self.clock()
        for alert in list(self.store):
            self.dispatcher.process(alert, 0, now)
        self._wake.set()

    async def _apply(self, new: LoadedConfig) -> None:
        cfg = load_from(new)  # raises ConfigError: the Reloader keeps the old config
        self.loaded = new
        self._install(cfg)

    # ------------------------------------------------------------------ lifecycle

    @property
    def admin_port(self) -> int:
        return self.api.port

    def ready(self) -> bool:
        return self._consuming and self._silences_ready

    async def start(self) -> None:
        cfg = self.loaded.config
        self._nc = await connect(
            cfg.nats, name="vigil-notifier", base_dir=self.loaded.base_dir, wait=30
        )
        js = self._nc.jetstream()
        await provision(js, cfg.nats)
        self.nflog.kv = await js.key_value(self.names.kv_nflog)
        silences = await js.key_value(self.names.kv_silences)
        durable = f"notifier_{_token(self.settings.replica)}"
        await self._ensure_consumer(durable)
        psub = await js.pull_subscribe_bind(durable, self.names.stream_alerts)
        self._tasks = [
            asyncio.create_task(self._watch_silences(silences)),
            asyncio.create_task(self._consume(psub)),
            asyncio.create_task(self._tick_loop()),
        ]
        await self.api.attach(js, silences)
        await self.api.start()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self.reloader.install_sighup()
        log.info(
            "notifier started",
            admin_port=self.api.port,
            replica=self.settings.replica,
            config=self.config.source,
        )

    async def _ensure_consumer(self, durable: str) -> None:
        """A fresh durable consumer starting ``replay`` seconds back (restart: rebuild groups)."""
        js = self._nc_checked().jetstream()
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(self.names.stream_alerts, durable)
        start = datetime.now(UTC) - timedelta(seconds=self.settings.replay)
        await js.add_consumer(
            self.names.stream_alerts,
            ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=start,
                filter_subject=self.names.alerts_wildcard,
                ack_wait=30.0,
                max_deliver=-1,
                inactive_threshold=max(3600.0, self.settings.replay),
            ),
        )

    async def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake.set()
        await cancel_all(self._tasks)
        if self._flushes:
            # deliveries in hand finish (bounded by the runner's stop timeout)
            await asyncio.gather(*self._flushes, return_exceptions=True)
        for integrations in self.receivers.values():
            for integration in integrations:
                await integration.close()
        for integration in self._retired:
            await integration.close()
        with contextlib.suppress(Exception):
            self.reloader.remove_sighup()
        await self.api.stop()
        await close_nats(self._nc)  # acks and results are written: flush and close
        log.info("notifier stopped")

    def _nc_checked(self) -> Client:
        if self._nc is None:
            raise RuntimeError("BUG: NATS used before start()")
        return self._nc

    # ------------------------------------------------------------------ loops

    async def _watch_silences(self, kv: KeyValue) -> None:
        watcher = await kv.watchall()
        async for entry in watcher:
            if entry is None:
                self._silences_ready = True
                continue
            if entry.operation in ("DEL", "PURGE") or not entry.value:
                self.silencer.remove(entry.key)
            else:
                try:
                    self.silencer.put(decode_message(entry.value, Silence))
                except (DecodeError, ValueError) as exc:
                    log.warning("cannot read silence, ignoring it", key=entry.key, error=str(exc))
            self._silences_ready = True
            self._statuses_dirty = True  # the tick re-publishes every alert's status
            self._wake.set()
            self.metrics.silences.set(len(self.silencer))

    async def _consume(self, psub: object) -> None:
        """Fetch alert events until stopped: in batches while a backlog is pending, else one.

        One when idle because nats-py's ``fetch(n)`` holds a message that arrives during
        its long poll until ``n`` came or the poll's timeout ran out (up to 1 s late);
        ``fetch(1)`` returns at the first. With a backlog (``num_pending``) the batch's
        no-wait request answers at once with what is there.
        """
        fetch = psub.fetch  # type: ignore[attr-defined]
        self._consuming = True
        failing = False
        backlog = True
        while not self._stopping.is_set():
            try:
                msgs: list[Msg] = await fetch(FETCH_BATCH if backlog else 1, timeout=1.0)
            except nats.errors.TimeoutError:
                backlog = False
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS trouble: pause and retry, never die
                if not failing:
                    log.warning(
                        "cannot fetch alerts, retrying", error=str(exc) or type(exc).__name__
                    )
                    failing = True
                await asyncio.sleep(1.0)
                continue
            if failing:
                log.info("fetching alerts again")
                failing = False
            backlog = _pending(msgs[-1]) > 0 if msgs else False
            await self.ingest(msgs)

    async def ingest(self, msgs: list[Msg]) -> None:
        """Decode a fetch of alert events into the store and groups; ack each."""
        now = self.clock()
        accepted: list[AlertEvent] = []
        for msg in msgs:
            try:
                event = decode_message(msg.data, AlertEvent)
            except (DecodeError, ValueError) as exc:
                self.metrics.alerts_invalid.inc()
                log.warning(
                    "cannot decode alert event, dropping it",
                    subject=msg.subject,
                    error=str(exc)[:300],
                )
                await msg.term()
                continue
            self.metrics.alerts_received.labels(event.status).inc()
            merged, version = self.store.put(event, now)
            self.updated[merged.fingerprint] = now
            self.dispatcher.process(merged, version, now)
            accepted.append(merged)
            await msg.ack()
        self._inhibit_dirty = True
        self._refresh_inhibitor()
        for alert in accepted:
            await self._publish_status(self.status_of(alert, now))
        self._wake.set()

    def _refresh_inhibitor(self) -> None:
        if self._inhibit_dirty:
            self.inhibitor.set_alerts(self.store)
            self._inhibit_dirty = False

    def status_of(self, alert: AlertEvent, now: datetime) -> AlertStatus:
        silenced = self.silencer.silenced_by(alert.labels, now)
        inhibited = self.inhibitor.inhibited_by(alert.labels, now)
        return AlertStatus(
            fingerprint=alert.fingerprint,
            state="suppressed" if silenced or inhibited else "active",
            silenced_by=silenced,
            inhibited_by=inhibited,
            receivers=sorted({r.opts.receiver for r in self.root.match(alert.labels)}),
            at=now,
        )

    async def _tick_loop(self) -> None:
        last_gc = time.monotonic()
        while not self._stopping.is_set():
            try:
                last_gc = await self._tick(last_gc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the timers must keep running
                log.error("BUG: cannot run the flush timers", error=repr(exc))
                await asyncio.sleep(self.settings.tick)

    async def _tick(self, last_gc: float) -> float:
        """One round: start due flushes, collect garbage, sleep until the next timer or wake."""
        now = self.clock()
        self._refresh_inhibitor()
        if self._statuses_dirty:
            self._statuses_dirty = False
            for alert in list(self.store):
                if not is_resolved(alert, now):
                    await self._publish_status(self.status_of(alert, now))
        dispatcher = self.dispatcher
        for flush in dispatcher.tick(now):
            task = asyncio.create_task(self._run_flush(dispatcher, flush))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        if time.monotonic() - last_gc > GC_EVERY_S:
            last_gc = time.monotonic()
            for fp in self.store.gc(now, RESOLVED_KEEP):
                self.updated.pop(fp, None)
            self._inhibit_dirty = True
        if not self._flushes and self._retired:
            retired, self._retired = self._retired, []
            for integration in retired:
                await integration.close()
        self.metrics.groups.set(len(dispatcher.groups))
        self.metrics.alerts.set(len(self.store))
        wait = self.settings.tick
        deadline = dispatcher.next_deadline()
        if deadline is not None:
            wait = max(0.0, min(wait, (deadline - self.clock()).total_seconds()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._wake.wait()
        return last_gc

    async def _run_flush(self, dispatcher: Dispatcher, flush: Flush) -> None:
        ok = False
        try:
            ok = await self.pipeline.handle(flush)
        except Exception as exc:  # noqa: BLE001 - one bad flush never stops the notifier
            log.error("BUG: cannot handle group flush", group_key=flush.group_key, error=repr(exc))
        finally:
            dispatcher.complete(flush, ok)
            self._wake.set()

    def _look_again(self, flush: Flush, at: datetime) -> None:
        """Another replica held the flush's lease until ``at``: flush the group again then."""
        self.dispatcher.look_again(flush, at)
        self._wake.set()

    # ------------------------------------------------------------------ output

    async def _publish_result(self, result: NotificationResult) -> None:
        if self._nc is None:
            return
        with contextlib.suppress(Exception):
            await self._nc.publish(
                self.names.notifications(result.receiver), encode_message(result)
            )

    async def _publish_status(self, status: AlertStatus) -> None:
        if self._nc is None:
            return
        with contextlib.suppress(Exception):
            await self._nc.publish(self.names.alertstatus, encode_message(status))

    def _count_attempt(self, integration: Integration, attempt: Attempt) -> None:
        self.metrics.requests.labels(integration.kind).inc()
        self.metrics.latency.labels(integration.kind).observe(attempt.duration_seconds)
        if attempt.outcome != "success":
            self.metrics.requests_failed.labels(integration.kind).inc()

    def _count_done(self, integration: Integration, ok: bool) -> None:
        self.metrics.notifications.labels(integration.kind).inc()
        if not ok:
            self.metrics.notifications_failed.labels(integration.kind).inc()
