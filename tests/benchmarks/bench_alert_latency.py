"""Alert latency: publish of the batch carrying the crossing sample -> event on ALERTS.

Starts its own nats-server, pre-publishes six minutes of history for ``--hosts``
hosts of ``--series`` node-exporter-like gauges at a 10 s interval (what the
rules' 5-minute windows need), then runs ``vigil-alerter`` as a process with a
rule corpus over those series plus ``bench_gauge > 5``. While background agents
keep publishing a batch per host every second, each trial publishes
``bench_gauge{trial=i}`` = 10 and times until the firing event for that trial is
on the ALERTS stream (an ordered consumer in this process), then publishes 1 and
waits for the resolve (not timed). The windows' bytes per sample come from the
alerter's ``/metrics`` (``vigil_alerter_window_bytes / vigil_alerter_samples_held``:
sample arrays with their spare capacity, labels not counted; read at the end).
Before the process starts, an alerter in this process replays the pre-published
history once, from ``start()`` until it is ready, for the replay throughput
(batches decoded and stored per second at a warm start). Last line:

    RESULT p50_ms=<x> p99_ms=<y> bytes_per_sample=<z> replay_batches_per_s=<r>

Usage: .venv/bin/python tests/benchmarks/bench_alert_latency.py [--trials N] [--hosts N] [--series N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from collections.abc import Callable
from pathlib import Path

import nats
import yaml
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from alerter.app import App  # noqa: E402
from shared.bus.provision import provision  # noqa: E402
from shared.codec import decode_message, encode_batch  # noqa: E402
from shared.config.loader import load_config  # noqa: E402
from shared.config.models import NatsConfig  # noqa: E402
from shared.devenv.nats import NatsServer  # noqa: E402
from shared.devenv.procs import free_port  # noqa: E402
from shared.wire import AlertEvent, BatchBuilder, MetricBatch, Names, SeriesDesc  # noqa: E402

NAMES = Names()
RULES = """
groups:
  - name: node
    rules:
      - alert: NodeMetricHigh
        expr: avg_over_time(node_metric_0[5m]) > 1e12
      - alert: NodeMetricRising
        expr: rate(node_metric_1[5m]) > 1e12
      - record: host:node_metric_2:max5m
        expr: max by (host) (max_over_time(node_metric_2[5m]))
      - alert: NodeDown
        expr: up == 0
        for: 1m
  - name: bench
    rules:
      - alert: BenchHigh
        expr: bench_gauge > 5
