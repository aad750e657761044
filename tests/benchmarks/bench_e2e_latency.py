"""End-to-end alert latency: gauge flip on an exporter -> webhook, Vigil vs Prometheus+Alertmanager.

Starts its own nats-server, a tiny exporter (asyncio HTTP on 127.0.0.1) and a webhook
receiver, then ``vigil-agent`` (scraping the exporter every 1 s), ``vigil-alerter``
(rule ``flip == 1``, ``for: 0s``) and ``vigil-notifier`` (``group_wait: 0s``, webhook
receiver), and in the same run Debian's ``prometheus`` (scrape and evaluation every 1 s,
the same rule) with ``prometheus-alertmanager`` (``group_wait: 0s``, the same kind of
webhook). Each trial exposes ``flip{trial="<i>"} 1`` (the previous trial's series goes
back to 0), so ``group_by: [alertname, trial]`` gives a fresh group and one fresh
notification per trial; the time from the flip to the first firing webhook is recorded
for each side. The agent batches as by default (``agent.flush_interval`` 1 s, and a
batch leaves as soon as no collection is running). Last line:

    RESULT vigil_p50_ms=<a> vigil_p99_ms=<b> prom_am_p50_ms=<c> prom_am_p99_ms=<d>

Usage: .venv/bin/python tests/benchmarks/bench_e2e_latency.py [--trials N] [--peer-trials N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from nats.aio.msg import Msg  # noqa: E402

from shared.bus.provision import provision  # noqa: E402
from shared.codec import decode_message  # noqa: E402
from shared.config.models import NatsConfig  # noqa: E402
from shared.devenv.nats import NatsServer  # noqa: E402
from shared.devenv.procs import free_port  # noqa: E402
from shared.errors import DecodeError  # noqa: E402
from shared.wire import AlertEvent, Names  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
VENV_BIN = Path(sys.executable).parent

RULES = """
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: E2EFlip
        expr: flip == 1
        for: 0s
"""


def am_config(url: str) -> dict[str, object]:
    return {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "trial"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "hook", "webhook_configs": [{"url": url, "send_resolved": False}]}],
    }


class State:
    """The exporter's gauges and the webhook arrivals, shared by both HTTP servers."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.arrivals: dict[str, dict[str, float]] = {"vigil": {}, "prom": {}}
        self.arrived = asyncio.Event()
        self.scraped: dict[str, float] = {}
        """Trial -> when Vigil's agent first scraped its flip at 1."""
        self.events: dict[str, float] = {}
        """Trial -> when the alerter's firing event for it was on NATS."""

    def exposition(self) -> bytes:
        lines = ["# TYPE flip gauge"]
        lines += [f'flip{{trial="{t}"}} {v}' for t, v in self.values.items()]
        return ("\n".join(lines) + "\n").encode()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return path, body, headers


async def respond(writer: asyncio.StreamWriter, body: bytes, ctype: str = "text/plain") -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: "
        + ctype.encode()
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
    await writer.drain()
    writer.close()


def serve_exporter(state: State):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, _, headers = await read_request(reader)
            if not headers.get("user-agent", "").startswith("Prometheus/"):
                now = time.perf_counter()
                for t, v in state.values.items():
                    if v:
                        state.scraped.setdefault(t, now)
            await respond(writer, state.exposition(), "text/plain; version=0.0.4")
        except (OSError, asyncio.IncompleteReadError):
            writer.close()

    return handle


def serve_webhook(state: State):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            path, body, _ = await read_request(reader)
            now = time.perf_counter()
            side = "vigil" if path.startswith("/vigil") else "prom"
            payload = json.loads(body or b"{}")
            for alert in payload.get("alerts", []):
                trial = alert.get("labels", {}).get("trial")
                if trial is not None and alert.get("status") == "firing":
                    state.arrivals[side].setdefault(trial, now)
            state.arrived.set()
            await respond(writer, b"ok")
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.close()

    return handle


SEGMENTS = ("flip->scrape", "scrape->event", "event->webhook")
"""Vigil's latency split: the agent's scrape phase, agent + NATS + alerter, notifier."""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[pos]


def write_configs(work: Path, nats_url: str, ports: dict[str, int]) -> None:
    exporter = f"http://127.0.0.1:{ports['exporter']}/metrics"
    hook = f"http://127.0.0.1:{ports['webhook']}"
    (work / "rules.yml").write_text(RULES)
    vigil = {
        "nats": {"servers": [nats_url]},
        "collectors": [
            {"type": "application", "name": "e2e", "interval": 1, "targets": [exporter]}
        ],
        "agent": {"spool_dir": str(work / "spool")},  # default flush_interval (1 s)
        "alerting": {
            "rule_files": ["rules.yml"],
            "evaluation_interval": "1s",
            "alertmanager_config": am_config(f"{hook}/vigil"),
        },
        "alerter": {"listen_address": f"127.0.0.1:{ports['alerter']}"},
        "notifier": {"listen_address": f"127.0.0.1:{ports['notifier']}"},
        "log": {"level": "warning"},
    }
    (work / "vigil.yml").write_text(yaml.safe_dump(vigil))
    prom = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "rules.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['am']}"]}]}]
        },
        "scrape_configs": [
            {"job_name": "e2e", "static_configs": [{"targets": [f"127.0.0.1:{ports['exporter']}"]}]}
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(prom))
    (work / "alertmanager.yml").write_text(yaml.safe_dump(am_config(f"{hook}/prom")))


