"""The alerter service: the metrics stream in, rule evaluation, alert events out.

``App.start()`` connects to NATS, provisions the contract, loads the rule files,
restores each group's alert state from KV ``alert_state`` and the known agents
from KV ``agents``, subscribes to ``<prefix>.metrics.*`` with an ordered
(ephemeral) JetStream consumer that starts ``now - longest window`` back (capped by
``alerter.max_replay``), so the windows warm up by replay, and binds the admin port
(``/metrics``, ``/healthz``, ``/readyz``, ``POST /-/reload``; ``admin_port``).

Evaluation:

- A batch is decoded (a bad one is counted and skipped), its host taken from the
  subject (label ``host`` set from it, as ingest does) and each sample stored when
  a rule selects its series (``alerter.window``). Decoding goes through
  ``shared.codec.BatchDecoder`` (``alerter.table_cache_series``; 0: plain
  ``decode_batch``): agents resend the same series table with every batch, so a
  repeat is neither decoded nor validated again, and its series' routes (window,
  groups fed) are looked up once per host and table. Every group one of whose
  selectors matches a series of the batch is marked due at the batch's newest
  timestamp rounded up to ``alerter.eval_resolution``; after ``alerter.debounce``
  the due groups are evaluated at that data time (never earlier than their last
  evaluation). The rounding makes replicas agree: one that took two batches of
  the same second in one debounce evaluates at the same instant as one that took
  them apart, so their events (``startsAt``, ``Nats-Msg-Id``) are identical.
- Each group is also evaluated at wall-clock multiples of its interval
  (``evaluation_interval`` or the group's ``interval``) if nothing evaluated it
  since: that is what notices silence (``up == 0``, ``absent``).
- Nothing is evaluated until the replay has caught up with the stream, and a group
  waits until the stream covers its longest window (range + offset + lookback), so
  a restart does not fire ``absent`` or ``up == 0`` on an empty window.
- Windows longer than the stream keeps (its first message is newer than the window
  start, or the window is longer than ``alerter.max_replay``) are warmed from the
  database (``alerter.warmdb``), concurrently with the replay: one read per
  selector whose history reaches before the stream's start, for the range from
  the window start up to that boundary, merged into the windows (deduplicated by
  timestamp). Once it succeeds the groups count as covered and are evaluated at
  once. Without a database (logged), or while it fails (logged once, retried every
  ``alerter.history_retry``), those groups wait until the stream alone covers them;
  the alerter never needs the database to alert.
- A reload (SIGHUP, ``/-/reload``) that adds a selector or lengthens one's window
  holds the groups concerned back the same way. Only what the new windows miss is
  fetched (from the new window's start up to where the held one began, or up to
  the reload for a selector not held before), split as at start: the part the
  stream still holds by a second, bounded replay (``alerter.replay``, for those
  selectors' series only, merged once at the end while the live consumer goes
  on), the older part from the database (the same ``_load_history`` reads). Once
  both are in the groups are evaluated at once; without a database, or while the
  replay or the database fails, they wait until the live stream alone covers the
  new window. Selectors already held as long are warm at once; a group reloaded
  while it still waits keeps its wait.
- ``up{host}`` is synthesised at every evaluation for every known agent: 1 when the
  host's newest batch is at most ``alerter.up_timeout`` older than the evaluation
  time, else 0. Known agents are those seen on the stream and those in KV
  ``agents`` (host token -> first/last seen, written at most every
  ``agents_write_interval`` per host), so a host that went silent before a restart
  still gets ``up == 0``.
- Alert sends become ``AlertEvent``s on ``<prefix>.alerts.<group>`` with the
  contract's ``Nats-Msg-Id`` (``alerter.events``): replicas publish one stream.
- ``ALERTS``, ``ALERTS_FOR_STATE`` and recording-rule results are published as one
  batch per evaluation on ``<prefix>.metrics.<alerter.self_host>`` (agent id
  ``alerter-<group hash>``, sequence = evaluation time, so replicas dedup). Ingest
  sets ``host`` from the subject, so a result's own ``host`` label is renamed
  ``exported_host`` (Prometheus' ``honor_labels: false`` rule). The alerter skips
  its own subject when consuming: it already holds what it wrote.
- After an evaluation that changed a group's state, the state is saved to KV
  ``alert_state`` (key: the group key as a host token), with the notifier's latest
  ``<prefix>.alertstatus`` for the group's alerts.
- Each group's rule health and evaluation times (``alerter.status``) go to the same
  bucket under ``rules.<group key as a host token>``, debounced
  (``alerter.status_write_interval``; at once on a health change). At start and
  after a reload the documents are made to match the rules: those of groups no
  longer loaded are deleted, a saved one describing the same rules is taken as
  the last known health, any other is replaced by one with health ``unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KeyValue
from prometheus_client import CollectorRegistry

from alerter.errors import HistoryError, ReplayError
from alerter.events import build_event, event_msg_id
from alerter.group import GroupEvaluator, engine_query
from alerter.metrics import AlerterMetrics
from alerter.replay import SeriesCollector, catch_up_seq, reached, replay
from alerter.rules import load_files
from alerter.rules.model import RuleGroup
from alerter.status import GroupStatus
from alerter.warmdb import DatabaseHistory, HistoryRange, HistorySource
from alerter.window import Selector, WindowStore, _Window, selectors_of
from shared import hosttoken
from shared.admin import AdminServer
from shared.bus.connect import connect
from shared.bus.provision import provision
from shared.codec import (
    BatchDecoder,
    decode_batch,
    decode_message,
    encode_batch,
    encode_message,
)
from shared.config.loader import LoadedConfig
from shared.config.reload import Reloader
from shared.devenv.databases import configured_database_url
from shared.errors import ConfigError, DecodeError
from shared.log import get_logger
from shared.promql.engine import Engine
from shared.promql.storage import LabelMatcher
from shared.tasks import cancel_all, close_nats
from shared.wire import (
    RULE_STATUS_PREFIX,
    AlertStatus,
    MetricBatch,
    Names,
    SeriesDesc,
    fingerprint,
)

log = get_logger(__name__)

LOOKBACK_MS = 300_000
GC_EVERY_S = 10.0
_ROUTE_CACHE_MAX = 1_000_000

_Route = tuple[_Window | None, tuple[int, ...]]
"""A series' window (None: no rule selects it) and the indexes of the groups it feeds."""


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Group:
    rules: RuleGroup
    evaluator: GroupEvaluator
    selectors: list[Selector]
    history_ms: int
    kv_key: str
    agent_id: str
    status: GroupStatus
    not_before_ms: int = 0
    """Not evaluated before (wall ms): a reload gave it a selector whose window starts empty."""
    pending: set[tuple[LabelMatcher, ...]] = field(default_factory=set)
    """Its selectors waiting for the database after a reload; once read, it is warm."""
    last_eval_ms: int = 0
    due_ms: int | None = None
    saved: str = ""
    failing: set[str] = field(default_factory=set)
    fingerprints: set[str] = field(default_factory=set)


