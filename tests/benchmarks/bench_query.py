"""Range-query latency: Vigil's HTTP API vs a real Prometheus on identical data.

Loads the same synthetic data into a fresh TimescaleDB (plain SQL, the rows
ingest would write; rollups built with ingest's own rollup SELECTs) and into
Prometheus (``promtool tsdb create-blocks-from openmetrics``, then
Debian's ``prometheus`` on 127.0.0.1), then times range queries through both
HTTP APIs, median of ``--runs`` (9) after one warm-up each, the two servers' requests
taken in turn so that both see the same load (the machine may be shared), by a
client in a child process (so that parsing the answers burdens neither server):

- ``q1h_100``:  ``rate(bench_total{hundred="yes"}[5m])``, 1 h at 15 s step, 100 series
- ``q1h_1000``: ``rate(bench_total[5m])``, 1 h at 15 s step, 1,000 series
- ``q30d_100``: ``max_over_time(bench_slow[1h])``, 30 days at 1 h step, 100 series
  (Vigil runs with ``visualization.query_rollups`` on, so this one is served from
  ``samples_1h``; the 1 h queries use ``rate``, which rollups do not serve by default,
  and read raw samples; the selects by source are printed)

Data: ``bench_total`` samples every 15 s over the 2 h before the query end;
``bench_slow`` every 5 min over 31 days. Both end 3 h before now (rollups are
served only for data older than 2 h). The answers are compared too (same
series count, and the points equal within 1e-6 relative are counted), so a fast
wrong answer does not pass unnoticed. ``bench_slow``'s samples lie on every step:
Prometheus 2.x's window ``[t - 1h, t]`` includes the sample at ``t``, which an hour
bucket ``[t - 1h, t)`` does not: the rollup rows keep it as the next bucket's
``head`` (``ingest/rollup/aggregates.py``), which the 30-day query reads too.

Last line:

    RESULT q1h_100_ratio=<vigil/prom> q1h_1000_ratio=<vigil/prom> q30d_100_ratio=<vigil/prom>

Usage: .venv/bin/python tests/benchmarks/bench_query.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import yaml

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[2]
sys.path.insert(0, str(REPO))

from ingest.prepare import prepare_database  # noqa: E402
from ingest.rollup.aggregates import COLUMNS, HOUR, MINUTE  # noqa: E402
from ingest.seriesid import series_hash  # noqa: E402
from shared.config.loader import load_config  # noqa: E402
from shared.config.models import StorageConfig  # noqa: E402
from shared.devenv.databases import create_database  # noqa: E402
from shared.devenv.procs import free_port  # noqa: E402
from shared.devenv.rootfs import default_cache_dir, ensure_rootfs  # noqa: E402
from shared.devenv.timescale import LocalTimescale  # noqa: E402
from shared.runner import install_uvloop  # noqa: E402
from web.app import App  # noqa: E402
from web.storage_tsdb import TimescaleStorage  # noqa: E402

HOUR_MS = 3_600_000
FAST_SERIES = 1000
SLOW_SERIES = 100
FAST_STEP_MS = 15_000
SLOW_STEP_MS = 300_000
SLOW_DAYS = 31


def fast_labels(i: int) -> dict[str, str]:
    return {
        "host": f"node-{i // 10:03d}",
        "cpu": str(i % 10),
        "hundred": "yes" if i < 100 else "no",
    }


def slow_labels(i: int) -> dict[str, str]:
    return {"host": f"node-{i:03d}"}


def grids(end_ms: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    fast = np.arange(end_ms - 2 * HOUR_MS, end_ms + 1, FAST_STEP_MS, dtype=np.int64)
    slow = np.arange(end_ms - SLOW_DAYS * 24 * HOUR_MS, end_ms + 1, SLOW_STEP_MS, dtype=np.int64)
    return fast, slow


def fast_value(i: int, k: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return (k * (i % 7 + 1)).astype(np.float64)  # counters, no resets


def slow_value(i: int, k: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.sin(k / 50.0 + i) * 100 + i


def write_openmetrics(path: Path, end_ms: int) -> None:
    fast, slow = grids(end_ms)
    with path.open("w", encoding="utf-8") as out:
        out.write("# TYPE bench counter\n")
        for i in range(FAST_SERIES):
            ls = ",".join(f'{k}="{v}"' for k, v in sorted(fast_labels(i).items()))
            vals = fast_value(i, np.arange(len(fast)))
            out.writelines(
                f"bench_total{{{ls}}} {v!r} {t / 1000:.3f}\n"
                for t, v in zip(fast.tolist(), vals.tolist(), strict=True)
            )
        out.write("# TYPE bench_slow gauge\n")
        for i in range(SLOW_SERIES):
            ls = ",".join(f'{k}="{v}"' for k, v in sorted(slow_labels(i).items()))
            vals = slow_value(i, np.arange(len(slow)))
            out.writelines(
                f"bench_slow{{{ls}}} {v!r} {t / 1000:.3f}\n"
                for t, v in zip(slow.tolist(), vals.tolist(), strict=True)
            )
        out.write("# EOF\n")


async def load_vigil(url: str, end_ms: int) -> None:
    await prepare_database(url, StorageConfig())
    fast, slow = grids(end_ms)
    conn = await asyncpg.connect(url)
    try:
        for metric, n, labels, grid, value in (
            ("bench_total", FAST_SERIES, fast_labels, fast, fast_value),
            ("bench_slow", SLOW_SERIES, slow_labels, slow, slow_value),
        ):
            for i in range(n):
                ls = labels(i)
                sid = await conn.fetchval(
                    "INSERT INTO series (metric, labels, hash) VALUES ($1, $2::jsonb, $3) RETURNING id",
                    metric,
                    json.dumps(ls),
                    series_hash(metric, ls),
                )
                await conn.execute(
                    "INSERT INTO samples (time, series_id, value)"
                    " SELECT to_timestamp(t / 1000.0), $1, v FROM unnest($2::int8[], $3::float8[]) AS u(t, v)",
                    sid,
                    grid.tolist(),
                    value(i, np.arange(len(grid))).tolist(),
                )
        cols = ", ".join(COLUMNS)
        await conn.execute(f"INSERT INTO samples_1m ({cols}) {MINUTE.query()}")
        await conn.execute(f"INSERT INTO samples_1h ({cols}) {HOUR.query()}")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def post(base: str, path: str, params: dict[str, str]) -> tuple[float, dict[str, Any]]:
    body = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(f"{base}{path}", data=body, method="POST")  # noqa: S310
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:  # noqa: S310 - loopback
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
    elapsed = time.perf_counter() - started
    answer: dict[str, Any] = json.loads(raw)
    if answer.get("status") != "success":
        raise SystemExit(f"{base}{path} {params}: {answer}")
    return elapsed, answer


Timing = tuple[float, list[dict[str, Any]]]
"""Median seconds and the last answer's ``result``."""


