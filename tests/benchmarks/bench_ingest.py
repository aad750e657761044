"""Ingest throughput: samples/s committed with 1 and 2 ingest replicas vs raw asyncpg COPY.

Starts its own nats-server and TimescaleDB (fast mode: fsync off, as the test
fixtures), pre-publishes agent-format batches (``BatchBuilder``: node-exporter
sized scrapes of ``HOSTS`` hosts, one sample per series) to the metrics
stream, then runs ``vigil-ingest`` processes (default config: ``fetch_batch``
messages per fetch and transaction, two workers per replica) against fresh
databases, each replica set with its own durable consumer reading the whole
stream. Last line:

    RESULT ingest_1=<samples/s> ingest_2=<samples/s> raw_copy=<rows/s> ratio_1=<> bytes_per_sample=<b>

What each figure includes:

- ``ingest_1``/``ingest_2``: samples committed per second, read from the sum of
  the replicas' ``vigil_ingest_samples_total`` (incremented after each fetch's
  commit and acks), polled every 50 ms, from the first poll that sees a
  committed sample to the first that sees all of them; the samples of that
  first poll are not counted. So it covers everything ingest does per fetch in
  steady state (fetch from NATS, decode and validate, series resolution
  including the upsert of the 20 x ``--series`` new series, sorting, binary
  COPY with the unique index, touched-minute records, metadata and agents,
  commit, acks) but not process start-up, migrations or the first fetch's
  wait for its commit.
- ``raw_copy``: rows per second of ``copy_records_to_table`` on one
  connection, the mean of two runs measured right before and right after
  ``ingest_1`` (this machine's load drifts; bracketing keeps the ratio from
  hanging on one draw), each into a fresh table, a hypertable shaped like ``samples``
  (same columns, the same unique (series_id, time) index and no other),
  with pre-built records made by decoding the very payloads published: the
  same rows (series ids numbered per distinct series), grouped in chunks of
  one default fetch each and sorted within a chunk by (series_id, time), the
  order ingest's COPY sends. Each chunk is its own transaction, as a fetch
  is. Building the records is not timed; asyncpg encoding them is.
- ``ratio_1``: ``ingest_1 / raw_copy`` of the same run.
- ``bytes_per_sample``: ``hypertable_size('samples') / count(*)`` after the
  1-replica run (heap plus index).

Usage: .venv/bin/python tests/benchmarks/bench_ingest.py [--batches N] [--series N]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import asyncpg
import nats
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ingest.migrate import migrate  # noqa: E402
from shared.codec import decode_batch, encode_batch  # noqa: E402
from shared.config.ingest import IngestConfig  # noqa: E402
from shared.config.models import StorageConfig  # noqa: E402
from shared.devenv.databases import create_database  # noqa: E402
from shared.devenv.nats import NatsServer  # noqa: E402
from shared.devenv.procs import free_port  # noqa: E402
from shared.devenv.rootfs import default_cache_dir, ensure_rootfs  # noqa: E402
from shared.devenv.timescale import LocalTimescale  # noqa: E402
from shared.wire import BatchBuilder, DecodeLimits, Names  # noqa: E402

Record = tuple[dt.datetime, int, float]

HOSTS = 20
FETCH_BATCH = IngestConfig().fetch_batch


def build_payloads(batches: int, series: int) -> list[tuple[str, bytes, str]]:
    now = int(time.time() * 1000) - 3_600_000
    out = []
    for i in range(batches):
        host = f"node-{i % HOSTS:03d}.example.com"
        b = BatchBuilder()
        ts = now + (i // HOSTS) * 10_000
        for s in range(series):
            b.add(
                f"node_metric_{s % 50}",
                {"instance": host, "job": "node", "cpu": str(s // 50), "mode": "user"},
                ts,
                float(i * series + s),
                type="gauge",
                help="A node metric.",
            )
        batch = b.build(f"agent-{i % HOSTS}", i)
        out.append((Names().metrics(host), encode_batch(batch), batch.msg_id))
    return out


async def prepublish(url: str, payloads: list[tuple[str, bytes, str]]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    from shared.bus.provision import provision
    from shared.config.models import NatsConfig

    await provision(js, NatsConfig(servers=[url]))
    for start in range(0, len(payloads), 200):
        await asyncio.gather(
            *(
                js.publish(s, d, headers={"Nats-Msg-Id": m})
                for s, d, m in payloads[start : start + 200]
            )
        )
    await nc.close()


def scrape_total(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    m = re.search(r"^vigil_ingest_samples_total (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def run_ingest(
    replicas: int, *, nats_url: str, db_url: str, consumer: str, total: int, work: Path
) -> float:
    procs, ports = [], []
    for r in range(replicas):
        port = free_port()
        cfg = work / f"{consumer}-{r}.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "nats": {"servers": [nats_url]},
                    "storage": {"database_url": db_url},
                    "ingest": {"consumer": consumer, "listen_address": f"127.0.0.1:{port}",
                               "history": False, "fetch_timeout": 0.2},
                    "log": {"level": "warning", "format": "json"},
                }
            )
        )  # fmt: skip
        env = {**os.environ, "VIGIL_FAULTS": ""}
        env.pop("VIGIL_DATABASE_URL", None)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "ingest", "--config", str(cfg)],
                cwd=REPO,
                env=env,
                stderr=(work / f"{consumer}-{r}.log").open("ab"),
            )
        )
        ports.append(port)
    try:
        first: tuple[float, float] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = sum(scrape_total(p) for p in ports)
            now = time.monotonic()
            if first is None and done > 0:
                first = (now, done)
            if done >= total:
                assert first is not None
                return (done - first[1]) / max(now - first[0], 1e-6)
            time.sleep(0.05)
        raise SystemExit(f"ingest {consumer} did not finish: {done}/{total}")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)


def raw_chunks(payloads: list[tuple[str, bytes, str]]) -> list[list[Record]]:
    """The rows ingest stores from ``payloads``, one chunk per fetch, each in index order."""
    names, limits = Names(), DecodeLimits()
    now_ms = int(time.time() * 1000)
    ids: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    chunks = []
    for start in range(0, len(payloads), FETCH_BATCH):
        rows: list[tuple[int, int, float]] = []
        for subject, data, _ in payloads[start : start + FETCH_BATCH]:
            host = names.host_from_metrics_subject(subject)
            batch = decode_batch(data, limits=limits, now_ms=now_ms)
            sids = [
                ids.setdefault((host, d.name, tuple(sorted(d.labels.items()))), len(ids) + 1)
                for d in batch.series
            ]
            rows += (
                (sids[i], t, v)
                for i, t, v in zip(
                    batch.series_index, batch.timestamps_ms, batch.values, strict=True
                )
            )
        rows.sort()
        chunks.append([(epoch + dt.timedelta(milliseconds=t), sid, v) for sid, t, v in rows])
    return chunks


async def raw_copy(db_url: str, table: str, chunks: list[list[Record]]) -> float:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            f"CREATE TABLE {table} (time timestamptz NOT NULL, series_id bigint NOT NULL, "
            "value double precision NOT NULL, UNIQUE (series_id, time))"
        )
        await conn.execute(
            f"SELECT create_hypertable('{table}', 'time', create_default_indexes => false, "
            "chunk_time_interval => $1::bigint * interval '1 microsecond')",
            round(StorageConfig().chunk_interval * 1_000_000),  # as ingest sets for samples
        )
        started = time.perf_counter()
        for records in chunks:
            await conn.copy_records_to_table(
                table, records=records, columns=["time", "series_id", "value"]
            )
        elapsed = time.perf_counter() - started
        stored = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - ours
        if stored != sum(len(c) for c in chunks):
            raise SystemExit(f"raw copy stored {stored} rows, expected {sum(map(len, chunks))}")
        return float(stored) / elapsed
    finally:
        await conn.close()


async def bytes_per_sample(db_url: str) -> float:
    conn = await asyncpg.connect(db_url)
    try:
        size = await conn.fetchval("SELECT hypertable_size('samples')")
        rows = await conn.fetchval("SELECT count(*) FROM samples")
        return float(size) / max(int(rows), 1)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--series", type=int, default=500)
    args = parser.parse_args()
    total = args.batches * args.series
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    print(f"building {args.batches} batches x {args.series} samples = {total} samples")
    payloads = build_payloads(args.batches, args.series)
    nats_server = NatsServer(work / "nats")
    nats_server.start()
    try:
        with LocalTimescale(ensure_rootfs(default_cache_dir()), work / "pg", fast=True) as pg:
            urls = {}
            for name in ("bench_one", "bench_two", "bench_raw"):
                urls[name] = asyncio.run(create_database(pg.url, name))
                asyncio.run(migrate(urls[name]))
            asyncio.run(prepublish(nats_server.url, payloads))
            print(f"published {len(payloads)} batches")
            chunks = raw_chunks(payloads)
            raw_before = asyncio.run(raw_copy(urls["bench_raw"], "samples_raw_1", chunks))
            print(f"raw copy_records_to_table, before ingest_1: {raw_before:,.0f} rows/s")
            one = run_ingest(
                1,
                nats_url=nats_server.url,
                db_url=urls["bench_one"],
                consumer="bench1",
                total=total,
                work=work,
            )
            print(f"ingest, 1 replica: {one:,.0f} samples/s")
            raw_after = asyncio.run(raw_copy(urls["bench_raw"], "samples_raw_2", chunks))
            print(f"raw copy_records_to_table, after ingest_1: {raw_after:,.0f} rows/s")
            raw = (raw_before + raw_after) / 2
            two = run_ingest(
                2,
                nats_url=nats_server.url,
                db_url=urls["bench_two"],
                consumer="bench2",
                total=total,
                work=work,
            )
            print(f"ingest, 2 replicas: {two:,.0f} samples/s")
            bps = asyncio.run(bytes_per_sample(urls["bench_one"]))
            print(f"on disk: {bps:.1f} bytes per sample (hypertable_size / rows)")
    finally:
        nats_server.stop()
    print(
        f"RESULT ingest_1={one:.0f} ingest_2={two:.0f} raw_copy={raw:.0f} "
        f"ratio_1={one / raw:.2f} bytes_per_sample={bps:.1f}"
    )


if __name__ == "__main__":
    main()
