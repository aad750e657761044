"""Warm start from TimescaleDB for rule windows longer than the metrics stream holds.

Real nats-server and real TimescaleDB (ingest's schema, rows written the way
ingest writes them). The stream has lost its older messages (purged, so its
first sequence is past 1), holding only the last 25 minutes of data; the
database holds the 2 hours before, overlapping the stream by 5 minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import yaml
from nats.aio.client import Client

from alerter.app import App
from alerter.errors import HistoryError
from alerter.warmdb import DatabaseHistory, HistoryRange
from ingest.prepare import prepare_database
from ingest.seriesid import series_hash
from shared.bus.provision import provision
from shared.config.models import NatsConfig, StorageConfig
from shared.promql.storage import LabelMatcher
from tests.alerter.livehelp import Events, Publisher, make_app, now_ms, until, write_config
from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.timescale import run_sync

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN = 60_000

RULES = """
groups:
  - name: long
    rules:
      - alert: TempHighOver2h
        expr: avg_over_time(temp{host="web1"}[2h]) > 5
        annotations:
          value: "{{ $value }}"
      - alert: RareMissing
        expr: absent_over_time(rare{host="web1"}[1h])
"""


def value_at(k: int) -> float:
    """The sample k minutes before the base time: 1 in the last 20 minutes, 10 before."""
    return 1.0 if k < 20 else 10.0


@pytest.fixture(scope="module")
def migrated_db(timescale_db: str) -> str:
    run_sync(prepare_database(timescale_db, StorageConfig()))
    return timescale_db


@pytest.fixture
def db_proxy(migrated_db: str) -> Iterator[tuple[FaultProxy, str]]:
    """A fault proxy in front of the database, and the database URL through it."""
    parts = urlsplit(migrated_db)
    proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    netloc = parts.netloc.rpartition("@")
    userinfo = netloc[0] + "@" if netloc[1] else ""
    try:
        yield proxy, urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{proxy.port}"))
    finally:
        proxy.stop()


async def _store_series(
    url: str, metric: str, labels: dict[str, str], points: list[tuple[int, float]]
) -> None:
    conn = await asyncpg.connect(url)
    try:
        sid = await conn.fetchval(
            "INSERT INTO series (metric, labels, hash) VALUES ($1, $2::jsonb, $3)"
            " ON CONFLICT (hash) DO UPDATE SET last_seen = now() RETURNING id",
            metric,
            json.dumps(dict(sorted(labels.items()))),
            series_hash(metric, labels),
        )
        await conn.execute("DELETE FROM samples WHERE series_id = $1", sid)
        await conn.execute(
            "INSERT INTO samples (time, series_id, value)"
            " SELECT t, $1, v FROM unnest($2::timestamptz[], $3::float8[]) AS u(t, v)",
            sid,
            [EPOCH + timedelta(milliseconds=t) for t, _ in points],
            [v for _, v in points],
        )
    finally:
        await conn.close()


async def _history_setup(url: str, nats_client: Client) -> int:
    """DB: temp 20..115 min ago, rare 40 min ago; stream: temp 0..25 min ago. Returns base."""
    base = now_ms() // MIN * MIN
    db_points = [(base - k * MIN, value_at(k)) for k in range(115, 19, -1)]
    await _store_series(url, "temp", {"host": "web1"}, db_points)
    await _store_series(url, "rare", {"host": "web1"}, [(base - 40 * MIN, 1.0)])
    await provision(nats_client.jetstream(), NatsConfig())
    pub = Publisher(nats_client)
    await pub.gauge("temp", base - 200 * MIN, 10.0)
    await nats_client.jetstream().purge_stream("VIGIL_METRICS")  # limits removed old data
    for k in range(25, -1, -1):
        await pub.gauge("temp", base - k * MIN, value_at(k))
    return base


def _config(tmp_path: Path, nats_url: str, database_url: str) -> Path:
    path = write_config(tmp_path, nats_url, RULES)
    doc = yaml.safe_load(path.read_text())
    doc["storage"] = {"database_url": database_url}
    doc["alerter"]["history_retry"] = "200ms"
    doc["alerter"]["history_timeout"] = "5s"
    path.write_text(yaml.safe_dump(doc))
    return path


async def _temp_count(app: App) -> int:
    (series,) = await app.store.select(
        [LabelMatcher("__name__", "=", "temp")], 0, now_ms() + 3_600_000
    )
    return len(series.timestamps_ms)


EXPECTED_COUNT = 116  # minutes 0..115, the 6 in both sources once
EXPECTED_AVG = (20 * 1.0 + 96 * 10.0) / EXPECTED_COUNT


async def test_long_window_is_warm_at_once_from_database_and_stream(
    tmp_path: Path, nats_url: str, nats_client: Client, migrated_db: str
) -> None:
    await _history_setup(migrated_db, nats_client)
    app = make_app(_config(tmp_path, nats_url, migrated_db))
    events = Events()
    await events.start(nats_client)
    await app.start()
    try:
        await until(app.ready, "replay caught up")
        await until(lambda: len(events.events) >= 1, "firing from the 2h window at start")
        assert await _temp_count(app) == EXPECTED_COUNT
        assert app.groups[0].last_eval_ms > 0
        # new to the windows: temp 20..115 min and rare, less those the replay brought first
        assert 96 + 1 - 6 <= app.metrics.history_samples._value.get() <= 96 + 1
    finally:
        await app.stop()
        await events.stop()
    (event,) = events.events  # RareMissing did not fire: its sample is in the database
    assert event.status == "firing"
    assert event.labels["alertname"] == "TempHighOver2h"
    assert float(event.annotations["value"]) == pytest.approx(EXPECTED_AVG)


async def test_database_down_holds_rules_back_until_it_answers(
    tmp_path: Path,
    nats_url: str,
    nats_client: Client,
    migrated_db: str,
    db_proxy: tuple[FaultProxy, str],
) -> None:
    proxy, url = db_proxy
    await _history_setup(migrated_db, nats_client)
    proxy.cut()
    app = make_app(_config(tmp_path, nats_url, url))
    events = Events()
    await events.start(nats_client)
    await app.start()
    try:
        await until(app.ready, "replay caught up")
        await until(lambda: app.metrics.history_failures._value.get() >= 1, "a failed read")
        await app.evaluate_due()
        # held back: a partial window would fire RareMissing (its sample is only in the DB)
        assert app.groups[0].last_eval_ms == 0
        assert app._covered_from_ms > 0
        proxy.restore()
        await until(lambda: len(events.events) >= 1, "firing once the database answers")
        assert await _temp_count(app) == EXPECTED_COUNT
    finally:
        await app.stop()
        await events.stop()
    assert [e.labels["alertname"] for e in events.events] == ["TempHighOver2h"]


async def test_history_read_selects_only_the_range_and_series_asked(migrated_db: str) -> None:
    base = now_ms() // MIN * MIN
    points = [(base - k * MIN, float(k)) for k in range(10, -1, -1)]
    await _store_series(migrated_db, "load", {"host": "a", "cpu": "0"}, points)
    await _store_series(migrated_db, "load", {"host": "b"}, points)
    await _store_series(migrated_db, "load", {"host": "vigil-alerter"}, points)
    source = DatabaseHistory(migrated_db, exclude_host="vigil-alerter")
    matchers = (LabelMatcher("__name__", "=", "load"), LabelMatcher("cpu", "!~", "1|2"))
    (a, b) = sorted(
        await source.read([HistoryRange(matchers, base - 5 * MIN, base - 2 * MIN)]),
        key=lambda s: s.labels["host"],
    )
    assert a.labels == {"__name__": "load", "host": "a", "cpu": "0"}
    assert b.labels == {"__name__": "load", "host": "b"}
    assert a.timestamps_ms.tolist() == [base - k * MIN for k in (5, 4, 3, 2)]
    assert a.values.tolist() == [5.0, 4.0, 3.0, 2.0]
    regex = (LabelMatcher("__name__", "=~", "lo.d"), LabelMatcher("host", "=", "a"))
    (only_a,) = await source.read([HistoryRange(regex, base, base)])
    assert only_a.values.tolist() == [0.0]
    # RE2's leading flag groups, as web's queries take them (shared.promql.seriessql).
    flags = (LabelMatcher("__name__", "=~", "(?is)LO.D"), LabelMatcher("host", "=", "a"))
    (flagged,) = await source.read([HistoryRange(flags, base, base)])
    assert flagged.labels["host"] == "a"
    nul = (LabelMatcher("__name__", "=~", "lo\x00ad"),)
    with pytest.raises(HistoryError, match="cannot read rule history of selector"):
        await source.read([HistoryRange(nul, base, base)])


# ------------------------------------------------------------------ reload

SHORT = """
groups:
  - name: short
    rules:
      - alert: TempVeryHigh
        expr: avg_over_time(temp{host="web1"}[5m]) > 100