def timed_pair(bases: tuple[str, str], params: dict[str, str], runs: int) -> tuple[Timing, Timing]:
    """Both servers, one request each in turn (after a warm-up each), so that both see
    the same load on a shared machine; the medians and the last answers."""
    for base in bases:
        post(base, "/api/v1/query_range", params)  # warm-up
    times: tuple[list[float], list[float]] = ([], [])
    results: list[list[dict[str, Any]]] = [[], []]
    for i in range(runs):
        order = (0, 1) if i % 2 == 0 else (1, 0)  # neither always runs right after the other
        for k in order:
            elapsed, answer = post(bases[k], "/api/v1/query_range", params)
            times[k].append(elapsed)
            results[k] = answer["data"]["result"]
    return (
        (statistics.median(times[0]), results[0]),
        (statistics.median(times[1]), results[1]),
    )


async def timed_pair_apart(
    bases: tuple[str, str], params: dict[str, str], runs: int
) -> tuple[Timing, Timing]:
    """``timed_pair`` run by a child process (this script with ``--client``).

    The client parses every answer: hundreds of thousands of JSON lists per request,
    kept until the next one. Run in Vigil's process, they would start Vigil's garbage
    collections (full ones scanning the client's objects too), a cost that Prometheus,
    a process of its own, does not pay; in production the client is elsewhere too.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--client",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    request = {"bases": list(bases), "params": params, "runs": runs}
    out, _ = await proc.communicate(json.dumps(request).encode())
    if proc.returncode != 0:
        raise SystemExit(f"bench client exited with {proc.returncode}")
    (vigil, vigil_result), (prom, prom_result) = json.loads(out)
    return (vigil, vigil_result), (prom, prom_result)


def client() -> None:
    """The child of ``timed_pair_apart``: the request on stdin, the timings on stdout."""
    request = json.load(sys.stdin)
    bases = (request["bases"][0], request["bases"][1])
    json.dump(timed_pair(bases, request["params"], request["runs"]), sys.stdout)


def agreement(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> tuple[int, int]:
    """Points of ``b`` that ``a`` has at the same time with a value within 1e-6 relative."""
    index = {
        json.dumps(s["metric"], sort_keys=True): {t: float(v) for t, v in s["values"]} for s in a
    }
    same = total = 0
    for s in b:
        mine = index.get(json.dumps(s["metric"], sort_keys=True), {})
        for t, v in s["values"]:
            total += 1
            w = mine.get(t)
            same += w is not None and abs(w - float(v)) <= 1e-6 * max(abs(float(v)), 1e-300)
    return same, total


class PromProcess:
    def __init__(self, tsdb: Path, work: Path) -> None:
        self.port = free_port()
        config = work / "prometheus.yml"
        config.write_text("global:\n  evaluation_interval: 1m\n", encoding="utf-8")
        self.log = (work / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                "/usr/bin/prometheus",
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={tsdb}",
                "--storage.tsdb.retention.time=100y",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(1200):
            if self.proc.poll() is not None:
                raise SystemExit(f"prometheus exited: see {work / 'prometheus.log'}")
            try:
                with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("prometheus did not become ready")

    def stop(self) -> None:
        self.proc.terminate()  # this PID only
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


async def run_both(
    db_url: str, work: Path, prom_base: str, queries: dict[str, dict[str, str]], runs: int
) -> dict[str, tuple[Timing, Timing]]:
    cfg = work / "vigil.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "storage": {"database_url": db_url},
                "visualization": {"listen_address": "127.0.0.1:0", "query_rollups": True},
                "log": {"level": "warning", "format": "json"},
            }
        ),
        encoding="utf-8",
    )
    app = App(load_config(cfg, env={}))
    await app.start()
    try:
        base = f"http://127.0.0.1:{app.port}"
        out = {}
        for name, params in queries.items():
            out[name] = await timed_pair_apart((base, prom_base), params, runs)
        storage = app.state.storage
        if isinstance(storage, TimescaleStorage):
            print(f"vigil selects by source: {dict(storage.served)}")
            print(f"vigil selects by statements run: {dict(storage.splits)}")
        return out
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--client", action="store_true", help="internal: time requests")
    args = parser.parse_args()
    if args.client:
        client()
        return
    if not Path("/usr/bin/prometheus").exists() or shutil.which("promtool") is None:
        raise SystemExit("prometheus is not installed: run deploy/local/install-oracles.sh as root")
    end_ms = (int(time.time() * 1000) // HOUR_MS - 3) * HOUR_MS
    end_s = end_ms // 1000
    queries = {
        "q1h_100": {
            "query": 'rate(bench_total{hundred="yes"}[5m])',
            "start": str(end_s - 3600), "end": str(end_s), "step": "15",
        },
        "q1h_1000": {
            "query": "rate(bench_total[5m])",
            "start": str(end_s - 3600), "end": str(end_s), "step": "15",
        },
        "q30d_100": {
            "query": "max_over_time(bench_slow[1h])",
            "start": str(end_s - 30 * 86400), "end": str(end_s), "step": "3600",
        },
    }  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench-query-"))
    try:
        print(f"work folder: {work}")
        om = work / "data.om"
        write_openmetrics(om, end_ms)
        tsdb = work / "prom"
        started = time.perf_counter()
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics",
             "--max-block-duration=744h", str(om), str(tsdb)],
            check=True, capture_output=True,
        )  # fmt: skip
        print(f"prometheus backfill: {time.perf_counter() - started:.1f}s")
        with LocalTimescale(ensure_rootfs(default_cache_dir()), work / "pg", fast=True) as pg:
            db_url = asyncio.run(create_database(pg.url, "bench_query"))
            started = time.perf_counter()
            asyncio.run(load_vigil(db_url, end_ms))
            print(f"vigil load + rollups: {time.perf_counter() - started:.1f}s")
            prom = PromProcess(tsdb, work)
            try:
                install_uvloop()  # the web App runs on uvloop, as vigil-web does
                both = asyncio.run(run_both(db_url, work, prom.base, queries, args.runs))
            finally:
                prom.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = {}
    for name in queries:
        (v, va), (p, pa) = both[name]
        vn, pn = len(va), len(pa)
        same, total = agreement(va, pa)
        print(
            f"{name}: vigil {v * 1000:.1f} ms ({vn} series)  prometheus {p * 1000:.1f} ms"
            f" ({pn} series)  equal points {same}/{total}"
        )
        if vn != pn:
            print(f"  MISMATCH: {name} answered {vn} series in Vigil, {pn} in Prometheus")
        ratios[name] = v / p
    print(
        "RESULT "
        + " ".join(
            f"{name}_ratio={ratios[name]:.2f}" for name in ("q1h_100", "q1h_1000", "q30d_100")
        )
    )


if __name__ == "__main__":
    main()
