"""The alerter against a real nats-server: events at data times, restarts, replicas, warm-up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import yaml
from nats.aio.client import Client

from alerter.app import App
from shared.bus.provision import provision
from shared.config.models import NatsConfig
from shared.wire import AlertEvent
from tests.alerter.livehelp import Events, Publisher, make_app, now_ms, until, write_config

HIGH = """
groups:
  - name: g
    rules:
      - alert: High
        expr: temp > 5
        for: {for_}
"""

ABSENT = """
groups:
  - name: g
    rules:
      - alert: TempMissing
        expr: absent(temp{host="web1"})
"""


def _ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def _up(t_ms: int) -> int:
    """The evaluation instant of data at ``t_ms``: rounded up to the 1 s resolution."""
    return -(-t_ms // 1000) * 1000


def _fired(app: App, n: int) -> Callable[[], bool]:
    return lambda: bool(app.metrics.events.labels("firing")._value.get() >= n)


def _invalid(app: App) -> float:
    """Batches skipped as invalid, whatever the reason."""
    return sum(
        s.value
        for m in app.metrics.batches_invalid.collect()
        for s in m.samples
        if s.name.endswith("_total")
    )


def _status(events: list[AlertEvent]) -> list[str]:
    return [e.status for e in events]


async def _evaluated(app: App, t_ms: int) -> None:
    await until(lambda: app.groups[0].last_eval_ms >= _up(t_ms), f"evaluation at {t_ms}")


async def test_threshold_crossing_fires_then_resolves_at_data_times(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    app = make_app(write_config(tmp_path, nats_url, HIGH.format(for_="0s")))
    await app.start()
    events = Events()
    await events.start(nats_client)
    pub = Publisher(nats_client)
    try:
        await until(app.ready, "replay caught up")
        t0 = now_ms()
        await pub.gauge("temp", t0, 1.0)
        await _evaluated(app, t0)
        await pub.gauge("temp", t0 + 1000, 10.0)
        await until(lambda: len(events.events) >= 1, "firing event")
        await pub.gauge("temp", t0 + 2000, 2.0)
        await until(lambda: len(events.events) >= 2, "resolved event")
    finally:
        await app.stop()
        await events.stop()
    firing, resolved = events.events[:2]
    assert _status(events.events[:2]) == ["firing", "resolved"]
    assert firing.labels == {"alertname": "High", "host": "web1"}
    assert _ms(firing.starts_at) == _up(t0 + 1000)
    assert _ms(firing.ends_at) > _up(t0 + 1000)  # ahead: expires by itself if the resolve is lost
    assert _ms(resolved.starts_at) == _up(t0 + 1000)
    assert _ms(resolved.ends_at) == _up(t0 + 2000)


async def test_restart_in_the_middle_of_for_keeps_the_timer(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    config = write_config(tmp_path, nats_url, HIGH.format(for_="3s"))
    events = Events()
    await events.start(nats_client)
    pub = Publisher(nats_client)
    first = make_app(config)
    await first.start()
    try:
        await until(first.ready, "replay caught up")
        t0 = now_ms()
        await pub.gauge("temp", t0, 10.0)  # pending since t0
        await _evaluated(first, t0)
    finally:
        await first.stop()
    second = make_app(config)
    await second.start()
    try:
        await until(second.ready, "second replay caught up")
        assert second.groups[0].evaluator.states["0:High"].alerts()[0].active_at_ms == _up(t0)
        await pub.gauge("temp", t0 + 4000, 10.0)  # 4 s after t0: past `for` only if kept
        await until(lambda: len(events.events) >= 1, "firing event after restart")
    finally:
        await second.stop()
        await events.stop()
    (firing,) = events.events
    assert firing.status == "firing"
    assert _ms(firing.starts_at) == _up(t0 + 4000)


async def test_two_replicas_give_one_event_per_transition(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    config = write_config(tmp_path, nats_url, HIGH.format(for_="0s"))
    apps = [make_app(config), make_app(config)]
    for app in apps:
        await app.start()
    events = Events()
    await events.start(nats_client)
    pub = Publisher(nats_client)
    try:
        for app in apps:
            await until(app.ready, "replay caught up")
        t0 = now_ms()
        for i, value in enumerate((1.0, 10.0, 2.0)):
            await pub.gauge("temp", t0 + 1000 * i, value)
            for app in apps:
                await _evaluated(app, t0 + 1000 * i)
        published = [
            sum(app.metrics.events.labels(s)._value.get() for s in ("firing", "resolved"))
            for app in apps
        ]
        assert published == [2, 2]  # each replica sent both transitions
        await until(lambda: len(events.events) >= 2, "two events")
        info = await nats_client.jetstream().stream_info("VIGIL_ALERTS")
    finally:
        for app in apps:
            await app.stop()
        await events.stop()
    assert info.state.messages == 2
    assert _status(events.events) == ["firing", "resolved"]


async def test_restart_does_not_fire_absent(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    config = write_config(tmp_path, nats_url, ABSENT)
    await provision(nats_client.jetstream(), NatsConfig())
    t0 = now_ms()
    # on the stream before the first start: no evaluation ever sees an empty window
    await Publisher(nats_client).gauge("temp", t0, 20.0)
    first = make_app(config)
    await first.start()
    try:
        await until(first.ready, "replay caught up")
        await _evaluated(first, t0)
    finally:
        await first.stop()
    second = make_app(config)
    await second.start()
    try:
        await until(second.ready, "second replay caught up")
        await until(lambda: second.groups[0].last_eval_ms > t0, "evaluation after restart")
        assert second.store.series_count == 1  # the replay refilled the window
    finally:
        await second.stop()
    info = await nats_client.jetstream().stream_info("VIGIL_ALERTS")
    assert info.state.messages == 0


async def test_bad_batch_is_counted_and_skipped(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    app = make_app(write_config(tmp_path, nats_url, HIGH.format(for_="0s")))
    await app.start()
    events = Events()
    await events.start(nats_client)
    try:
        await until(app.ready, "replay caught up")
        await nats_client.jetstream().publish("vigil.metrics.web1", b"\xc1not msgpack")
        await until(lambda: _invalid(app) >= 1, "bad batch counted")
        await Publisher(nats_client).gauge("temp", now_ms(), 10.0)
        await until(lambda: len(events.events) >= 1, "firing after a bad batch")
    finally:
        await app.stop()
        await events.stop()


async def test_replicas_grouping_batches_differently_still_publish_one_event_each(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    apps = []
    for name, debounce in (("fast", "0s"), ("slow", "400ms")):
        folder = tmp_path / name
        folder.mkdir()
        config = write_config(folder, nats_url, HIGH.format(for_="0s"))
        doc = yaml.safe_load(config.read_text())
        doc["alerter"]["debounce"] = debounce
        config.write_text(yaml.safe_dump(doc))
        apps.append(make_app(config))
    for app in apps:
        await app.start()
    events = Events()
    await events.start(nats_client)
    try:
        for app in apps:
            await until(app.ready, "replay caught up")
        t = (now_ms() // 1000 + 1) * 1000 + 100  # both samples in one second
        fast = apps[0]
        await Publisher(nats_client, "web1").gauge("temp", t, 10.0)
        # the fast replica evaluates web1 alone; the slow one is still in its debounce
        await until(_fired(fast, 1), "web1 fires")
        await Publisher(nats_client, "web2").gauge("temp", t + 300, 10.0)
        for app in apps:
            await until(_fired(app, 2), "both hosts firing on each replica")
        await until(lambda: len(events.events) >= 2, "two events")
        info = await nats_client.jetstream().stream_info("VIGIL_ALERTS")
    finally:
        for app in apps:
            await app.stop()
        await events.stop()
    assert info.state.messages == 2
    assert sorted(e.labels["host"] for e in events.events) == ["web1", "web2"]


async def test_stream_that_lost_its_history_holds_rules_back(
    tmp_path: Path, nats_url: str, nats_client: Client
) -> None:
    pub = Publisher(nats_client)
    await provision(nats_client.jetstream(), NatsConfig())
    await pub.gauge("temp", now_ms() - 1000, 20.0)
    await nats_client.jetstream().purge_stream("VIGIL_METRICS")  # limits removed old data
    await pub.gauge("other", now_ms(), 1.0)
    app = make_app(write_config(tmp_path, nats_url, ABSENT))
    await app.start()
    try:
        await until(app.ready, "replay caught up")
        assert app._covered_from_ms > 0
        await app.evaluate_due()
        assert app.groups[0].last_eval_ms == 0  # absent(temp) would fire on a partial window
    finally:
        await app.stop()
