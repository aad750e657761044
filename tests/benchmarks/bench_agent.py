"""The agent's CPU per collection cycle and RSS, against node_exporter's CPU per scrape.

Run: ``.venv/bin/python tests/benchmarks/bench_agent.py [--cycles N] [--scrapes N]``.

- **agent**: a child process builds the default config's collectors (the
  system collector with default options) through the agent's registry, and
  per cycle runs the scheduler's ``CollectorRunner`` (target labels,
  validation of new series, staleness tracking) into a ``BatchBuilder``,
  then encodes the batch with ``shared.codec.encode_batch``: the agent's
  path up to the NATS client, cycles back to back. (If the scheduler's API
  is not importable, the child adds samples to the builder directly.)
- **vigil-agent** (``--agent-seconds S``, default 30; 0 skips): the real
  agent process with the default config but a 1 s interval, publishing to a
  local, provisioned nats-server on 127.0.0.1, for S seconds: every cost of
  the running agent (flush timer, publisher, self-metrics) divided by its
  cycles. This is the agent's real cost per cycle, so the RESULT line uses
  it (and its RSS); the child's figure, collection and encoding only, is
  printed beside it. With ``--agent-seconds 0`` the RESULT uses the child's.
- **node_exporter**: Debian's binary with its default collectors, on
  127.0.0.1 only, scraped N times; a second run with only the families the
  system collector has is printed for information.

CPU is utime+stime of each process' PID from /proc/<pid>/stat, read by this
process before and after the N cycles or scrapes (the child waits on stdin
at both points, so start-up and imports are not counted); RSS is the
child's VmRSS after the cycles. The last line is machine-read:
``RESULT agent_cpu_s_per_cycle=<a> node_exporter_cpu_s_per_scrape=<b> ratio=<a/b> agent_rss_mb=<m>``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests.compat` when run as a script

from agent.collectors.system import FAMILIES  # noqa: E402 - needs the path above
from tests.compat.node_exporter import (  # noqa: E402 - needs the path above
    MISSING_REASON,
    find_binary,
    running_node_exporter,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


# ------------------------------------------------------------------------- the child


def child(cycles: int) -> None:
    """Runs in the measured process: warm up, wait, N cycles, report, wait, exit."""
    import asyncio
    import socket
    import time

    from agent.collectors.registry import build, default_registry
    from shared.codec import encode_batch
    from shared.config.models import VigilConfig
    from shared.wire import BatchBuilder, DecodeLimits, MetricType

    config = VigilConfig()  # the default config: what a host runs with no editing
    registry = default_registry()
    collectors = [(c.effective_name, build(registry, c)) for c in config.collectors]
    builder = BatchBuilder()
    host_labels = {"host": socket.gethostname()}
    counts: list[int] = []

    class Sink:
        """The scheduler's sink: a batcher reduced to its builder (no flush, no publish)."""

        def add(
            self,
            name: str,
            labels: Mapping[str, str],
            ts_ms: int,
            value: float,
            *,
            type: MetricType | None = None,
            help: str | None = None,
            unit: str | None = None,
        ) -> None:
            builder.add(name, labels, ts_ms, value, type=type, help=help, unit=unit)

    try:
        from agent.scheduler import CollectorEntry, CollectorRunner
        from agent.selfmetrics import AgentMetrics

        metrics = AgentMetrics()
        runners = [
            CollectorRunner(
                CollectorEntry(name, c, 10.0),
                Sink(),
                metrics,
                host_labels=host_labels,
                limits=DecodeLimits(),
            )
            for name, c in collectors
        ]

        async def one_cycle(seq: int) -> None:
            now = time.time()
            for runner in runners:
                await runner.cycle(now)
            counts.append(len(builder))
            encode_batch(builder.build("bench", seq))

        mode = "scheduler"
    except (ImportError, TypeError, AttributeError):

        async def one_cycle(seq: int) -> None:
            ts = int(time.time() * 1000)
            for _name, c in collectors:
                for s in await c.collect():
                    labels = {**s.labels, **host_labels}
                    builder.add(s.name, labels, ts, s.value, type=s.type, help=s.help, unit=s.unit)
            counts.append(len(builder))
            encode_batch(builder.build("bench", seq))

        mode = "direct"

    async def main() -> None:
        for seq in range(3):  # warm-up: caches, first-seen validation
            await one_cycle(seq)
        print(f"READY {mode} {counts[-1]}", flush=True)
        sys.stdin.readline()
        for seq in range(cycles):
            await one_cycle(seq + 3)
        print(f"DONE {counts[-1]}", flush=True)
        sys.stdin.readline()

    asyncio.run(main())


# ------------------------------------------------------------------------ the parent