def start_processes(
    work: Path, nats_url: str, ports: dict[str, int]
) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "VIGIL_NATS__SERVERS": f'["{nats_url}"]'}
    logs = work / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        out = (logs / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                argv, cwd=work, env=extra_env or os.environ.copy(), stdout=out, stderr=out
            )
        )

    config = str(work / "vigil.yml")
    for svc in ("alerter", "notifier", "agent"):
        spawn(svc, [str(VENV_BIN / f"vigil-{svc}"), "--config", config], env)
    spawn(
        "alertmanager",
        [
            ALERTMANAGER,
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{ports['am']}",
            "--cluster.listen-address=",
        ],
    )
    spawn(
        "prometheus",
        [
            PROMETHEUS,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{ports['prom']}",
        ],
    )
    return procs


async def one_trial(
    state: State,
    trial: str,
    started: float,
    want: list[str],
    *,
    within: float,
    results: dict[str, list[float]],
) -> None:
    """Wait (bounded) for the wanted sides' webhooks of ``trial``; record and print."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not all(trial in state.arrivals[s] for s in want):
        state.arrived.clear()
        try:
            async with asyncio.timeout(0.05):
                await state.arrived.wait()
        except TimeoutError:
            pass
    line = [f"trial {int(trial):3d}:"]
    for side in want:  # a side not timed this trial is not counted even if it arrived
        at = state.arrivals[side].get(trial)
        if at is not None:
            results[side].append((at - started) * 1000)
            line.append(f"{side} {(at - started) * 1000:7.1f} ms")
            scraped, event = state.scraped.get(trial), state.events.get(trial)
            if side == "vigil" and scraped is not None and event is not None:
                parts = (scraped - started, event - scraped, at - event)
                for name, value in zip(SEGMENTS, parts, strict=True):
                    results[name].append(value * 1000)
                line.append("(" + " ".join(f"{v * 1000:.0f}" for v in parts) + ")")
        else:
            line.append(f"{side} TIMEOUT")
    print(" ".join(line), flush=True)


async def run(args: argparse.Namespace, work: Path, nats_url: str) -> dict[str, list[float]]:
    nc = await nats.connect(nats_url)
    await provision(nc.jetstream(), NatsConfig(servers=[nats_url]))
    state = State()

    async def on_event(msg: Msg) -> None:
        try:
            event = decode_message(msg.data, AlertEvent)
        except DecodeError:
            return
        trial = event.labels.get("trial")
        if trial is not None and event.status == "firing":
            state.events.setdefault(trial, time.perf_counter())

    await nc.subscribe(Names().alerts_wildcard, cb=on_event)  # where the time goes
    state.values["warmup"] = 0
    ports = {k: free_port() for k in ("alerter", "notifier", "am", "prom")}
    exporter = await asyncio.start_server(serve_exporter(state), "127.0.0.1", 0)
    webhook = await asyncio.start_server(serve_webhook(state), "127.0.0.1", 0)
    ports["exporter"] = exporter.sockets[0].getsockname()[1]
    ports["webhook"] = webhook.sockets[0].getsockname()[1]
    write_configs(work, nats_url, ports)
    procs = start_processes(work, nats_url, ports)
    results: dict[str, list[float]] = {"vigil": [], "prom": [], **{k: [] for k in SEGMENTS}}
    try:
        await asyncio.sleep(args.warmup)
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"{p.args[0]} exited early ({p.returncode}); logs in {work}/logs")
        total = max(args.trials, args.peer_trials)
        for i in range(total):
            trial = str(i)
            await asyncio.sleep(random.uniform(0.0, 1.0))  # random scrape phase
            for t in state.values:
                state.values[t] = 0
            state.values[trial] = 1
            started = time.perf_counter()
            want = ["vigil"] if i >= args.peer_trials else ["vigil", "prom"]
            await one_trial(state, trial, started, want, within=args.timeout, results=results)
            # Back to 0; the old series stays at 0 so no stale firing carries over.
            state.values[trial] = 0
            await asyncio.sleep(1.5)
            if len(state.values) > 5:  # keep the exposition small
                for t in list(state.values)[:-5]:
                    del state.values[t]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        exporter.close()
        webhook.close()
        await nc.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50, help="Vigil trials (at least 50)")
    parser.add_argument("--peer-trials", type=int, default=20, help="Prometheus+AM trials")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before the first trial")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait per trial")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    for binary in (PROMETHEUS, ALERTMANAGER):
        if not Path(binary).exists():
            raise SystemExit(
                f"{binary} not found (Debian packages prometheus, prometheus-alertmanager)"
            )
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    server = NatsServer(work / "nats")
    server.start()
    try:
        results = asyncio.run(run(args, work, server.url))
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    v, p = results["vigil"], results["prom"]
    for name, xs in (("vigil", v), ("prom+am", p)):
        if xs:
            print(
                f"{name}: {len(xs)} trials, min {min(xs):.1f} ms, p50 {percentile(xs, 0.5):.1f} ms, "
                f"p99 {percentile(xs, 0.99):.1f} ms, max {max(xs):.1f} ms"
            )
        else:
            print(f"{name}: no notifications arrived")
    for name in SEGMENTS:
        if xs := results[name]:
            print(
                f"vigil {name}: p50 {percentile(xs, 0.5):.1f} ms, "
                f"p99 {percentile(xs, 0.99):.1f} ms, max {max(xs):.1f} ms"
            )
    print(
        f"RESULT vigil_p50_ms={percentile(v, 0.5):.1f} vigil_p99_ms={percentile(v, 0.99):.1f} "
        f"prom_am_p50_ms={percentile(p, 0.5):.1f} prom_am_p99_ms={percentile(p, 0.99):.1f}"
    )


if __name__ == "__main__":
    main()
