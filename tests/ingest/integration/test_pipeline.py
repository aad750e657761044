"""Ingest end to end in process: NATS batches become rows, exactly as sent."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import asyncpg
import nats
import pytest

from ingest.app import App
from shared.devenv.nats import NatsServer
from shared.wire import STALE_NAN, BatchBuilder
from tests.ingest.helpers import (
    audit,
    fetchval,
    loaded,
    make_batch,
    publish,
    wait_for,
    write_config,
)


@pytest.fixture
async def app(tmp_path: Path, nats_server: NatsServer, fresh_db: str):  # type: ignore[no-untyped-def]
    ingest_app = App(loaded(write_config(tmp_path / "vigil.yaml", nats_server.url, fresh_db)))
    await ingest_app.start()
    await wait_for(lambda: _ready(ingest_app), what="ingest ready")
    try:
        yield ingest_app
    finally:
        await ingest_app.stop()


async def test_batches_become_rows_with_host_from_subject(
    app: App, nats_server: NatsServer, fresh_db: str
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    b = BatchBuilder()
    b.add("up", {"host": "liar", "job": "node"}, 1_000, 1.0, type="gauge", help="Up.", unit="")
    b.add("up", {"job": "node"}, 2_000, 1.0)
    batch = b.build("agent-1", 0)
    now = int(time.time() * 1000)  # inside the skew window
    batch.timestamps_ms[0], batch.timestamps_ms[1] = now - 2000, now - 1000
    await publish(js, "web-1.example.com", batch)
    for seq in range(5):
        await publish(js, "db-2", make_batch("agent-2", seq, series=20))
    await nc.close()

    async def stored() -> bool:
        return (await audit(fresh_db))[0] == 2 + 5 * 20

    await wait_for(stored, what="all samples stored")
    conn = await asyncpg.connect(fresh_db)
    try:
        labels = await conn.fetchval("SELECT labels FROM series WHERE metric = 'up'")
        assert json.loads(labels) == {"host": "web-1.example.com", "job": "node"}
        assert await conn.fetchval("SELECT count(*) FROM series") == 1 + 20
        meta = await conn.fetchrow("SELECT type, help, unit FROM metadata WHERE metric = 'up'")
        assert tuple(meta) == ("gauge", "Up.", "")
        agents = await conn.fetch("SELECT host, agent_id FROM agents ORDER BY host")
        assert [tuple(r) for r in agents] == [("db-2", "agent-2"), ("web-1.example.com", "agent-1")]
    finally:
        await conn.close()
    assert app.metrics.samples._value.get() == 102
    assert app.ready()


async def test_ingest_keeps_the_rollups_of_what_it_stores(
    app: App, nats_server: NatsServer, fresh_db: str
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    for seq in range(3):  # an hour old: their minutes are settled and due for rollup
        await publish(js, "web-1", make_batch("agent-1", seq, series=5, samples_per_series=4))
    await nc.close()

    async def rolled_up() -> bool:
        total = await fetchval(fresh_db, "SELECT coalesce(sum(count), 0) FROM samples_1m")
        return bool(total == 3 * 5 * 4)

    await wait_for(rolled_up, what="samples_1m covers every stored sample")


async def test_nan_inf_and_staleness_marker_are_stored_bit_for_bit(
    app: App, nats_server: NatsServer, fresh_db: str
) -> None:
    payload_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_0000_0123))[0]
    values = [STALE_NAN, float("nan"), payload_nan, float("inf"), float("-inf"), -0.0, 1.5]
    batch = make_batch("agent-v", 0, series=len(values), value=lambda s, _k: values[s])
    nc = await nats.connect(nats_server.url)
    await publish(nc.jetstream(), "h", batch)
    await nc.close()

    async def stored() -> bool:
        return (await audit(fresh_db))[0] == len(values)

    await wait_for(stored, what="values stored")
    conn = await asyncpg.connect(fresh_db)
    try:
        rows = await conn.fetch(
            "SELECT s.labels->>'series' AS k, float8send(value) AS bits FROM samples "
            "JOIN series s ON s.id = series_id"
        )
    finally:
        await conn.close()
    got = {int(r["k"]): bytes(r["bits"]) for r in rows}
    assert got == {i: struct.pack(">d", v) for i, v in enumerate(values)}
    assert got[0].hex() == "7ff0000000000002"


async def test_history_streams_and_alert_status_are_recorded(
    app: App, nats_server: NatsServer, fresh_db: str
) -> None:
    from datetime import UTC, datetime

    from shared.codec import encode_message
    from shared.wire import AlertEvent, AlertStatus, Names, NotificationResult

    names = Names()
    now = datetime.now(UTC)
    event = AlertEvent.model_validate(
        {"labels": {"alertname": "Down"}, "startsAt": now, "endsAt": now, "status": "firing"}
    )
    result = NotificationResult(
        receiver="team", integration="webhook", integration_index=0, group_key="{}", firing=1,
        resolved=0, outcome="success", attempt=1, duration_seconds=0.1, at=now,
    )  # fmt: skip
    status = AlertStatus(fingerprint=event.fingerprint, state="active", at=now)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.publish(names.alerts("g"), encode_message(event))
    await js.publish(names.alerts("g"), b"\x81\xa1v\x07")  # version 7: rejected
    await js.publish(names.notifications("team"), encode_message(result))
    await wait_for(lambda: _ready(app), what="workers running")
    await nc.publish(names.alertstatus, encode_message(status))
    await nc.flush()
    await nc.close()

    async def recorded() -> bool:
        counts = await fetchval(
            fresh_db,
            "SELECT array[(SELECT count(*) FROM alert_events), (SELECT count(*) FROM "
            "notification_results), (SELECT count(*) FROM alert_status), "
            "(SELECT count(*) FROM rejects)]",
        )
        return list(counts) == [1, 1, 1, 1]

    await wait_for(recorded, what="history rows")
    assert await fetchval(fresh_db, "SELECT reason FROM rejects") == "version"


async def _ready(app: App) -> bool:
    return app.ready()
