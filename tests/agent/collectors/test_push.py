"""The push endpoint over real HTTP: Pushgateway semantics, expiry, limits and errors."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import delete_from_gateway, push_to_gateway, pushadd_to_gateway
from structlog.testing import capture_logs

from agent.collectors.base import Collector, Sample
from agent.collectors.exec_formats import parse_families
from agent.collectors.push import BadRequest, PushCollector, create, grouping_labels
from agent.collectors.push_store import PushRejected, PushStore
from agent.scheduler import CollectorEntry, CollectorRunner
from agent.selfmetrics import AgentMetrics
from shared.config.models import CollectorConfig
from shared.wire import DecodeLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def values(samples: Iterable[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


def push_collector(clock: Clock | None = None, **options: object) -> PushCollector:
    c = create(
        CollectorConfig.model_validate(
            {
                "type": "custom",
                "name": "push",
                "options": {"kind": "push", "listen": "127.0.0.1:0", **options},
            }
        )
    )
    if clock is not None:
        c.clock = clock
    return c


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def endpoint(clock: Clock) -> AsyncIterator[PushCollector]:
    c = push_collector(clock, ttl="10m", max_body_bytes=2000, max_series=20)
    await c.start()
    yield c
    await c.close()


async def http(
    c: PushCollector,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """One real HTTP/1.1 request to the endpoint; (status, body)."""
    assert c.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", c.port)
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
    all_headers = {"Content-Length": str(len(body)), **(headers or {})}
    head += "".join(f"{k}: {v}\r\n" for k, v in all_headers.items())
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    text = data.decode()
    while text.startswith("HTTP/1.1 100 "):  # an interim answer to Expect: 100-continue
        text = text.partition("\r\n\r\n")[2]
    status_line, _, rest = text.partition("\r\n")
    return int(status_line.split()[1]), rest.partition("\r\n\r\n")[2]


async def test_put_stores_a_group_with_its_grouping_labels_and_push_time(
    endpoint: PushCollector,
) -> None:
    body = b'# TYPE backup_ok gauge\nbackup_ok{job="ignored",db="x"} 1\n'
    assert await http(endpoint, "PUT", "/metrics/job/backup/instance/db1", body) == (200, "")
    out = await endpoint.collect()
    assert values(out, "backup_ok") == {(("db", "x"), ("instance", "db1"), ("job", "backup")): 1.0}
    (push_time,) = [s for s in out if s.name == "push_time_seconds"]
    assert dict(push_time.labels) == {"job": "backup", "instance": "db1"}
    assert push_time.value > 1e9  # Unix seconds


async def test_put_replaces_the_group_post_merges_families_delete_removes(
    endpoint: PushCollector,
) -> None:
    path = "/metrics/job/j"
    assert (await http(endpoint, "PUT", path, b"a 1\nb 1\n"))[0] == 200
    assert (await http(endpoint, "POST", path, b"b 2\nc 2\n"))[0] == 200
    out = await endpoint.collect()
    assert {s.name: s.value for s in out if s.name in "abc"} == {"a": 1, "b": 2, "c": 2}
    assert (await http(endpoint, "PUT", path, b"c 3\n"))[0] == 200
    out = await endpoint.collect()
    assert {s.name: s.value for s in out if s.name in "abc"} == {"c": 3}
    assert (await http(endpoint, "PUT", "/metrics/job/other", b"a 9\n"))[0] == 200
    assert (await http(endpoint, "DELETE", path))[0] == 202
    out = await endpoint.collect()
    assert values(out, "a") == {(("job", "other"),): 9.0}
    assert values(out, "c") == {}


async def test_groups_expire_after_the_ttl_unless_pushed_again(
    endpoint: PushCollector, clock: Clock
) -> None:
    await http(endpoint, "PUT", "/metrics/job/old", b"x 1\n")
    clock.now += 400
    await http(endpoint, "PUT", "/metrics/job/new", b"x 2\n")
    clock.now += 400  # old: 800 s > 10 min; new: 400 s
    out = await endpoint.collect()
    assert values(out, "x") == {(("job", "new"),): 2.0}
    assert values(out, "push_time_seconds").keys() == {(("job", "new"),)}


async def test_a_malformed_body_is_400_with_the_parser_message_and_nothing_is_stored(
    endpoint: PushCollector,
) -> None:
    await http(endpoint, "PUT", "/metrics/job/j", b"kept 1\n")
    status, text = await http(endpoint, "PUT", "/metrics/job/j", b"fine 1\nnot{valid 1\n")
    assert status == 400
    assert text.startswith("cannot parse Prometheus text at line 2")
    assert values(await endpoint.collect(), "kept") == {(("job", "j"),): 1.0}
    status, text = await http(endpoint, "PUT", "/metrics/job/j", b"stamped 1 1700000000000\n")
    assert status == 400
    assert "must not have timestamps" in text


async def test_bodies_beyond_the_cap_and_series_beyond_the_limit_are_refused(
    endpoint: PushCollector,
) -> None:
    status, text = await http(endpoint, "PUT", "/metrics/job/j", b"x 1\n" * 600)
    assert status == 413
    assert "max_body_bytes (2000)" in text
    many = "".join(f'm{{i="{i}"}} 1\n' for i in range(21)).encode()
    status, text = await http(endpoint, "PUT", "/metrics/job/j", many)
    assert (status, "max_series (20)" in text) == (400, True)
    assert values(await endpoint.collect(), "m") == {}


async def test_bad_paths_methods_and_encodings(endpoint: PushCollector) -> None:
    assert (await http(endpoint, "PUT", "/metrics/jobs/x", b"x 1\n"))[0] == 404
    assert (await http(endpoint, "GET", "/metrics/job/x"))[0] == 405
    assert (await http(endpoint, "PUT", "/metrics/job/x/lonely", b"x 1\n"))[0] == 400
    assert (await http(endpoint, "PUT", "/metrics/job/x/__bad/v", b"x 1\n"))[0] == 400
    chunked = {"Transfer-Encoding": "chunked"}
    assert (await http(endpoint, "PUT", "/metrics/job/x", b"", chunked))[0] == 411
    proto = {"Content-Type": "application/vnd.google.protobuf; encoding=delimited"}
    assert (await http(endpoint, "PUT", "/metrics/job/x", b"x", proto))[0] == 415
    assert (await http(endpoint, "PUT", "/metrics/job/x", b"\xff\xfe 1\n"))[0] == 400
    status, _ = await http(endpoint, "PUT", "/metrics/job/x", b"", {"Content-Length": "zz"})
    assert status == 400


async def test_headers_beyond_the_limit_are_a_bad_request(endpoint: PushCollector) -> None:
    status, _ = await http(endpoint, "PUT", "/metrics/job/x", b"", {"X-Big": "a" * 20000})
    assert status == 400


async def test_type_conflicts_between_groups_are_refused(endpoint: PushCollector) -> None:
    await http(endpoint, "PUT", "/metrics/job/a", b"# TYPE t gauge\nt 1\n")
    status, text = await http(endpoint, "PUT", "/metrics/job/b", b"# TYPE t counter\nt 1\n")
    assert status == 400
    assert "is a counter here but a gauge in group" in text


async def test_the_prometheus_client_push_functions_work_against_the_endpoint(
    endpoint: PushCollector,
) -> None:
    reg = CollectorRegistry()
    Gauge("batch_last_success_unixtime", "Last success.", registry=reg).set(1.7e9)
    Counter("batch_records", "Records.", ["kind"], registry=reg).labels("x").inc(5)
    gateway = f"127.0.0.1:{endpoint.port}"
    key = {"instance": "a/b"}  # a slash: the client sends it as instance@base64
    await asyncio.to_thread(push_to_gateway, gateway, job="batch", registry=reg, grouping_key=key)
    out = await endpoint.collect()
    labels = (("instance", "a/b"), ("job", "batch"))
    assert values(out, "batch_last_success_unixtime") == {labels: 1.7e9}
    assert values(out, "batch_records_total") == {
        (("instance", "a/b"), ("job", "batch"), ("kind", "x")): 5.0
    }
    await asyncio.to_thread(
        pushadd_to_gateway, gateway, job="batch", registry=reg, grouping_key=key
    )
    await asyncio.to_thread(delete_from_gateway, gateway, job="batch", grouping_key=key)
    assert values(await endpoint.collect(), "batch_last_success_unixtime") == {}


async def test_a_client_waiting_for_100_continue_gets_it_before_sending_the_body(
    endpoint: PushCollector,
) -> None:
    assert endpoint.port is not None
    body = b"".join(f'e{{i="{i}"}} 1\n'.encode() for i in range(15))
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    writer.write(
        b"PUT /metrics/job/j HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    await writer.drain()
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(body)
    await writer.drain()
    assert (await reader.read()).startswith(b"HTTP/1.1 200 OK\r\n")
    writer.close()
    await writer.wait_closed()
    assert len(values(await endpoint.collect(), "e")) == 15


def test_grouping_keys_decode_urls_base64_and_drop_empty_values() -> None:
    assert grouping_labels("/metrics/job/a%20b/x/1/") == {"job": "a b", "x": "1"}
    value = base64.urlsafe_b64encode(b"/srv/data").decode().rstrip("=")
    assert grouping_labels(f"/metrics/job/j/path@base64/{value}") == {
        "job": "j",
        "path": "/srv/data",
    }
    assert grouping_labels("/metrics/job/j/empty@base64/=") == {"job": "j"}
    with pytest.raises(BadRequest, match="job name must not be empty"):
        grouping_labels("/metrics/job/")
    with pytest.raises(BadRequest, match="appears twice"):
        grouping_labels("/metrics/job/j/job/k")


def test_the_store_refuses_duplicate_series_and_keeps_groups_forever_with_ttl_zero() -> None:
    store = PushStore(ttl=0, max_series=10)
    with pytest.raises(PushRejected, match="appears more than once"):
        store.put({"job": "j"}, parse_families("x 1\ny 1\nx 2\n"), 0, 0)
    store.put({"job": "j"}, parse_families("x 1\n"), 0, 0)
    assert values(store.samples(1e9), "x") == {(("job", "j"),): 1.0}


async def test_the_endpoint_listens_on_first_collect_and_refuses_non_loopback() -> None:
    c = push_collector()
    assert c.port is None
    await c.collect()
    assert c.port
    await c.close()
    with pytest.raises(ValueError, match="not a loopback address"):
        push_collector(listen="0.0.0.0:9091")


class ListSink:
    """The scheduler's sink, keeping what it is given."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], float]] = []

    def add(
        self, name: str, labels: Mapping[str, str], ts_ms: int, value: float, **_: object
    ) -> None:
        self.got.append((name, dict(labels), value))


