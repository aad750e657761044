"""Helpers for agent tests against a real nats-server: provisioning, reading the stream back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import yaml
from nats.js.errors import NotFoundError

from shared.bus.provision import provision
from shared.codec import decode_batch
from shared.config.models import NatsConfig
from shared.wire import DecodeLimits, MetricBatch, Names

HOST = "web-1.example.com"
LIMITS = DecodeLimits()


@dataclass
class Stored:
    seq: int
    subject: str
    msg_id: str | None
    time: float  # stream timestamp, Unix seconds
    batch: MetricBatch
    data: bytes


def nats_section(url: str, *, duplicate_window: str = "2s") -> dict[str, Any]:
    return {
        "servers": [url],
        "reconnect_wait": "200ms",
        "connect_timeout": "1s",
        "streams": {
            "metrics": {"max_age": "1h", "max_bytes": 1 << 30, "duplicate_window": duplicate_window}
        },
    }


def write_config(
    path: Path,
    url: str,
    *,
    spool: Path,
    facts: Path,
    listen: bool = True,
    interval: int = 1,
    extra_agent: dict[str, Any] | None = None,
) -> Path:
    doc = {
        "nats": nats_section(url),
        "agent": {
            "hostname": HOST,
            "labels": {"dc": "eu"},
            "spool_dir": str(spool),
            "flush_interval": "200ms",
            "self_metrics_interval": "1s",
            "publish_timeout": "1s",
            **({"listen_address": "127.0.0.1:0"} if listen else {}),
            **(extra_agent or {}),
        },
        "collectors": [
            {
                "type": "custom",
                "name": "facts",
                "interval": interval,
                "labels": {"team": "ops"},
                "options": {"kind": "static", "file": str(facts)},
            }
        ],
        "log": {"level": "info", "format": "json"},
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def write_facts(path: Path, series: dict[str, float]) -> None:
    """One gauge `fact{name=<key>}` per entry."""
    items = [{"name": "fact", "labels": {"name": k}, "value": v} for k, v in series.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(items), encoding="utf-8")
    tmp.replace(path)


async def provision_stream(url: str, *, duplicate_window: str = "2s") -> None:
    cfg = NatsConfig.model_validate(nats_section(url, duplicate_window=duplicate_window))
    nc = await nats.connect(url)
    try:
        await provision(nc.jetstream(), cfg)
    finally:
        await nc.close()


async def read_stream(url: str, prefix: str = "vigil") -> list[Stored]:
    """Every message of the metrics stream, decoded, in stream order."""
    names = Names(prefix)
    nc = await nats.connect(url, max_reconnect_attempts=0)
    out: list[Stored] = []
    try:
        js = nc.jetstream()
        info = await js.stream_info(names.stream_metrics)
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                raw = await js.get_msg(names.stream_metrics, seq)
            except NotFoundError:
                continue
            data = raw.data or b""
            # samples may be older than "now" after a replay; decode with the newest allowed clock
            batch = decode_batch(data, limits=LIMITS, now_ms=int(time.time() * 1000))
            stamp = raw.time.timestamp() if raw.time is not None else 0.0
            msg_id = (raw.headers or {}).get("Nats-Msg-Id")
            out.append(Stored(seq, raw.subject or "", msg_id, stamp, batch, data))
    finally:
        await nc.close()
    return out


async def wait_for(
    what: str, probe: Callable[[], Any], *, within: float = 30.0, step: float = 0.2
) -> Any:
    """Poll ``probe`` (sync or async) until it returns something truthy; bounded."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {within:.0f}s waiting for {what}; last: {last!r}")


def samples_of(stored: list[Stored], name: str) -> list[tuple[dict[str, str], int, float]]:
    return [(s.labels, ts, v) for m in stored for s, ts, v in m.batch.samples() if s.name == name]