class App:
    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], int] = _wall_ms,
    ) -> None:
        self.loaded = loaded
        self.registry = registry or CollectorRegistry()
        self.metrics = AlerterMetrics(self.registry)
        self.names = Names(loaded.config.nats.prefix)
        self.clock = clock
        self.settings = loaded.config.alerter
        self.reloader = Reloader(loaded, self._apply, registry=self.registry)
        host, port = _split_address(self.settings.listen_address)
        self.admin = AdminServer(
            host=host, port=port, registry=self.registry, ready=self.ready, reloader=self.reloader
        )
        self.store = WindowStore([], max_series=self.settings.max_series)
        # computed when scraped, so they are current however long since the last gc
        self.metrics.series.set_function(lambda: self.store.series_count)
        self.metrics.samples.set_function(lambda: self.store.sample_count)
        self.metrics.bytes.set_function(lambda: self.store.nbytes)
        self.metrics.refused.set_function(lambda: self.store.refused_series)
        self.engine = Engine(self.store, lookback_ms=LOOKBACK_MS)
        self.groups: list[_Group] = []
        self.hosts: dict[str, list[int]] = {}
        """host -> [first seen ms, last seen ms (data time), last KV write (wall ms)]."""
        self.statuses: dict[str, dict[str, Any]] = {}
        self._route: dict[tuple[Any, ...], _Route] = {}
        self._table_routes: dict[tuple[str, bytes], list[_Route]] = {}
        """(host, series table bytes) -> the routes of its series, by table position."""
        self._table_routes_series = 0
        cache = self.settings.table_cache_series
        self._decoder = (
            BatchDecoder(loaded.config.nats.limits, max_series=cache) if cache > 0 else None
        )
        self._up_wanted: dict[str, _Window | None] = {}
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv_state: KeyValue | None = None
        self._kv_agents: KeyValue | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._caught_up = False
        self._catch_up_seq = 0
        self._covered_from_ms = 0
        self._stream_from_ms = 0
        """Data time from which the replay brings the stream's data (0: all of it)."""
        self._lock = asyncio.Lock()
        self._last_gc = time.monotonic()
        self._init_warming(loaded)
        self._install(self._load_groups(loaded), previous=None)

    def _init_warming(self, loaded: LoadedConfig) -> None:
        """The state of the windows' warming from the database and replays (see below)."""
        self.history: HistorySource | None = self._history_source(loaded)
        self._start_pending = True
        """The start's part of the history is still to be read (see ``_start_ranges``)."""
        self._reload_ranges: dict[tuple[LabelMatcher, ...], tuple[HistoryRange, int]] = {}
        """Per selector, what reloads want read and until when (wall ms) it is worth it."""
        self._history_task: asyncio.Task[None] | None = None
        self._fresh: dict[tuple[LabelMatcher, ...], tuple[int, int, int]] = {}
        """What a reload's new windows miss, per selector: start, end, worth it until (ms)."""
        self._replaying: dict[tuple[LabelMatcher, ...], int] = {}
        """Selectors a reload's replay of the stream fills (-> its token)."""
        self._unreadable: dict[tuple[LabelMatcher, ...], int] = {}
        """Selectors whose missing part cannot be read (no database) -> until when (ms)."""
        self._replay_token = 0

    # ------------------------------------------------------------------ rules

    @staticmethod
    def _load_groups(loaded: LoadedConfig) -> list[RuleGroup]:
        from alerter.errors import RuleFileError

        try:
            return load_files(loaded.config.alerting.rule_files, loaded.base_dir)
        except RuleFileError as exc:
            raise ConfigError(str(exc), [("alerting.rule_files", p) for p in exc.problems]) from exc

    def _install(self, rule_groups: list[RuleGroup], previous: list[_Group] | None) -> None:
        alerting = self.loaded.config.alerting
        old = {g.rules.key: g for g in previous or []}
        now = self.clock()
        held: dict[tuple[LabelMatcher, ...], int] = {}
        for pg in previous or []:
            if pg.not_before_ms > now:
                continue  # its windows are still filling: they hold nothing to count on
            for sel in pg.selectors:
                held[sel.matchers] = max(held.get(sel.matchers, 0), sel.history_ms)
        groups: list[_Group] = []
        every: list[Selector] = []
        for rg in rule_groups:
            sels = [s for r in rg.rules for s in selectors_of(r.expr, lookback_ms=LOOKBACK_MS)]
            every += sels
            evaluator = GroupEvaluator(
                rg,
                default_interval_s=alerting.evaluation_interval,
                resend_delay_s=alerting.resend_delay,
                external_labels=alerting.external_labels,
                external_url=alerting.external_url,
            )
            digest = hashlib.sha256(rg.key.encode()).hexdigest()[:16]
            g = _Group(
                rules=rg,
                evaluator=evaluator,
                selectors=sels,
                history_ms=max((s.history_ms for s in sels), default=0),
                kv_key=hosttoken.encode(rg.key),
                agent_id=f"alerter-{digest}",
                status=GroupStatus(
                    rg, interval_s=evaluator.interval_ms / 1000, position=len(groups)
                ),
            )
            prev = old.get(rg.key)
            if prev is not None:
                g.status.carry(prev.status)
                evaluator.restore(prev.evaluator.to_dict())
                g.last_eval_ms, g.saved, g.fingerprints = (
                    prev.last_eval_ms,
                    prev.saved,
                    prev.fingerprints,
                )
            if previous is not None:
                self._hold_back(g, prev, held, now)
            groups.append(g)
        self.groups = groups
        wanted = {s.matchers for s in every}
        self._reload_ranges = {m: p for m, p in self._reload_ranges.items() if m in wanted}
        self.store.set_selectors(every)
        self._clear_routes()
        self._up_wanted.clear()

    def _hold_back(
        self,
        g: _Group,
        prev: _Group | None,
        held: dict[tuple[LabelMatcher, ...], int],
        now_ms: int,
    ) -> None:
        """After a reload: hold ``g`` back while a selector's window is new or longer.

        Such a window holds only what the old rules kept: the group waits until
        the live stream covers it (``not_before_ms``) or, sooner, until the
        missing part (``_fresh``: from the window's start up to where the old
        window began, or up to now for a selector not held at all) is filled
        from the stream and the database (``_plan_reload``).
        """
        new = [s for s in g.selectors if held.get(s.matchers, -1) < s.history_ms]
        if not new or self._js is None:
            return  # not started: the start's replay covers every window
        if (
            prev is not None
            and prev.not_before_ms > now_ms
            and prev.history_ms >= g.history_ms
            and {s.matchers for s in g.selectors} <= {s.matchers for s in prev.selectors}
        ):
            # the same group reloaded while it waits: its windows keep filling, so does its wait
            g.not_before_ms, g.pending = prev.not_before_ms, set(prev.pending)
            return
        g.not_before_ms = now_ms + g.history_ms
        for s in new:
            g.pending.add(s.matchers)
            old = held.get(s.matchers)
            start, end = now_ms - s.history_ms, now_ms if old is None else now_ms - old
            have = self._fresh.get(s.matchers)
            if have is not None:
                start, end = min(start, have[0]), max(end, have[1])
            until = max(g.not_before_ms, have[2] if have is not None else 0)
            self._fresh[s.matchers] = (start, end, until)

    async def _plan_reload(self) -> None:
        """Fill what a reload's new windows miss: the stream's part by a replay, the rest
        from the database, as at start (``_fresh`` empties into ``_replaying``,
        ``_reload_ranges``, or ``_unreadable`` without a database).
        """
        fresh, self._fresh = self._fresh, {}
        js = self._js
        if not fresh or js is None:
            return
        now = self.clock()
        max_replay_ms = round(self.settings.max_replay * 1000)
        replay_from = max(min(start for start, _, _ in fresh.values()), now - max_replay_ms)
        try:
            first = await self._history_start(js, replay_from)
        except Exception as exc:  # noqa: BLE001 - then the database is asked for all of it
            log.warning(
                "cannot read the metrics stream's state, reloaded windows wait for the database",
                error=str(exc) or type(exc).__name__,
            )
            first = now
        boundary = max(first, replay_from)
        self._replay_token += 1
        replaying: dict[tuple[LabelMatcher, ...], int] = {}
        for matchers, (start, end, until) in fresh.items():
            if end > boundary:
                replaying[matchers] = until
                self._replaying[matchers] = self._replay_token
            if start >= boundary:
                continue
            if self.history is None:
                self._unreadable[matchers] = max(until, self._unreadable.get(matchers, 0))
                continue
            want = HistoryRange(matchers, start, min(end, boundary))
            have = self._reload_ranges.get(matchers)
            if have is not None:
                want = HistoryRange(
                    matchers,
                    min(want.start_ms, have[0].start_ms),
                    max(want.end_ms, have[0].end_ms),
                )
            self._reload_ranges[matchers] = (want, max(until, have[1] if have else 0))
        if replaying:
            task = asyncio.create_task(self._replay_recent(replaying, boundary, self._replay_token))
            self._tasks = [t for t in self._tasks if not t.done()]
            self._tasks.append(task)

    async def _replay_recent(
        self, wanted: dict[tuple[LabelMatcher, ...], int], from_ms: int, token: int
    ) -> None:
        """Replay the stream from ``from_ms`` into the windows of the selectors ``wanted``."""
        js = self._js
        if js is None:
            return
        collector = SeriesCollector([Selector(m, 0) for m in wanted])
        own = self.names.metrics(self.settings.self_host)

        def handle(subject: str, data: bytes) -> None:
            if subject == own:
                return
            try:
                host = self.names.host_from_metrics_subject(subject)
                batch = self._decode(data)
            except Exception:  # noqa: BLE001 - the live consumer counted and logged it
                return
            collector.add(host, batch)

        try:
            count = await replay(
                js,
                self.names.metrics_wildcard,
                from_ms,
                handle,
                timeout_s=self.settings.history_timeout,
            )
        except ReplayError as exc:
            log.warning(
                "cannot replay the metrics stream for reloaded rules, they wait until the live "
                "stream covers their windows",
                error=str(exc),
            )
            async with self._lock:
                for matchers, until in wanted.items():
                    if self._replaying.get(matchers) == token:
                        del self._replaying[matchers]
                        self._unreadable[matchers] = max(until, self._unreadable.get(matchers, 0))
            return
        async with self._lock:
            series = collector.series()
            added = sum(
                self.store.merge(s.labels, s.timestamps_ms, s.values, self.clock()) for s in series
            )
            for matchers in wanted:
                if self._replaying.get(matchers) == token:
                    del self._replaying[matchers]
            warmed = self._settled()
        log.info(
            "reloaded rule windows warmed from the metrics stream",
            batches=count,
            series=len(series),
            samples=added,
            groups=warmed,
        )

    def _settled(self) -> list[str]:
        """Warm the reloaded groups nothing is read for any more; returns their names.

        Call with the lock held, after samples were merged into the windows: the
        routes are recomputed and every group is made due.
        """
        now = self.clock()
        self._unreadable = {m: u for m, u in self._unreadable.items() if u > now}
        waiting = self._reload_ranges.keys() | self._replaying.keys() | self._unreadable.keys()
        warmed = []
        for g in self.groups:
            if g.pending:
                g.pending &= waiting
                if not g.pending:
                    g.not_before_ms = 0
                    warmed.append(g.rules.name)
        self._clear_routes()
        due = self._round_up(now)
        for g in self.groups:
            g.due_ms = max(g.due_ms or 0, due)
        self._wake.set()
        return warmed

    async def _apply(self, new: LoadedConfig) -> None:
        rule_groups = self._load_groups(new)  # raises: the Reloader keeps the old rules
        async with self._lock:
            self.loaded = new
            self._install(rule_groups, previous=self.groups)
            await self._sync_status()
            await self._plan_reload()
            self._start_history_load()
        held = [g.rules.name for g in self.groups if g.not_before_ms > self.clock()]
        log.info("rules loaded", groups=len(self.groups), held_back=held)
        if self._unreadable:
            log.warning(
                "no database configured, reloaded groups whose new or longer windows reach "
                "before the metrics stream's history wait until the live stream covers them",
                groups=held,
            )

    # ------------------------------------------------------------------ lifecycle

    @property
    def admin_port(self) -> int:
        return self.admin.port

    def ready(self) -> bool:
        return self._caught_up

    def _window_ms(self) -> int:
        longest = max((g.history_ms for g in self.groups), default=LOOKBACK_MS)
        return min(longest, round(self.settings.max_replay * 1000))

    async def start(self) -> None:
        cfg = self.loaded.config
        self._nc = await connect(
            cfg.nats, name="vigil-alerter", base_dir=self.loaded.base_dir, wait=30
        )
        js = self._js = self._nc.jetstream()
        await provision(js, cfg.nats)
        self._kv_state = await js.key_value(self.names.kv_alert_state)
        self._kv_agents = await js.key_value(self.names.kv_agents)
        await self._restore_state()
        await self._restore_agents()
        await self._sync_status()

        now = self.clock()
        replay_from = now - self._window_ms()
        self._covered_from_ms = await self._history_start(js, replay_from)
        self._stream_from_ms = max(self._covered_from_ms, replay_from)
        sub = await js.subscribe(
            self.names.metrics_wildcard,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=datetime.fromtimestamp(replay_from / 1000, UTC),
            ),
        )
        last_seq = catch_up_seq(await sub.consumer_info())
        if last_seq is None:
            self._set_caught_up()
        else:
            self._catch_up_seq = last_seq
        status_sub = await self._nc.subscribe(self.names.alertstatus, cb=self._on_status)
        self._tasks = [
            asyncio.create_task(self._consume(sub)),
            asyncio.create_task(self._eval_loop()),
        ]
        self._status_sub = status_sub
        if self._history_ranges(now) and self.history is None:
            log.warning(
                "no database configured, rules whose window reaches before the metrics "
                "stream's history wait until the stream covers it",
                stream_from_ms=self._stream_from_ms,
            )
        self._start_history_load()
        await self.admin.start()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self.reloader.install_sighup()
        log.info(
            "alerter started",
            admin_port=self.admin.port,
            groups=len(self.groups),
            replay_s=round((now - replay_from) / 1000, 3),
        )

    async def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake.set()
        await cancel_all(self._tasks)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        with contextlib.suppress(Exception):
            self.reloader.remove_sighup()
        await self.admin.stop()
        await close_nats(self._nc)
        log.info("alerter stopped")

    async def _history_start(self, js: JetStreamContext, replay_from: int) -> int:
        """Where the stream's history starts, 0 when it covers all since ``replay_from``.

        A stream that never lost a message (first sequence 1) holds all there was;
        otherwise its first message's time is where the data begins.
        """
        state = (await js.stream_info(self.names.stream_metrics)).state
        if state.first_seq <= 1 or state.messages == 0:
            return 0
        try:
            first = await js.get_msg(self.names.stream_metrics, seq=state.first_seq)
        except Exception:  # noqa: BLE001 - removed meanwhile: the next one is newer still
            return self.clock()
        if first.time is None:
            return 0
        first_ms = int(first.time.timestamp() * 1000)
        return 0 if first_ms <= replay_from else first_ms

    @staticmethod
    def _history_source(loaded: LoadedConfig) -> HistorySource | None:
        settings = loaded.config.alerter
        url = configured_database_url(loaded.config.storage)
        if not settings.history_from_database or not url:
            return None
        return DatabaseHistory(
            url, exclude_host=settings.self_host, timeout_s=settings.history_timeout
        )

    def _start_history_load(self) -> None:
        """Start ``_load_history`` when something is to be read and it is not running."""
        source = self.history
        if source is None or self._js is None or self._stopping.is_set():
            return
        if self._history_task is not None and not self._history_task.done():
            return  # it reads what was added before it finishes
        if not self._history_ranges(self.clock()):
            return
        self._tasks = [t for t in self._tasks if not t.done()]
        self._history_task = asyncio.create_task(self._load_history(source))
        self._tasks.append(self._history_task)

    def _history_ranges(self, now_ms: int) -> list[HistoryRange]:
        """What the windows miss: the start's part (below) and what reloads added.

        A reload's range is dropped once the live stream alone covers it.
        """
        for matchers, (_, until) in list(self._reload_ranges.items()):
            if now_ms >= until:
                del self._reload_ranges[matchers]
        reload = [r for r, _ in self._reload_ranges.values()]
        if not self._start_pending:
            return reload
        start = self._start_ranges(now_ms)
        if not start:
            self._start_pending = False
        return start + reload

    def _start_ranges(self, now_ms: int) -> list[HistoryRange]:
        """What the windows miss before the stream's start: per selector, start to boundary."""
        boundary = self._stream_from_ms
        longest: dict[tuple[Any, ...], int] = {}
        for g in self.groups:
            for sel in g.selectors:
                longest[sel.matchers] = max(longest.get(sel.matchers, 0), sel.history_ms)
        return [
            HistoryRange(matchers, now_ms - history, boundary)
            for matchers, history in longest.items()
            if now_ms - history < boundary
        ]

    async def _load_history(self, source: HistorySource) -> None:
        """Warm the windows from the database; retried until it answers or is not needed.

        Runs until nothing is left to read: a reload while it reads adds ranges
        that the next round reads.
        """
        retry_s = self.settings.history_retry
        failing = False
        while not self._stopping.is_set():
            now = self.clock()
            ranges = self._history_ranges(now)
            if not ranges:
                if failing:
                    log.info("rule windows warm from the stream alone, database not needed")
                return
            with_start = self._start_pending
            asked = {m: r for m, (r, _) in self._reload_ranges.items()}
            try:
                history = await source.read(ranges)
            except Exception as exc:  # noqa: BLE001 - whatever fails, hold back and retry
                self.metrics.history_failures.inc()
                if not failing:
                    error = str(exc) if isinstance(exc, HistoryError) else f"BUG: {exc!r}"
                    log.warning(
                        "cannot warm rule windows from the database, will retry",
                        error=error,
                        retry_s=retry_s,
                        # rules reaching before it wait; 0: none wait (windows past max_replay
                        # are evaluated with what they hold, as without a database)
                        stream_from_ms=self._covered_from_ms,
                    )
                failing = True
                await asyncio.sleep(retry_s)
                continue
            async with self._lock:
                added = sum(
                    self.store.merge(s.labels, s.timestamps_ms, s.values, self.clock())
                    for s in history
                )
                start = min(r.start_ms for r in ranges)
                if self._covered_from_ms:
                    self._covered_from_ms = min(self._covered_from_ms, start)
                if with_start:
                    self._start_pending = False
                warmed = self._reload_read(asked)
            self.metrics.history_samples.inc(added)
            log.info(
                "rule windows warmed from the database",
                selectors=len(ranges),
                series=len(history),
                samples=added,
                recovered=failing,
                reloaded_groups=warmed,
            )
            failing = False

    def _reload_read(self, asked: dict[tuple[LabelMatcher, ...], HistoryRange]) -> list[str]:
        """Forget the reload ranges ``asked`` covers; returns the groups that are warm now.

        A range a reload widened while it was read stays, for the next round.
        """
        for matchers, done in asked.items():
            have = self._reload_ranges.get(matchers)
            if have is not None and (
                have[0].start_ms >= done.start_ms and have[0].end_ms <= done.end_ms
            ):
                del self._reload_ranges[matchers]
        return self._settled()

    def _set_caught_up(self) -> None:
        if not self._caught_up:
            self._caught_up = True
            self.metrics.warm.set(1)
            log.info("replay caught up, evaluating")
            for g in self.groups:
                g.due_ms = max(g.due_ms or 0, self._round_up(self.clock()))
            self._wake.set()

    # ------------------------------------------------------------------ restore

    async def _restore_state(self) -> None:
        kv = self._kv_state
        if kv is None:
            return
        for g in self.groups:
            try:
                entry = await kv.get(g.kv_key)
            except (KeyNotFoundError, NotFoundError):
                continue
            if not entry.value:
                continue
            try:
                doc = json.loads(entry.value)
                g.evaluator.restore(doc)
                g.last_eval_ms = int(doc.get("eval_ms", 0))
                self.statuses.update(doc.get("statuses") or {})
                g.saved = json.dumps(g.evaluator.to_dict(), sort_keys=True)
            except Exception as exc:  # noqa: BLE001 - a bad saved state must not stop the start
                log.warning(
                    "cannot restore alert state, starting empty", group=g.rules.key, error=str(exc)
                )

    async def _sync_status(self) -> None:
        """Make the status documents match the loaded rules (see the module docstring)."""
        kv = self._kv_state
        if kv is None:
            return
        try:
            keys = [k for k in await kv.keys() if k.startswith(RULE_STATUS_PREFIX)]
        except NoKeysError:
            keys = []
        except Exception as exc:  # noqa: BLE001 - the next evaluations write the documents
            log.warning("cannot list rule status documents", error=str(exc) or repr(exc))
            return
        wanted = {g.status.key: g for g in self.groups}
        for key in keys:
            if key not in wanted:
                try:
                    await kv.delete(key)
                except Exception as exc:  # noqa: BLE001 - web shows it until the next sync
                    self.metrics.publish_errors.labels("status").inc()
                    log.warning("cannot delete KV", key=key, error=str(exc) or repr(exc))
        for key, g in wanted.items():
            if g.status.written_ms is not None:
                continue  # this process wrote it for these rules (a pending write follows)
            doc: Any = None
            if key in keys:
                with contextlib.suppress(Exception):
                    doc = json.loads((await kv.get(key)).value or b"null")
            if isinstance(doc, dict) and g.status.restore(doc):
                continue
            await self._write_status(g, self.clock())

    async def _write_status(self, g: _Group, now_ms: int) -> None:
        if self._kv_state is None:
            return
        g.status.written(now_ms)
        await self._kv_put(self._kv_state, g.status.key, g.status.document(), "status")

    async def _flush_status(self) -> None:
        """Write the status documents whose debounce has passed."""
        now = self.clock()
        interval = self._status_interval_ms()
        async with self._lock:
            for g in self.groups:
                if g.status.due(now, interval):
                    await self._write_status(g, now)

    def _status_interval_ms(self) -> int:
        return max(1, round(self.settings.status_write_interval * 1000))

    async def _restore_agents(self) -> None:
        kv = self._kv_agents
        if kv is None:
            return
        try:
            keys = await kv.keys()
        except Exception:  # noqa: BLE001 - nats-py raises NoKeysError on an empty bucket
            return
        for key in keys:
            try:
                entry = await kv.get(key)
                doc = json.loads(entry.value or b"{}")
                host = hosttoken.decode(key)
                self.hosts[host] = [int(doc["first_seen_ms"]), int(doc["last_seen_ms"]), 0]
            except Exception as exc:  # noqa: BLE001 - one bad entry is skipped
                log.warning("cannot read agent entry, skipping it", key=key, error=str(exc))

    # ------------------------------------------------------------------ input

    async def _on_status(self, msg: Msg) -> None:
        try:
            status = decode_message(msg.data, AlertStatus)
        except (DecodeError, ValueError):
            return
        self.statuses[status.fingerprint] = status.model_dump(mode="json", by_alias=True)

    async def _consume(self, sub: Any) -> None:
        """Ingest the metrics stream until cancelled (or the connection is closed for good).

        ``next_msg`` rather than ``sub.messages``: nats-py answers the server's flow
        control of an ordered consumer as soon as ``next_msg`` hands over the message
        before it, whereas under ``messages`` only a poll every 250 ms does, which
        held the replay to about 1,400 batches/s whatever their size.
        """
        own = self.names.metrics(self.settings.self_host)
        while True:
            try:
                msg = await sub.next_msg(timeout=None)
            except ConnectionClosedError:
                return
            try:
                if msg.subject != own:
                    self.ingest(msg.subject, msg.data)
            except Exception as exc:  # noqa: BLE001 - whatever arrives, keep consuming
                self.metrics.batches_invalid.labels("malformed").inc()
                log.warning(
                    "cannot use batch, skipping it",
                    subject=msg.subject[:200],
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )
            if not self._caught_up and reached(msg, self._catch_up_seq):
                self._set_caught_up()

    def ingest(self, subject: str, data: bytes) -> None:
        """Decode one batch, store the samples rules select, mark the groups it feeds due."""
        try:
            host = self.names.host_from_metrics_subject(subject)
            batch = self._decode(data)
        except DecodeError as exc:
            self.metrics.batches_invalid.labels(exc.reason or "malformed").inc()
            log.warning(
                "cannot decode batch, skipping it", subject=subject[:200], error=str(exc)[:300]
            )
            return
        self.metrics.batches.inc()
        if not len(batch):
            return
        store = self.store
        routes = self._routes_of(host, batch)
        newest = max(batch.timestamps_ms)
        now = self.clock()
        due: set[int] = set()
        for pos, ts, value in zip(
            batch.series_index, batch.timestamps_ms, batch.values, strict=True
        ):
            win, groups = routes[pos]
            if win is not None:
                store.append(win, ts, value, now)
                due.update(groups)
        self._seen(host, newest)
        for i in due:
            g = self.groups[i]
            g.due_ms = max(g.due_ms or 0, self._round_up(newest))
        if due and self._caught_up:
            self._wake.set()

    def _decode(self, data: bytes) -> MetricBatch:
        if self._decoder is None:
            return decode_batch(data, limits=self.loaded.config.nats.limits, now_ms=self.clock())
        return self._decoder.decode(data, now_ms=self.clock())

    def _routes_of(self, host: str, batch: MetricBatch) -> list[_Route]:
        """The route of each series of ``batch``; once per host and table the decoder keeps."""
        table = batch.series_key
        if table is None:
            return [self._route_of(host, desc) for desc in batch.series]
        key = (host, table)
        routes = self._table_routes.get(key)
        if routes is None:
            routes = [self._route_of(host, desc) for desc in batch.series]
            if self._table_routes_series + len(routes) > self.settings.table_cache_series:
                self._table_routes.clear()  # bounded as the decoder's tables are
                self._table_routes_series = 0
            self._table_routes[key] = routes
            self._table_routes_series += len(routes)
        return routes

    def _clear_routes(self) -> None:
        """Forget the cached routes (the windows or the groups changed)."""
        self._route.clear()
        self._table_routes.clear()
        self._table_routes_series = 0

    def _route_of(self, host: str, desc: SeriesDesc) -> _Route:
        key = (host, desc.name, tuple(desc.labels.items()))
        hit = self._route.get(key)
        if hit is not None:
            return hit
        labels = {**desc.labels, "host": host, "__name__": desc.name}
        if not self.store.wanted(labels):
            route: _Route = (None, ())
        else:
            groups = tuple(
                i for i, g in enumerate(self.groups) if any(s.matches(labels) for s in g.selectors)
            )
            route = (self.store.window(labels), groups)
        if len(self._route) >= _ROUTE_CACHE_MAX:
            self._route.clear()
        self._route[key] = route
        return route

    def _round_up(self, t_ms: int) -> int:
        res = max(1, round(self.settings.eval_resolution * 1000))
        return -(-t_ms // res) * res

    def _seen(self, host: str, data_ms: int) -> None:
        entry = self.hosts.get(host)
        if entry is None:
            entry = self.hosts[host] = [data_ms, data_ms, 0]
        entry[1] = max(entry[1], data_ms)
        wall = self.clock()
        if (
            self._kv_agents is not None
            and wall - entry[2] >= self.settings.agents_write_interval * 1000
        ):
            entry[2] = wall
            doc = {"host": host, "first_seen_ms": entry[0], "last_seen_ms": entry[1]}
            self._spawn(self._kv_put(self._kv_agents, hosttoken.encode(host), doc, "agents"))

    # ------------------------------------------------------------------ evaluation

    async def _eval_loop(self) -> None:
        debounce = self.settings.debounce
        while not self._stopping.is_set():
            timeout = max(0.0, (self._next_tick_ms() - self.clock()) / 1000)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            if self._wake.is_set() and debounce > 0:
                await asyncio.sleep(debounce)
            self._wake.clear()
            try:
                await self.evaluate_due()
                await self._flush_status()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must keep running
                log.error("BUG: cannot evaluate rules", error=repr(exc))
                await asyncio.sleep(1.0)
            if time.monotonic() - self._last_gc >= GC_EVERY_S:
                self._gc()

    def _next_tick_ms(self) -> int:
        now = self.clock()
        ticks = [now - now % g.evaluator.interval_ms + g.evaluator.interval_ms for g in self.groups]
        interval = self._status_interval_ms()
        ticks += [
            t for g in self.groups if (t := g.status.due_at(interval)) is not None and t > now
        ]
        return min(ticks, default=now + 1000)

    async def evaluate_due(self) -> None:
        """Evaluate every group that a batch made due, or whose tick has come."""
        if not self._caught_up:
            return
        now = self.clock()
        async with self._lock:
            for g in self.groups:
                tick = now - now % g.evaluator.interval_ms
                at: int | None = None
                if g.due_ms is not None:
                    at = g.due_ms
                elif g.last_eval_ms < tick:
                    at = tick
                g.due_ms = None
                if at is None:
                    continue
                at = max(at, g.last_eval_ms)
                if not self._warm(g, now):
                    continue
                await self._evaluate(g, at)

    def _warm(self, g: _Group, now_ms: int) -> bool:
        return now_ms >= g.not_before_ms and now_ms - g.history_ms >= self._covered_from_ms

    def _synthesize_up(self, at_ms: int) -> None:
        timeout_ms = round(self.settings.up_timeout * 1000)
        for host, (_first, last, _w) in self.hosts.items():
            if host in self._up_wanted:
                win = self._up_wanted[host]
            else:
                labels = {"__name__": "up", "host": host, "instance": host, "job": "vigil-agent"}
                win = self.store.window(labels) if self.store.wanted(labels) else None
                self._up_wanted[host] = win
            if win is not None:
                value = 1.0 if at_ms - last <= timeout_ms else 0.0
                self.store.append(win, at_ms, value, at_ms)

    async def _evaluate(self, g: _Group, at_ms: int) -> None:
        self._synthesize_up(at_ms)
        started = time.perf_counter()
        query = engine_query(self.engine)
        result = await g.evaluator.evaluate(at_ms, query, self.store)
        took = time.perf_counter() - started
        self.metrics.eval_seconds.labels(g.rules.name).observe(took)
        g.status.record(at_ms, took, result.runs)
        self._log_errors(g, result.errors)
        alerting = self.loaded.config.alerting
        for rule, send in result.sends:
            event = build_event(
                send,
                rule.expr,
                external_url=alerting.external_url,
                external_labels=alerting.external_labels,
            )
            g.fingerprints.add(event.fingerprint)
            msg_id = event_msg_id(event, at_ms, g.evaluator.interval_ms)
            await self._publish(
                self.names.alerts(g.rules.name), encode_message(event), msg_id, "event"
            )
            self.metrics.events.labels(event.status).inc()
        if result.written:
            self._spawn(self._publish_series(g, at_ms, result.written))
        state = g.evaluator.to_dict()
        saved = json.dumps(state, sort_keys=True)
        if saved != g.saved and self._kv_state is not None:
            g.saved = saved
            statuses = {fp: self.statuses[fp] for fp in g.fingerprints if fp in self.statuses}
            doc = {**state, "eval_ms": at_ms, "statuses": statuses}
            await self._kv_put(self._kv_state, g.kv_key, doc, "state")
        # set once its events are out and its state saved: "evaluated at" means all done
        g.last_eval_ms = at_ms
        wall = self.clock()
        if g.status.due(wall, self._status_interval_ms()):
            await self._write_status(g, wall)

    def _log_errors(self, g: _Group, errors: dict[str, str]) -> None:
        for name, error in errors.items():
            self.metrics.eval_failures.labels(g.rules.name).inc()
            if name not in g.failing:
                log.warning("cannot evaluate rule", group=g.rules.name, rule=name, error=error)
        for name in g.failing - errors.keys():
            log.info("rule evaluates again", group=g.rules.name, rule=name)
        g.failing = set(errors)

    async def _publish(self, subject: str, payload: bytes, msg_id: str, what: str) -> None:
        if self._js is None:
            return
        try:
            await self._js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        except Exception as exc:  # noqa: BLE001 - counted; the resend repairs a lost event
            self.metrics.publish_errors.labels(what).inc()
            log.warning("cannot publish", subject=subject, error=str(exc) or type(exc).__name__)

    async def _publish_series(self, g: _Group, at_ms: int, written: list[Any]) -> None:
        series: list[SeriesDesc] = []
        index: dict[tuple[tuple[str, str], ...], int] = {}
        idx: array[int] = array("I")
        ts: array[int] = array("q")
        vals: array[float] = array("d")
        for sample in written:
            labels = {k: v for k, v in sample.labels.items() if k != "__name__"}
            if "host" in labels:
                labels["exported_host"] = labels.pop("host")
            key = (*sorted(labels.items()), ("__name__", sample.labels["__name__"]))
            pos = index.get(key)
            if pos is None:
                pos = index[key] = len(series)
                series.append(SeriesDesc(sample.labels["__name__"], labels))
            idx.append(pos)
            ts.append(sample.t_ms)
            vals.append(sample.value)
        batch = MetricBatch(g.agent_id, at_ms, series, idx, ts, vals)
        await self._publish(
            self.names.metrics(self.settings.self_host), encode_batch(batch), batch.msg_id, "series"
        )

    async def _kv_put(self, kv: KeyValue, key: str, doc: dict[str, Any], what: str) -> None:
        try:
            await kv.put(key, json.dumps(doc, sort_keys=True).encode())
        except Exception as exc:  # noqa: BLE001 - counted; the next change writes again
            self.metrics.publish_errors.labels(what).inc()
            log.warning("cannot write KV", key=key, error=str(exc) or type(exc).__name__)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _gc(self) -> None:
        self.store.gc(self.clock())
        self._clear_routes()
        self._up_wanted.clear()
        self._last_gc = time.monotonic()
        external = self.loaded.config.alerting.external_labels
        for g in self.groups:  # statuses are keyed by event fingerprints (external labels in)
            g.fingerprints = {
                fingerprint(
                    {**{k: v for k, v in external.items() if not a.labels.get(k)}, **a.labels}
                )
                for s in g.evaluator.states.values()
                for a in s.active.values()
            }
        keep = {fp for g in self.groups for fp in g.fingerprints}
        self.statuses = {fp: s for fp, s in self.statuses.items() if fp in keep}
