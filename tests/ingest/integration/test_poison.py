"""Poison messages are terminated and recorded with their reason; good batches keep flowing."""

from __future__ import annotations

import time
from pathlib import Path

import msgpack
import nats

from ingest.app import App
from shared.codec import encode_batch
from shared.devenv.nats import NatsServer
from shared.wire import BatchBuilder
from tests.ingest.helpers import (
    audit,
    fetchval,
    loaded,
    make_batch,
    publish,
    wait_for,
    write_config,
)


def _batch_with(name: str, labels: dict[str, str], ts_ms: int) -> bytes:
    b = BatchBuilder()
    b.add(name, labels, ts_ms, 1.0)
    return encode_batch(b.build("poison", 1))


async def test_each_poison_kind_is_rejected_with_its_reason(
    tmp_path: Path, nats_server: NatsServer, fresh_db: str
) -> None:
    cfg = write_config(tmp_path / "v.yaml", nats_server.url, fresh_db)
    app = App(loaded(cfg))
    await app.start()
    now = int(time.time() * 1000)
    good = encode_batch(make_batch("good", 0))
    doc = msgpack.unpackb(good)
    poison = {
        "malformed": b"\xc1\x00garbage",
        "version": msgpack.packb({**doc, "v": 99}),
        "timestamp_skew": _batch_with("m", {}, now + 86_400_000),
        "batch_bytes": b"\x00" * (5 * 1024 * 1024),
        "invalid_name": _batch_with("bad-name", {}, now),
        "nul_character": _batch_with("m", {"x": "a\x00b"}, now),
    }
    try:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        seq = 0
        for data in poison.values():
            await publish(js, "h1", make_batch("good", seq))
            await publish(js, "h1", data, msg_id=f"p{seq}")
            seq += 1
        await publish(js, "h1", make_batch("good", seq))
        await nc.close()

        async def done() -> bool:
            try:
                stored = (await audit(fresh_db))[0]
                rejected = await fetchval(fresh_db, "SELECT count(*) FROM rejects")
            except Exception:
                return False
            return stored == (seq + 1) * 10 and rejected == len(poison)

        await wait_for(done, what="good batches stored and poison rejected")
        reasons = await fetchval(
            fresh_db, "SELECT array_agg(reason ORDER BY stream_seq) FROM rejects"
        )
        assert reasons == list(poison)
        assert await fetchval(fresh_db, "SELECT count(DISTINCT host) FROM rejects") == 1
        assert app.metrics.rejects.labels("version")._value.get() == 1
    finally:
        await app.stop()
