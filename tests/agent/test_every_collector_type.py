"""Every collector type, configured together, lands in the metrics stream and decodes."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path

import yaml

from agent.app import App
from shared.config import load_config
from shared.devenv.nats import NatsServer
from tests.agent.natsutil import (
    HOST,
    nats_section,
    provision_stream,
    read_stream,
    samples_of,
    wait_for,
)

INTERPRETER = os.path.realpath(sys.executable)  # what /proc/<pid>/exe names
PAGE = b"# HELP demo_requests_total Requests.\n# TYPE demo_requests_total counter\ndemo_requests_total 5\n"


async def serve_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
        + f"Content-Length: {len(PAGE)}\r\nConnection: close\r\n\r\n".encode()
        + PAGE
    )
    await writer.drain()
    writer.close()


async def test_system_application_network_and_custom_samples_arrive(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    await provision_stream(url)
    page = await asyncio.start_server(serve_page, "127.0.0.1", 0)
    port = page.sockets[0].getsockname()[1]
    command = shlex.join([sys.executable, "-c", "print('exec_metric 1')"])
    doc = {
        "nats": nats_section(url),
        "agent": {"hostname": HOST, "spool_dir": str(tmp_path / "spool"), "flush_interval": "200ms"},
        "collectors": [
            {"type": "system", "interval": 1},
            {"type": "application", "name": "apps", "interval": 1,
             "targets": [f"http://127.0.0.1:{port}/metrics"]},
            {"type": "application", "name": "procs", "interval": 1,
             "targets": [f"me=exe:{INTERPRETER}"],
             "options": {"kind": "process"}},
            {"type": "network", "interval": 1, "targets": [f"tcp_connect:127.0.0.1:{port}"]},
            {"type": "custom", "name": "scripts", "interval": 1, "targets": [command],
             "options": {"kind": "exec"}},
            {"type": "custom", "name": "fixed", "interval": 1,
             "options": {"kind": "static", "samples": [{"name": "fact", "value": 7}]}},
        ],
        "log": {"level": "warning", "format": "json"},
    }  # fmt: skip
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(yaml.safe_dump(doc), encoding="utf-8")
    app = App(load_config(cfg, {}))
    await app.start()
    wanted = {
        "node_load1": "system",
        "demo_requests_total": "application scrape",
        "namedprocess_namegroup_num_procs": "application process",
        "probe_success": "network",
        "exec_metric": "custom exec",
        "fact": "custom static",
    }
    try:

        async def all_arrived() -> bool:
            stored = await read_stream(url)
            return all(samples_of(stored, name) for name in wanted)

        await wait_for("a sample of every collector type", all_arrived, within=60)
        stored = await read_stream(url)
        assert samples_of(stored, "demo_requests_total")[0][2] == 5.0
        assert samples_of(stored, "probe_success")[-1][2] == 1.0
        assert samples_of(stored, "exec_metric")[0][2] == 1.0
        assert any(v >= 1 for _l, _t, v in samples_of(stored, "namedprocess_namegroup_num_procs"))
    finally:
        await app.stop()
        page.close()
        await page.wait_closed()
