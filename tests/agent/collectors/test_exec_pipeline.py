"""The custom collectors (exec, statsd, push) in a running agent: their samples reach JetStream."""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

import yaml

from agent.app import App
from shared.config import load_config
from shared.devenv.nats import NatsServer
from tests.agent.natsutil import (
    provision_stream,
    read_stream,
    samples_of,
    wait_for,
    write_config,
    write_facts,
)


def custom_collectors(tmp_path: Path) -> list[dict[str, Any]]:
    script = "print('# TYPE queue_depth gauge'); print('queue_depth{queue=\"jobs\"} 4')"
    cmd = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"
    sd = tmp_path / "exec.json"
    sd.write_text(json.dumps([{"targets": [cmd], "labels": {"team": "batch"}}]), encoding="utf-8")
    return [
        {
            "type": "custom",
            "name": "scripts",
            "interval": 1,
            "options": {"kind": "exec", "target_files": [str(sd)]},
        },
        {
            "type": "custom",
            "name": "statsd",
            "interval": 1,
            "options": {"kind": "statsd", "listen": "127.0.0.1:0"},
        },
        {
            "type": "custom",
            "name": "push",
            "interval": 1,
            "options": {"kind": "push", "listen": "127.0.0.1:0"},
        },
    ]


async def put(port: int, path: str, body: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_exec_statsd_and_push_samples_arrive_in_the_stream_and_decode(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    await provision_stream(url)
    facts = tmp_path / "facts.yaml"
    write_facts(facts, {"a": 1.0})
    cfg = write_config(tmp_path / "vigil.yaml", url, spool=tmp_path / "spool", facts=facts)
    doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    doc["collectors"] += custom_collectors(tmp_path)
    cfg.write_text(yaml.safe_dump(doc), encoding="utf-8")
    app = App(load_config(cfg, {}))
    await app.start()
    try:
        assert app.scheduler is not None
        runners = app.scheduler.runners

        def ports() -> tuple[int, int] | None:
            sd = getattr(runners["statsd"].entry.collector, "port", None)
            push = getattr(runners["push"].entry.collector, "port", None)
            return (sd, push) if sd and push else None

        statsd_port, push_port = await wait_for("listeners bound by their first cycle", ports)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"app.logins:3|c|#region:eu", ("127.0.0.1", statsd_port))
        answer = await put(push_port, "/metrics/job/backup", b"backup_ok 1\n")
        assert answer.startswith(b"HTTP/1.1 200")

        async def arrived() -> bool:
            got = await read_stream(url)
            return all(samples_of(got, n) for n in ("queue_depth", "app_logins_total", "backup_ok"))

        await wait_for("exec, statsd and push samples in the stream", arrived)
        got = await read_stream(url)
        labels, _ts, value = samples_of(got, "queue_depth")[-1]
        assert (labels["queue"], labels["team"], labels["dc"], value) == ("jobs", "batch", "eu", 4)
        up = samples_of(got, "vigil_exec_up")[-1]
        assert up[2] == 1.0
        labels, _ts, value = samples_of(got, "app_logins_total")[-1]
        assert (labels["region"], value) == ("eu", 3.0)
        labels, _ts, value = samples_of(got, "backup_ok")[-1]
        assert (labels["job"], value) == ("backup", 1.0)
    finally:
        await app.stop()
