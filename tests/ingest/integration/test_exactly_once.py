"""Exactly once across crashes: ingest killed at each fault point, restarted, audited.

Each case runs ingest as a process with ``VIGIL_FAULTS=<point>=crash@2`` (the
second fetch crashes there), restarts it without faults, and audits: rows =
distinct (series, time) = samples published.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import nats
import pytest

from shared.devenv.nats import NatsServer
from shared.faults import CRASH_EXIT_CODE
from tests.ingest.helpers import audit, make_batch, publish, spawn_ingest, wait_for, write_config

BATCHES = 12
SERIES = 25


def _wait_exit(proc: subprocess.Popen[bytes], limit_s: float = 60.0) -> int:
    deadline = time.monotonic() + limit_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("ingest did not reach its fault point")
        time.sleep(0.05)
    return proc.returncode


@pytest.mark.parametrize(
    "point", ["ingest.before_copy", "ingest.after_copy", "ingest.after_commit"]
)
async def test_crash_at_fault_point_then_restart_stores_every_sample_once(
    point: str, tmp_path: Path, nats_server: NatsServer, fresh_db: str
) -> None:
    cfg = write_config(tmp_path / "v.yaml", nats_server.url, fresh_db, fetch_batch=3, workers=1)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    crashing = spawn_ingest(cfg, tmp_path / "crash.log", faults=f"{point}=crash@2")
    try:
        # Published while it runs, so fetches come in small groups after start-up.
        from nats.js.errors import NotFoundError

        async def stream_ready() -> bool:
            try:
                await js.stream_info("VIGIL_METRICS")
            except NotFoundError:
                return False
            return True

        await wait_for(stream_ready, what="stream provisioned")
        for seq in range(BATCHES):
            await publish(js, f"host-{seq % 3}", make_batch(f"agent-{seq % 3}", seq, series=SERIES))
        assert _wait_exit(crashing) == CRASH_EXIT_CODE
        assert f"fault point {point} fired" in (tmp_path / "crash.log").read_text()
    finally:
        if crashing.poll() is None:
            crashing.kill()
    await nc.close()

    survivor = spawn_ingest(cfg, tmp_path / "survivor.log")
    try:

        async def complete() -> bool:
            try:
                return (await audit(fresh_db))[0] >= BATCHES * SERIES
            except Exception:
                return False

        await wait_for(complete, limit_s=60, what="every sample stored after restart")
        survivor.send_signal(signal.SIGTERM)
        assert _wait_exit(survivor) == 0
    finally:
        if survivor.poll() is None:
            survivor.kill()
    assert await audit(fresh_db) == (BATCHES * SERIES, BATCHES * SERIES)
