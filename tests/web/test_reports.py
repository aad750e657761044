"""SLA and capacity reports: the arithmetic directly, then the API over TimescaleDB.

Acceptance numbers a person would check:

- a probe target probed every 15 s for one hour with a 3-minute outage shows
  95.0 % availability (± 0.1), the 3-minute downtime interval where it was, and
  the CSV export carries exactly the JSON's numbers; the same hour read through
  ``samples_1m`` (a week-long period) agrees;
- a filesystem filled linearly for 3 days (through ``samples_1m`` and
  ``samples_1h``, built by ingest's own rollup SELECTs) is projected full within
  1 % of the time really left; flat memory and a filesystem being emptied answer
  "never"; a filesystem that stopped reporting a day ago while filling fast is
  listed as stale, not projected, and does not top the list.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest

from ingest.rollup.aggregates import COLUMNS, HOUR, MINUTE
from tests.web.conftest import T0, add_samples, add_series, web_config
from web.app import App
from web.reports.capacity import linear_trend, projection
from web.reports.data import SeriesRef
from web.reports.errors import BadRequest
from web.reports.periods import DAY_MS, parse_periods
from web.reports.sla import availability, series_key, source_plan

HOUR_MS = 3_600_000
MIN_MS = 60_000
BASE = (T0 // HOUR_MS) * HOUR_MS - 10 * DAY_MS
"""The probed hour starts here (long ago: every period reading it is rollup-free unless asked)."""
OUTAGE = (BASE + 30 * MIN_MS, BASE + 33 * MIN_MS)
GiB = float(2**30)
FILL_PER_DAY = 5 * GiB
STALE_FILL_PER_DAY = 15 * GiB
"""/var fills three times faster than / but stopped reporting a day ago."""


# -- the arithmetic ---------------------------------------------------------------------


def test_availability_weights_each_sample_until_the_next() -> None:
    t = np.arange(0, 3_600_000, 15_000)
    up = np.where((t >= 1_800_000) & (t < 1_980_000), 0.0, 1.0)
    a = availability(t, up, 300_000, 0, 3_600_000)
    assert a.ratio == pytest.approx(0.95, abs=1e-12)
    assert a.down_ms == 180_000
    assert a.gap_ms == 0
    assert [(d.start_ms, d.end_ms, d.down_ms, d.reason) for d in a.downtime] == [
        (1_800_000, 1_980_000, 180_000.0, "down")
    ]


def test_gaps_longer_than_the_cap_count_as_down_unless_ignored() -> None:
    t = np.array([0, 60_000, 600_000, 660_000])  # silent from 2 min to 10 min
    up = np.ones(4)
    a = availability(t, up, 60_000, 0, 720_000)
    assert a.gap_ms == 480_000
    assert a.ratio == pytest.approx(240 / 720)
    assert [(d.start_ms, d.end_ms, d.reason) for d in a.downtime] == [(120_000, 600_000, "no data")]
    ignored = availability(t, up, 60_000, 0, 720_000, gaps_down=False)
    assert ignored.ratio == 1.0
    assert ignored.downtime == []


def test_time_before_the_first_sample_is_not_monitored() -> None:
    a = availability([600_000, 660_000], [1.0, 0.0], 60_000, 0, 720_000)
    assert a.unmonitored_ms == 600_000
    assert a.ratio == pytest.approx(0.5)


def test_a_sample_before_the_period_covers_its_start() -> None:
    a = availability([-10_000, 20_000], [0.0, 1.0], 60_000, 0, 40_000)
    assert a.down_ms == 20_000
    assert a.up_ms == 20_000
    assert a.downtime[0].start_ms == 0


def test_staleness_nan_ends_coverage_and_adjacent_runs_join() -> None:
    # down at 0, stale at 30 s (no data until 60 s), up after: one run, both reasons.
    a = availability([0, 30_000, 60_000], [0.0, math.nan, 1.0], 300_000, 0, 90_000)
    assert a.down_ms == 30_000
    assert a.gap_ms == 30_000
    assert [(d.start_ms, d.end_ms, d.down_ms, d.reason) for d in a.downtime] == [
        (0, 60_000, 60_000.0, "down, no data")
    ]


def test_rollup_buckets_count_their_fraction_and_bridge_within_the_max_gap() -> None:
    # Minute buckets every 2 minutes (a 2-minute probe interval), one half down.
    t = np.array([0, 120_000, 240_000])
    a = availability(t, [1.0, 0.5, 1.0], 60_000, 0, 300_000, bridge_ms=300_000)
    assert a.gap_ms == 0
    assert a.down_ms == pytest.approx(60_000)
    assert a.ratio == pytest.approx(240 / 300)
    assert [(d.start_ms, d.end_ms, d.down_ms) for d in a.downtime] == [(120_000, 240_000, 60_000.0)]


def test_no_points_means_nothing_counted() -> None:
    a = availability([], [], 60_000, 0, 1000)
    assert a.ratio is None
    assert a.unmonitored_ms == 1000


def test_periods_parse_names_durations_and_custom() -> None:
    end = 10 * DAY_MS
    names = [(p.name, p.span_ms) for p in parse_periods(None, end)]
    assert names == [
        ("day", DAY_MS),
        ("week", 7 * DAY_MS),
        ("month", 30 * DAY_MS),
        ("quarter", 90 * DAY_MS),
    ]
    ps = parse_periods("36h,day", end, start_ms=end - 5000)
    assert [(p.name, p.start_ms) for p in ps] == [
        ("36h", end - 36 * HOUR_MS),
        ("day", end - DAY_MS),
        ("custom", end - 5000),
    ]
    assert [p.name for p in parse_periods(None, end, start_ms=0)] == ["custom"]
    with pytest.raises(BadRequest, match='"range": "fortnight"'):
        parse_periods("fortnight", end)
    with pytest.raises(BadRequest, match="start"):
        parse_periods(None, end, start_ms=end)


def test_long_periods_read_rollups_then_recent_raw() -> None:
    now = 100 * DAY_MS
    (day,) = parse_periods("day", now)
    (week,) = parse_periods("week", now)
    (quarter,) = parse_periods("quarter", now)
    assert source_plan(day, now) == (None, day.start_ms)
    assert source_plan(week, now) == ("samples_1m", now - 2 * HOUR_MS)
    assert source_plan(quarter, now) == ("samples_1h", now - 2 * HOUR_MS)


def test_linear_trend_is_exact_on_a_line() -> None:
    t = np.arange(0, 72) * HOUR_MS
    y = 1000.0 - 2e-6 * t
    tr = linear_trend(t, y)
    assert tr is not None
    assert tr.slope_per_ms == pytest.approx(-2e-6)
    assert tr.at(0) == pytest.approx(1000.0)
    assert tr.stderr_per_ms == pytest.approx(0, abs=1e-12)
    assert linear_trend([0, 1], [1, 2]) is None


def test_series_key_is_the_identity_whatever_the_label_order() -> None:
    a = SeriesRef(1, "up", {"job": 'say "hi"', "instance": "h:1"})
    b = SeriesRef(2, "up", {"instance": "h:1", "job": 'say "hi"'})
    assert series_key(a) == series_key(b) == 'up{instance="h:1",job="say \\"hi\\""}'
    assert series_key(SeriesRef(3, "up", {})) == "up{}"


def test_projection_statuses() -> None:
    t = np.arange(0, 48) * HOUR_MS
    size = 100.0
    filling = linear_trend(t, 50 - t / DAY_MS)  # 1 per day
    p = projection(filling, 40.0, size, now_ms=0, span_ms=2 * DAY_MS)
    assert p.status == "filling"
    assert p.days_left == pytest.approx(40.0)
    assert p.full_at_ms == pytest.approx(40 * DAY_MS)
    assert p.growth_per_day == pytest.approx(1.0)
    flat = linear_trend(t, np.full(len(t), 50.0))
    assert projection(flat, 50.0, size, 0, 2 * DAY_MS).status == "never"
    emptying = linear_trend(t, 50 + t / DAY_MS)
    assert projection(emptying, 52.0, size, 0, 2 * DAY_MS).status == "never"
    rng = np.random.default_rng(3)
    noise = linear_trend(t, 50 + rng.normal(0, 5, len(t)) - 1e-3 * t / DAY_MS)
    assert projection(noise, 50.0, size, 0, 2 * DAY_MS).status == "never"
    assert projection(filling, 0.0, size, 7, 2 * DAY_MS).status == "full"
    assert projection(None, 5.0, size, 0, 2 * DAY_MS).status == "unknown"


# -- over TimescaleDB ------------------------------------------------------------------

pytestmark = pytest.mark.timescale


async def _rollup(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Rollups of these series, made by ingest's own SELECTs (as its refresh job does)."""
    cols = ", ".join(COLUMNS)
    cond = f"series_id = ANY('{{{','.join(map(str, ids))}}}'::int8[])"
    await conn.execute(f"INSERT INTO samples_1m ({cols}) {MINUTE.query(cond)}")
    await conn.execute(f"INSERT INTO samples_1h ({cols}) {HOUR.query(cond)}")