async def through_scheduler(collector: Collector) -> tuple[ListSink, float]:
    """One cycle run by the scheduler's runner: what reached the sink, samples dropped invalid."""
    sink, metrics = ListSink(), AgentMetrics()
    runner = CollectorRunner(
        CollectorEntry("c", collector, 10, {"team": "t"}),
        sink,
        metrics,
        host_labels={"host": "h"},
        limits=DecodeLimits(),
    )
    assert await runner.cycle(time.time())
    return sink, metrics.dropped_samples.labels("invalid")._value.get()


async def test_pushed_samples_pass_the_schedulers_checks(endpoint: PushCollector) -> None:
    body = b'# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
    assert (await http(endpoint, "PUT", "/metrics/job/j/instance/i", body))[0] == 200
    sink, dropped = await through_scheduler(endpoint)
    assert dropped == 0
    assert {"h_bucket", "h_sum", "h_count", "push_time_seconds"} <= {n for n, _l, _v in sink.got}


async def test_groups_persist_across_restarts_with_their_age(tmp_path: Path, clock: Clock) -> None:
    state = tmp_path / "push.json"
    first = push_collector(clock, ttl="10m", persistence_file=str(state))
    await first.start()
    assert (await http(first, "PUT", "/metrics/job/a", b"x 1\n"))[0] == 200
    assert (await http(first, "PUT", "/metrics/job/b/i/1", b"# TYPE y counter\ny NaN\n"))[0] == 200
    assert (await http(first, "DELETE", "/metrics/job/a"))[0] == 202
    await first.close()  # waits for the last write
    second = push_collector(clock, ttl="10m", persistence_file=str(state))
    await second.start()
    out = await second.collect()
    await second.close()
    assert values(out, "x") == {}
    (y,) = [s for s in out if s.name == "y"]
    assert (dict(y.labels), y.type, math.isnan(y.value)) == (
        {"job": "b", "i": "1"},
        "counter",
        True,
    )
    third = push_collector(clock, ttl="10m", persistence_file=str(state))
    third.wall_clock = lambda: time.time() + 3600  # an hour later: past the TTL
    await third.start()
    assert values(await third.collect(), "y") == {}
    await third.close()


async def test_an_unreadable_persistence_file_is_logged_and_the_endpoint_starts_empty(
    tmp_path: Path,
) -> None:
    state = tmp_path / "push.json"
    state.write_text("{not json", encoding="utf-8")
    c = push_collector(persistence_file=str(state))
    with capture_logs() as logs:
        assert [s for s in await c.collect() if s.name != "push_time_seconds"] == []
    await c.close()
    assert any("cannot parse push persistence file" in e.get("reason", "") for e in logs)