"""


def host_batch(host: int, seq: int, t_ms: int, series: int) -> tuple[str, bytes, str]:
    b = BatchBuilder()
    for s in range(series):
        b.add(f"node_metric_{s % 10}", {"idx": str(s)}, t_ms, float((seq * 7 + s) % 100))
    batch = b.build(f"bench-host-{host}", seq)
    return NAMES.metrics(f"node-{host:03d}"), encode_batch(batch), batch.msg_id


async def prepublish(url: str, hosts: int, series: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await provision(js, NatsConfig(servers=[url]))
    now = int(time.time() * 1000)
    for step in range(36, 0, -1):
        for h in range(hosts):
            subject, data, msg_id = host_batch(h, 36 - step, now - step * 10_000, series)
            await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    await nc.close()


async def replay_rate(config: Path) -> tuple[float, float]:
    """Batches per second, and batches, of an in-process alerter's replay at start.

    Timed from the first batch the replay hands to ``App.ingest`` until the app
    is ready (caught up): delivery, decoding and storing, not the connection.
    """
    app = App(load_config(config), registry=CollectorRegistry())
    first: list[float] = []
    ingest = app.ingest

    def timed(subject: str, data: bytes) -> None:
        if not first:
            first.append(time.perf_counter())
        ingest(subject, data)

    app.ingest = timed  # type: ignore[method-assign]
    await app.start()
    try:
        deadline = time.monotonic() + 120
        while not app.ready():
            if time.monotonic() > deadline:
                raise SystemExit("the replay did not catch up")
            await asyncio.sleep(0.001)
        took = time.perf_counter() - first[0]
        batches = app.metrics.batches._value.get()
    finally:
        await app.stop()
    return (batches - 1) / took, batches


def metric(port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(rf"^{name} ([0-9.e+-]+)$", body, re.MULTILINE)
    return float(m.group(1)) if m else float("nan")


def is_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
            return True
    except OSError:
        return False


async def wait_ready(port: int, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await asyncio.to_thread(is_ready, port):
            return
        await asyncio.sleep(0.1)
    raise SystemExit("vigil-alerter did not become ready")


async def run_trials(url: str, port: int, trials: int, hosts: int, series: int) -> list[float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    firing: dict[str, float] = {}
    resolved: set[str] = set()
    arrived = asyncio.Event()

    async def on_event(msg: Msg) -> None:
        event = decode_message(msg.data, AlertEvent)
        trial = event.labels.get("trial")
        if trial is None:
            return
        if event.status == "firing":
            firing.setdefault(trial, time.perf_counter())
        else:
            resolved.add(trial)
        arrived.set()

    await js.subscribe(
        NAMES.alerts_wildcard,
        cb=on_event,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
    )
    stop = asyncio.Event()

    async def background() -> None:
        seq = 1000
        while not stop.is_set():
            t = int(time.time() * 1000)
            for h in range(hosts):
                subject, data, msg_id = host_batch(h, seq, t, series)
                await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
            seq += 1
            await asyncio.sleep(1.0)

    bg = asyncio.create_task(background())
    await wait_ready(port)
    latencies: list[float] = []
    seq = 0

    async def gauge(trial: str, value: float) -> float:
        nonlocal seq
        batch = MetricBatch(
            "bench-trials",
            seq,
            [SeriesDesc("bench_gauge", {"trial": trial})],
            array("I", [0]),
            array("q", [int(time.time() * 1000)]),
            array("d", [value]),
        )
        seq += 1
        data = encode_batch(batch)
        started = time.perf_counter()
        await js.publish(NAMES.metrics("bench"), data, headers={"Nats-Msg-Id": batch.msg_id})
        return started

    async def until(check: Callable[[], bool], within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for an alert event")
            arrived.clear()
            try:
                async with asyncio.timeout(0.05):
                    await arrived.wait()
            except TimeoutError:
                pass

    for i in range(trials):
        trial = str(i)
        started = await gauge(trial, 10.0)
        await until(lambda: trial in firing)  # noqa: B023 - awaited in this iteration
        latencies.append((firing[trial] - started) * 1000)
        await gauge(trial, 1.0)
        await until(lambda: trial in resolved)  # noqa: B023 - awaited in this iteration
    stop.set()
    await bg
    await nc.close()
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[pos]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--series", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-alert-"))
    server = NatsServer(work / "nats")
    server.start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(prepublish(server.url, args.hosts, args.series))
        port = free_port()
        (work / "rules.yml").write_text(RULES)
        config = {
            "nats": {"servers": [server.url]},
            "alerting": {"rule_files": ["rules.yml"], "evaluation_interval": "15s"},
            "alerter": {"listen_address": f"127.0.0.1:{port}"},
            "log": {"level": "warning"},
        }
        (work / "vigil.yml").write_text(yaml.safe_dump(config))
        config["alerter"] = {"listen_address": "127.0.0.1:0"}
        (work / "replay.yml").write_text(yaml.safe_dump(config))
        rate, replayed = asyncio.run(replay_rate(work / "replay.yml"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "alerter", "--config", str(work / "vigil.yml")],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        latencies = asyncio.run(run_trials(server.url, port, args.trials, args.hosts, args.series))
        held = metric(port, "vigil_alerter_samples_held")
        nbytes = metric(port, "vigil_alerter_window_bytes")
        series = metric(port, "vigil_alerter_series_held")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        server.stop()
    bps = nbytes / held if held else float("nan")
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"trials: {len(latencies)}, min {min(latencies):.1f} ms, max {max(latencies):.1f} ms")
    print(f"windows: {series:.0f} series, {held:.0f} samples, {nbytes:.0f} bytes")
    print(f"replay: {replayed:.0f} batches of {args.series} series at {rate:.0f} batches/s")
    print(
        f"RESULT p50_ms={p50:.1f} p99_ms={p99:.1f} bytes_per_sample={bps:.1f} "
        f"replay_batches_per_s={rate:.0f}"
    )


if __name__ == "__main__":
    main()