def measure_agent(cycles: int) -> tuple[float, float, float, str, int]:
    """(CPU s per cycle, VmRSS MB, VmHWM MB, mode, samples per cycle)."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(cycles)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        ready = proc.stdout.readline().split()
        if not ready or ready[0] != "READY":
            raise RuntimeError(f"benchmark child did not start: {ready}")
        start = cpu_seconds(proc.pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        done = proc.stdout.readline().split()
        if not done or done[0] != "DONE":
            raise RuntimeError(f"benchmark child failed: {done}")
        used = cpu_seconds(proc.pid) - start
        rss = status_kb(proc.pid, "VmRSS") / 1024
        hwm = status_kb(proc.pid, "VmHWM") / 1024
        proc.stdin.write("exit\n")
        proc.stdin.flush()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()  # this child's PID only
            proc.wait(10)
    return used / cycles, rss, hwm, ready[1], int(done[1])


def measure_vigil_agent(seconds: float) -> tuple[float, float]:
    """(CPU s per cycle, VmRSS MB) of a real vigil-agent publishing to a local NATS."""
    import asyncio
    import tempfile
    import time

    import nats

    from shared.bus.provision import provision
    from shared.config.models import NatsConfig
    from shared.devenv.nats import NatsServer

    with tempfile.TemporaryDirectory(prefix="vigil-bench-agent-") as tmp:
        server = NatsServer(Path(tmp) / "nats")
        server.start()
        try:

            async def provision_streams() -> None:
                nc = await nats.connect(server.url, connect_timeout=5, max_reconnect_attempts=0)
                try:
                    await provision(nc.jetstream(), NatsConfig(servers=[server.url]))
                finally:
                    await nc.close()

            asyncio.run(provision_streams())
            config = Path(tmp) / "agent.yaml"
            config.write_text(
                "collectors:\n  - type: system\n    interval: 1\n"
                f"nats:\n  servers: [{server.url!r}]\n"
                f"agent:\n  spool_dir: {str(Path(tmp) / 'spool')!r}\n"
            )
            agent_bin = Path(sys.executable).with_name("vigil-agent")
            proc = subprocess.Popen(
                [str(agent_bin), "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(3)  # start-up, connection, first cycles
                if proc.poll() is not None:
                    raise RuntimeError(f"vigil-agent exited with {proc.returncode}")
                start = cpu_seconds(proc.pid)
                time.sleep(seconds)
                used = cpu_seconds(proc.pid) - start
                rss = status_kb(proc.pid, "VmRSS") / 1024
            finally:
                proc.terminate()  # this PID only
                try:
                    proc.wait(40)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        finally:
            server.stop()
    return used / seconds, rss


def measure_node_exporter(binary: str, scrapes: int, args: list[str]) -> tuple[float, int]:
    """(CPU s per scrape, samples per scrape)."""
    with running_node_exporter(binary, args) as ne:
        for _ in range(5):  # warm-up
            body = ne.scrape()
        start = cpu_seconds(ne.pid)
        for _ in range(scrapes):
            ne.scrape()
        used = cpu_seconds(ne.pid) - start
    samples = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    return used / scrapes, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=500, help="agent cycles measured")
    parser.add_argument("--scrapes", type=int, default=300, help="node_exporter scrapes measured")
    parser.add_argument(
        "--agent-seconds", type=float, default=30, help="real vigil-agent run; 0 skips it"
    )
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    per_cycle, rss, hwm, mode, n_ours = measure_agent(args.cycles)
    print(
        f"agent ({mode}): {per_cycle * 1000:.3f} ms CPU per cycle, {n_ours} samples per cycle, "
        f"RSS {rss:.1f} MB (peak {hwm:.1f} MB), {args.cycles} cycles"
    )
    if args.agent_seconds > 0:
        try:
            real_cycle, real_rss = measure_vigil_agent(args.agent_seconds)
        except (OSError, RuntimeError, ImportError) as exc:
            print(f"vigil-agent: not measured: {exc}; the RESULT uses the child's figures")
        else:
            print(
                f"vigil-agent process, 1 s interval, publishing: {real_cycle * 1000:.2f} ms CPU "
                f"per cycle (all agent work over {args.agent_seconds:g} s), RSS {real_rss:.1f} MB"
            )
            per_cycle, rss = real_cycle, real_rss
    binary = find_binary()
    if binary is None:
        print(f"node_exporter: skipped, {MISSING_REASON}")
        print(
            f"RESULT agent_cpu_s_per_cycle={per_cycle:.6f} node_exporter_cpu_s_per_scrape=nan "
            f"ratio=nan agent_rss_mb={rss:.1f}"
        )
        return
    same = ["--collector.disable-defaults", *(f"--collector.{f}" for f in FAMILIES)]
    ne_same, n_same = measure_node_exporter(binary, args.scrapes, same)
    print(
        f"node_exporter, the same families only: {ne_same * 1000:.3f} ms CPU per scrape, "
        f"{n_same} samples (for information)"
    )
    ne_default, n_default = measure_node_exporter(binary, args.scrapes, [])
    print(
        f"node_exporter, default collectors: {ne_default * 1000:.3f} ms CPU per scrape, "
        f"{n_default} samples, {args.scrapes} scrapes"
    )
    ratio = per_cycle / ne_default if ne_default else float("inf")
    print(
        f"RESULT agent_cpu_s_per_cycle={per_cycle:.6f} "
        f"node_exporter_cpu_s_per_scrape={ne_default:.6f} ratio={ratio:.3f} "
        f"agent_rss_mb={rss:.1f}"
    )


if __name__ == "__main__":
    main()
