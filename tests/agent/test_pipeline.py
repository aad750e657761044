"""The agent in-process against a real nats-server: samples arrive, decode, end with markers."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from agent.app import App
from shared.config import load_config
from shared.devenv.nats import NatsServer
from shared.wire import Names, is_stale
from tests.agent.natsutil import (
    HOST,
    provision_stream,
    read_stream,
    samples_of,
    wait_for,
    write_config,
    write_facts,
)
from tests.shared.test_reload_and_admin import http


async def start_agent(tmp_path: Path, url: str, series: dict[str, float]) -> tuple[App, Path, Path]:
    await provision_stream(url)
    facts = tmp_path / "facts.yaml"
    write_facts(facts, series)
    cfg = write_config(tmp_path / "vigil.yaml", url, spool=tmp_path / "spool", facts=facts)
    app = App(load_config(cfg, {}))
    await app.start()
    return app, facts, cfg


async def test_samples_arrive_on_the_hosts_subject_and_decode(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    app, _facts, _cfg = await start_agent(tmp_path, url, {"a": 1.5})
    try:

        async def arrived() -> bool:
            got = await read_stream(url)
            durations = samples_of(got, "vigil_agent_collector_duration_seconds")
            return bool(samples_of(got, "fact")) and any(
                lab["collector"] == "facts" for lab, _t, _v in durations
            )

        await wait_for("facts and self-metrics in the stream", arrived)
        stored = await read_stream(url)
        assert {m.subject for m in stored} == {Names().metrics(HOST)}
        assert all(m.msg_id == m.batch.msg_id for m in stored)
        assert all(m.batch.agent_id == app.instance_id for m in stored)
        labels, ts, value = samples_of(stored, "fact")[0]
        assert labels == {"name": "a", "team": "ops", "dc": "eu"}
        assert value == 1.5
        assert ts % 1000 == 0 or ts > 0
        assert samples_of(stored, "vigil_agent_samples_published_total")
        assert app.port is not None
        status, body = await http(app.port, "GET", "/metrics")
        assert status == 200
        assert b"vigil_agent_batches_published_total" in body
    finally:
        await app.stop()


async def test_a_series_that_disappears_and_the_agent_stop_produce_staleness_markers(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    app, facts, _cfg = await start_agent(tmp_path, url, {"a": 1.0, "b": 2.0})
    try:

        async def both() -> bool:
            names = {lab["name"] for lab, _t, _v in samples_of(await read_stream(url), "fact")}
            return names == {"a", "b"}

        await wait_for("both series", both)
        write_facts(facts, {"a": 1.0})

        async def b_marked() -> list[tuple[dict[str, str], int, float]]:
            return [
                s
                for s in samples_of(await read_stream(url), "fact")
                if s[0]["name"] == "b" and math.isnan(s[2])
            ]

        marked = await wait_for("a staleness marker for b", b_marked)
        assert len(marked) == 1
        assert is_stale(marked[0][2])
        a_values = [
            v for lab, _t, v in samples_of(await read_stream(url), "fact") if lab["name"] == "a"
        ]
        assert not any(math.isnan(v) for v in a_values)
    finally:
        await app.stop()
    stored = await read_stream(url)
    a_marks = [s for s in samples_of(stored, "fact") if s[0]["name"] == "a" and is_stale(s[2])]
    assert len(a_marks) == 1, "the agent's stop marks its live series stale"


async def test_reload_rebuilds_collectors_and_marks_a_removed_collectors_series(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    app, _facts, cfg = await start_agent(tmp_path, url, {"a": 1.0})
    try:
        await wait_for("a sample", lambda: _has_fact(url))
        cfg.write_text(cfg.read_text().replace("name: facts", "name: other"), encoding="utf-8")
        assert app.port is not None
        status, body = await http(app.port, "POST", "/-/reload")
        assert status == 200, body

        async def marker() -> bool:
            return any(
                is_stale(v) and lab.get("team") == "ops"
                for lab, _t, v in samples_of(await read_stream(url), "fact")
            )

        await wait_for("a marker for the removed collector's series", marker)
        # a broken config is refused and the running collectors stay
        cfg.write_text(cfg.read_text().replace("kind: static", "kind: nope"), encoding="utf-8")
        status, body = await http(app.port, "POST", "/-/reload")
        assert status == 500
        assert b"options.kind" in body
        assert set(app.scheduler.runners) == {"other", "_agent"}  # type: ignore[union-attr]
    finally:
        await app.stop()


async def _has_fact(url: str) -> bool:
    return bool(samples_of(await read_stream(url), "fact"))


async def test_agent_starts_and_spools_without_nats_then_publishes_when_it_comes(
    tmp_path: Path,
) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    url = server.url
    await provision_stream(url)
    server.stop()
    facts = tmp_path / "facts.yaml"
    write_facts(facts, {"a": 1.0})
    cfg = write_config(tmp_path / "vigil.yaml", url, spool=tmp_path / "spool", facts=facts)
    app = App(load_config(cfg, {}))
    await app.start()
    try:
        assert app.publisher is not None
        await wait_for("a spooled batch", lambda: app.metrics.spooled_batches._value.get() >= 2)
        server.start()
        await wait_for("the spool replayed", lambda: app.metrics.replayed_batches._value.get() >= 2)
        await wait_for(
            "an empty spool", lambda: app.publisher is not None and app.publisher.spool.empty
        )
        stored = await read_stream(url)
        seqs = sorted(m.batch.seq for m in stored)
        assert seqs == list(range(len(seqs)))
    finally:
        await app.stop()
        server.stop()
    await asyncio.sleep(0)