@pytest.fixture
async def probe(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        if await conn.fetchval('SELECT count(*) FROM series WHERE labels @> \'{"job": "sla"}\''):
            return
        labels = {"instance": "https://shop.example.com", "job": "sla", "host": "probe-1"}
        sid = await add_series(conn, "probe_success", labels)
        times = range(BASE, BASE + HOUR_MS, 15_000)
        points = [(t, 0.0 if OUTAGE[0] <= t < OUTAGE[1] else 1.0) for t in times]
        await add_samples(conn, sid, points)
        await _rollup(conn, [sid])


@pytest.fixture
async def disks(pool: asyncpg.Pool) -> tuple[int, float]:
    """3 days of samples every minute up to now: (end ms, avail at the end)."""
    end = int(time.time() * 1000) // MIN_MS * MIN_MS
    start = end - 3 * DAY_MS
    times = np.arange(start, end + 1, MIN_MS)
    days = (times - start) / DAY_MS
    avail = 60 * GiB - FILL_PER_DAY * days
    async with pool.acquire() as conn:
        ids = []
        host = {"host": "cap-1"}
        root = {**host, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
        data = {**host, "device": "/dev/sdb1", "fstype": "xfs", "mountpoint": "/data"}
        tmp = {**host, "device": "tmpfs", "fstype": "tmpfs", "mountpoint": "/run"}
        var = {**host, "device": "/dev/sdc1", "fstype": "ext4", "mountpoint": "/var"}
        silent = times <= end - DAY_MS  # /var stopped reporting a day ago
        series: list[tuple[str, dict[str, str], Any]] = [
            ("node_filesystem_avail_bytes", root, avail),
            ("node_filesystem_size_bytes", root, np.full(len(times), 100 * GiB)),
            ("node_filesystem_avail_bytes", data, 10 * GiB + GiB * days),  # being emptied
            ("node_filesystem_size_bytes", data, np.full(len(times), 50 * GiB)),
            ("node_filesystem_avail_bytes", tmp, 1 * GiB - 0.1 * GiB * days),
            ("node_filesystem_size_bytes", tmp, np.full(len(times), 2 * GiB)),
            ("node_filesystem_avail_bytes", var, 40 * GiB - STALE_FILL_PER_DAY * days),
            ("node_filesystem_size_bytes", var, np.full(len(times), 100 * GiB)),
            ("node_memory_MemAvailable_bytes", host, np.full(len(times), 4 * GiB)),
            ("node_memory_MemTotal_bytes", host, np.full(len(times), 8 * GiB)),
        ]
        for metric, labels, values in series:
            sid = await add_series(conn, metric, labels)
            ids.append(sid)
            keep = silent if labels is var else np.full(len(times), True)
            at, vs = times[keep], np.asarray(values)[keep]
            await add_samples(conn, sid, list(zip(at.tolist(), vs.tolist(), strict=True)))
        await _rollup(conn, ids)
    return end, float(avail[-1])


@pytest.fixture
async def client(tmp_path: Path, migrated_db: str) -> AsyncIterator[httpx.AsyncClient]:
    app = App(web_config(tmp_path, migrated_db, sla_objective=0.99))
    await app.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.port}", timeout=30) as c:
            yield c
    finally:
        await app.stop()


def _data(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


SELECTOR = 'probe_success{job="sla"}'


async def test_three_minute_outage_in_an_hour_is_95_percent(
    client: httpx.AsyncClient, probe: None
) -> None:
    end_s = (BASE + HOUR_MS) / 1000
    data = _data(
        await client.get(
            "/api/vigil/sla", params={"match": SELECTOR, "range": "1h", "end": str(end_s)}
        )
    )
    assert data["objective"] == 0.99  # from the configuration
    (target,) = data["targets"]
    assert target["name"] == "https://shop.example.com"
    assert (
        target["key"]
        == 'probe_success{host="probe-1",instance="https://shop.example.com",job="sla"}'
    )
    assert target["labels"]["host"] == "probe-1"
    (row,) = target["periods"]
    assert row["source"] == "raw"
    assert row["availability"] * 100 == pytest.approx(95.0, abs=0.1)
    assert row["down_seconds"] == 180
    assert row["budget_seconds"] == pytest.approx(36)  # 1 % of an hour
    assert row["budget_left_seconds"] == pytest.approx(36 - 180)
    assert row["met"] is False
    (down,) = target["downtime"]
    assert (down["start"], down["end"]) == (OUTAGE[0] / 1000, OUTAGE[1] / 1000)
    assert down["duration_seconds"] == 180
    assert down["reason"] == "down"


async def test_csv_export_carries_the_json_numbers(client: httpx.AsyncClient, probe: None) -> None:
    params = {
        "match": SELECTOR,
        "range": "1h,day,week",
        "end": str((BASE + 4 * HOUR_MS) / 1000),
        "objective": "99.9",
    }
    data = _data(await client.get("/api/vigil/sla", params=params))
    assert data["objective"] == pytest.approx(0.999)
    r = await client.get("/api/vigil/sla.csv", params=params)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    json_rows = [p for t in data["targets"] for p in t["periods"]]
    assert len(rows) == len(json_rows) == 3
    for got, want in zip(rows, json_rows, strict=True):
        for key, value in want.items():
            cell = got[key]
            if value is None:
                assert cell == ""
            elif isinstance(value, bool):
                assert cell == str(value).lower()
            elif isinstance(value, (int, float)):
                assert float(cell) == value, key  # exactly the same number
            else:
                assert cell == value
    r = await client.get("/api/vigil/sla.csv", params={**params, "rows": "downtime"})
    intervals = list(csv.DictReader(io.StringIO(r.text)))
    json_intervals = [d for t in data["targets"] for d in t["downtime"]]
    assert [(float(i["start"]), float(i["end"]), i["reason"]) for i in intervals] == [
        (d["start"], d["end"], d["reason"]) for d in json_intervals
    ]


async def test_a_week_read_from_minute_rollups_agrees(
    client: httpx.AsyncClient, probe: None
) -> None:
    # Ending 4 h after the probed hour: the hour lies in the rollup part of the week.
    params = {"match": SELECTOR, "range": "week", "end": str((BASE + 5 * HOUR_MS) / 1000)}
    data = _data(await client.get("/api/vigil/sla", params={**params, "gaps": "ignore"}))
    (row,) = data["targets"][0]["periods"]
    assert row["source"] == "samples_1m+raw"
    assert row["availability"] * 100 == pytest.approx(95.0, abs=0.1)
    (down,) = data["targets"][0]["downtime"]
    assert (down["start"], down["end"]) == (OUTAGE[0] / 1000, OUTAGE[1] / 1000)
    # By default the 4 silent hours after the probe stopped are downtime too.
    data = _data(await client.get("/api/vigil/sla", params=params))
    (row,) = data["targets"][0]["periods"]
    assert row["no_data_seconds"] == 4 * 3600
    assert row["availability"] == pytest.approx(57 / 300)
    assert [d["reason"] for d in data["targets"][0]["downtime"]] == ["down", "no data"]


async def test_bad_parameters_are_bad_data(client: httpx.AsyncClient) -> None:
    for params, needle in (
        ({"objective": "2000"}, "objective"),
        ({"range": "fortnight"}, "fortnight"),
        ({"match": "rate(x[5m])"}, "match"),
        ({"gaps": "maybe"}, "gaps"),
    ):
        r = await client.get("/api/vigil/sla", params=params)
        assert r.status_code == 400, params
        body = r.json()
        assert body["errorType"] == "bad_data"
        assert needle in body["error"]
    r = await client.get("/api/vigil/capacity", params={"kind": "cpu"})
    assert r.status_code == 400
    r = await client.get("/api/vigil/capacity", params={"stale_after": "soon"})
    assert r.status_code == 400
    assert "stale_after" in r.json()["error"]


async def test_linear_fill_is_projected_full_within_one_percent(
    client: httpx.AsyncClient, disks: tuple[int, float]
) -> None:
    end, avail_now = disks
    data = _data(await client.get("/api/vigil/capacity"))  # lookback 7d: samples_1h
    items = data["items"]
    mounts = [(i["kind"], i["labels"].get("mountpoint"), i["status"]) for i in items]
    # Sorted by urgency: the filling root first; tmpfs is not a real filesystem.
    assert mounts == [
        ("filesystem", "/", "filling"),
        ("filesystem", "/data", "never"),
        ("memory", None, "never"),
    ]
    root = items[0]
    assert root["source"] == "samples_1h"
    true_full = end / 1000 + avail_now / FILL_PER_DAY * 86400
    left = true_full - data["now"]
    assert abs(root["full_at"] - true_full) <= 0.01 * left
    assert root["growth_bytes_per_day"] == pytest.approx(FILL_PER_DAY, rel=0.01)
    assert root["used_ratio"] == pytest.approx(1 - avail_now / (100 * GiB))
    assert len(root["history"]) >= 70
    memory = items[2]
    assert memory["full_at"] is None
    assert memory["used_ratio"] == pytest.approx(0.5)
    assert root["last_seen"] == end / 1000

    # /var would be full in under a day from its last value, but that value is a day old.
    assert data["stale_after_seconds"] == 300  # visualization.query_lookback_delta
    (var,) = data["stale"]
    assert (var["labels"]["mountpoint"], var["status"]) == ("/var", "stale")
    assert var["last_seen"] == (end - DAY_MS) / 1000
    assert var["full_at"] is None
    assert var["days_left"] is None
    assert var["growth_bytes_per_day"] == pytest.approx(STALE_FILL_PER_DAY, rel=0.01)
    # With a threshold beyond its silence it is projected from the old value, and tops the list.
    loose = _data(await client.get("/api/vigil/capacity", params={"stale_after": "2d"}))
    assert loose["stale"] == []
    assert loose["items"][0]["labels"]["mountpoint"] == "/var"
    assert loose["items"][0]["status"] == "filling"

    # A short lookback reads minute rollups and agrees.
    data = _data(
        await client.get("/api/vigil/capacity", params={"lookback": "1d", "kind": "filesystem"})
    )
    root = data["items"][0]
    assert root["source"] == "samples_1m"
    assert abs(root["full_at"] - true_full) <= 0.01 * (true_full - data["now"])
    # Silent for the whole lookback: not among the live ones.
    assert [i["labels"]["mountpoint"] for i in data["items"]] == ["/", "/data"]


async def test_database_down_answers_503_unavailable(tmp_path: Path) -> None:
    app = App(web_config(tmp_path, "postgresql://nobody@127.0.0.1:1/none"))
    await app.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.port}", timeout=10) as c:
            for path in ("/api/vigil/sla", "/api/vigil/sla.csv", "/api/vigil/capacity"):
                r = await c.get(path)
                assert r.status_code == 503, path
                body = r.json()
                assert body["errorType"] == "unavailable"
                assert body["error"].startswith("cannot ")
    finally:
        await app.stop()
