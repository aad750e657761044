"""Ingest throughput: samples/s committed with 1 and 2 ingest replicas vs raw asyncpg COPY.

Starts its own nats-server and TimescaleDB (fast mode: fsync off, as the test
fixtures), pre-publishes agent-format batches (``BatchBuilder``: node-exporter
sized scrapes, one sample per series) to the metrics stream, then runs
``vigil-ingest`` processes against fresh databases, each replica set with its
own durable consumer reading the whole stream, and reads the committed rate
from their ``vigil_ingest_samples_total`` (first to last sample committed).
In the same run, raw ``copy_records_to_table`` of the same number of rows into
an identical hypertable gives the baseline. Last line:

    RESULT ingest_1=<samples/s> ingest_2=<samples/s> raw_copy=<rows/s> ratio_1=<> bytes_per_sample=<b>

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
from shared.codec import encode_batch  # noqa: E402
from shared.devenv.databases import create_database  # noqa: E402
from shared.devenv.nats import NatsServer  # noqa: E402
from shared.devenv.procs import free_port  # noqa: E402
from shared.devenv.rootfs import default_cache_dir, ensure_rootfs  # noqa: E402
from shared.devenv.timescale import LocalTimescale  # noqa: E402
from shared.wire import BatchBuilder, Names  # noqa: E402

HOSTS = 20


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


async def raw_copy(db_url: str, total: int, chunk: int) -> float:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "CREATE TABLE samples_raw (time timestamptz NOT NULL, series_id bigint NOT NULL, "
            "value double precision NOT NULL, UNIQUE (series_id, time))"
        )
        await conn.execute(
            "SELECT create_hypertable('samples_raw', 'time', create_default_indexes => false)"
        )
        base = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        records = [
            (base + dt.timedelta(seconds=10 * (i // 2000)), i % 2000, float(i))
            for i in range(total)
        ]
        started = time.perf_counter()
        for start in range(0, total, chunk):
            await conn.copy_records_to_table(
                "samples_raw", records=records[start : start + chunk],
                columns=["time", "series_id", "value"],
            )  # fmt: skip
        return total / (time.perf_counter() - started)
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
            raw = asyncio.run(raw_copy(urls["bench_raw"], total, 256 * args.series))
            print(f"raw copy_records_to_table: {raw:,.0f} rows/s")
            one = run_ingest(
                1,
                nats_url=nats_server.url,
                db_url=urls["bench_one"],
                consumer="bench1",
                total=total,
                work=work,
            )
            print(f"ingest, 1 replica: {one:,.0f} samples/s")
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