"""


async def _reload_setup(
    url: str, nats_client: Client, tmp_path: Path, nats_url: str, app_url: str
) -> Path:
    """DB: temp 0..115 min ago (as ingest wrote it all), rare 40 min ago; the stream as above.

    The config (database at ``app_url``) has the rules ``SHORT`` (a 5-minute window of
    temp); ``_reload_long`` replaces them with ``RULES``.
    """
    base = await _history_setup(url, nats_client)
    await _store_series(url, "temp", {"host": "web1"}, [
        (base - k * MIN, value_at(k)) for k in range(115, -1, -1)
    ])  # fmt: skip
    path = _config(tmp_path, nats_url, app_url)
    (tmp_path / "rules.yml").write_text(SHORT)
    return path


async def _reload_long(app: App, tmp_path: Path) -> int:
    (tmp_path / "rules.yml").write_text(RULES)
    reloaded_at = now_ms()
    outcome = await app.reloader.reload()
    assert outcome.ok, outcome.error
    assert [g.rules.name for g in app.groups] == ["long"]
    return reloaded_at


async def test_reload_warms_a_new_longer_window_from_the_database(
    tmp_path: Path, nats_url: str, nats_client: Client, migrated_db: str
) -> None:
    setup = _reload_setup(migrated_db, nats_client, tmp_path, nats_url, migrated_db)
    app = make_app(await setup)
    events = Events()
    await events.start(nats_client)
    await app.start()
    try:
        await until(lambda: app.groups[0].last_eval_ms > 0, "the short rule evaluated")
        await until(lambda: not app._start_pending, "the start's history read")
        reloaded_at = await _reload_long(app, tmp_path)
        await until(lambda: len(events.events) >= 1, "firing from the 2h window after the reload")
        assert app.groups[0].last_eval_ms >= reloaded_at - 1000
        assert app.groups[0].not_before_ms == 0
        assert await _temp_count(app) == EXPECTED_COUNT
    finally:
        await app.stop()
        await events.stop()
    (event,) = events.events  # RareMissing did not fire: its sample is in the database
    assert event.labels["alertname"] == "TempHighOver2h"
    assert float(event.annotations["value"]) == pytest.approx(EXPECTED_AVG)


async def test_reload_with_the_database_down_holds_the_new_rules_back(
    tmp_path: Path,
    nats_url: str,
    nats_client: Client,
    migrated_db: str,
    db_proxy: tuple[FaultProxy, str],
) -> None:
    proxy, url = db_proxy
    app = make_app(await _reload_setup(migrated_db, nats_client, tmp_path, nats_url, url))
    events = Events()
    await events.start(nats_client)
    await app.start()
    try:
        await until(lambda: app.groups[0].last_eval_ms > 0, "the short rule evaluated")
        await until(lambda: not app._start_pending, "the start's history read")
        proxy.cut()
        await _reload_long(app, tmp_path)
        await until(lambda: app.metrics.history_failures._value.get() >= 1, "a failed read")
        # temp was held for 5 minutes: only its older part is asked; rare is new: its hour,
        # up to where the stream's history starts (the replay brought the rest)
        spans = {
            next(m.value for m in r.matchers if m.name == "__name__"): r.end_ms - r.start_ms
            for r, _ in app._reload_ranges.values()
        }
        assert spans["temp"] == 115 * MIN
        assert 0 < spans["rare"] < 60 * MIN
        assert not app._replaying  # the stream's part is in
        await app.evaluate_due()
        # held back: its windows hold only the stream's part, so RareMissing would fire
        assert app.groups[0].last_eval_ms == 0
        assert app.groups[0].not_before_ms > now_ms()
        assert events.events == []
        proxy.restore()
        await until(lambda: len(events.events) >= 1, "firing once the database answers")
        assert app.groups[0].not_before_ms == 0
        assert await _temp_count(app) == EXPECTED_COUNT
    finally:
        await app.stop()
        await events.stop()
    assert [e.labels["alertname"] for e in events.events] == ["TempHighOver2h"]
