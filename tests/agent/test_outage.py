"""NATS down longer than the duplicate window, the agent restarted meanwhile: nothing lost.

The agent runs as a process (``python -m agent``) with a static collector, so
a restart is a real restart: a new instance id, the spool reopened from disk.
After recovery the stream is audited per instance: every sequence from 0 to
the last is present, each instance's final batch (its staleness markers at
stop) arrived, and every duplicate is a copy published after the duplicate
window (a spooled batch whose first publish was stored but not acknowledged),
which ingest's idempotent writes absorb.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from shared.devenv.nats import NatsServer
from shared.wire import is_stale
from tests.agent.natsutil import (
    Stored,
    provision_stream,
    read_stream,
    wait_for,
    write_config,
    write_facts,
)

ROOT = Path(__file__).parents[2]
DUPLICATE_WINDOW_S = 2.0


def start_agent(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(cfg)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def stop_agent(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError(f"agent did not stop; log:\n{log.read_text()[-3000:]}") from None
    assert rc == 0, log.read_text()[-3000:]


def by_instance(stored: list[Stored]) -> dict[str, list[Stored]]:
    out: dict[str, list[Stored]] = defaultdict(list)
    for m in stored:
        out[m.batch.agent_id].append(m)
    return out


def has_final_markers(msgs: list[Stored]) -> bool:
    return any(s.name == "fact" and is_stale(v) for m in msgs for s, _ts, v in m.batch.samples())


async def run_outage(tmp_path: Path, server: NatsServer, *, outage_s: float, restarts: int) -> None:
    url = server.url
    await provision_stream(url, duplicate_window=f"{int(DUPLICATE_WINDOW_S)}s")
    facts = tmp_path / "facts.yaml"
    write_facts(facts, {"a": 1.0, "b": 2.0})
    cfg = write_config(
        tmp_path / "vigil.yaml", url, spool=tmp_path / "spool", facts=facts, listen=False
    )
    log = tmp_path / "agent.log"
    proc = start_agent(cfg, log)
    try:
        await wait_for("the first batches", lambda: _count(url, 2), within=60)
        server.stop()
        down_at = time.time()
        per_phase = outage_s / (restarts + 1)
        for _ in range(restarts):
            await asyncio.sleep(per_phase)  # the outage goes on while the agent restarts
            stop_agent(proc, log)
            proc = start_agent(cfg, log)
        await asyncio.sleep(per_phase)
        assert time.time() - down_at > DUPLICATE_WINDOW_S
        up_at = time.time()
        server.start()

        async def recovered() -> bool:
            groups = by_instance(await read_stream(url))
            done = [i for i, msgs in groups.items() if has_final_markers(msgs)]
            live = [i for i, msgs in groups.items() if max(m.time for m in msgs) > up_at]
            return len(done) == restarts and len(groups) == restarts + 1 and bool(live)

        await wait_for("every stopped instance's data, and new data", recovered, within=60)
        stop_agent(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)

    stored = await read_stream(url)
    groups = by_instance(stored)
    assert len(groups) == restarts + 1, log.read_text()[-3000:]
    for instance, msgs in groups.items():
        seqs = sorted(m.batch.seq for m in msgs)
        assert set(seqs) == set(range(seqs[-1] + 1)), f"instance {instance} lost batches"
        assert has_final_markers(msgs), f"instance {instance}'s final batch is missing"
        assert all(m.msg_id == m.batch.msg_id for m in msgs)
    replayed = [m for m in stored if m.time > up_at and m.batch.agent_id != _last(groups)]
    assert replayed, "batches spooled during the outage must arrive after it"
    copies = Counter(m.msg_id for m in stored)
    duplicates = 0
    for msg_id, n in copies.items():
        if n == 1:
            continue
        same = sorted((m for m in stored if m.msg_id == msg_id), key=lambda m: m.seq)
        assert len({m.data for m in same}) == 1, "a replay carries the same bytes"
        for later in same[1:]:
            assert later.time - same[0].time > DUPLICATE_WINDOW_S, (
                "JetStream should have deduplicated"
            )
        duplicates += n - 1
    print(f"batches={len(stored)} instances={len(groups)} duplicates_after_window={duplicates}")


def _last(groups: dict[str, list[Stored]]) -> str:
    return max(groups, key=lambda i: min(m.seq for m in groups[i]))


async def _count(url: str, n: int) -> bool:
    return len(await read_stream(url)) >= n


async def test_outage_longer_than_the_duplicate_window_with_a_restart_loses_nothing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    await run_outage(tmp_path, nats_server, outage_s=4.0, restarts=1)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_long_outage_with_several_restarts_loses_nothing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    await run_outage(tmp_path, nats_server, outage_s=60.0, restarts=3)
