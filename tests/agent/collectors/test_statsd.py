"""StatsD: the aggregation state machine on its own, then real UDP packets to the listener."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterable, Mapping

import pytest
from structlog.testing import capture_logs

from agent.collectors.base import Collector, Sample
from agent.collectors.statsd import StatsdCollector, create
from agent.collectors.statsd_state import Malformed, StatsdState, parse_line
from agent.scheduler import CollectorEntry, CollectorRunner
from agent.selfmetrics import AgentMetrics
from shared.config.models import CollectorConfig
from shared.wire import DecodeLimits


def values(samples: Iterable[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


def state(**kw: object) -> StatsdState:
    args: dict[str, object] = {"ttl": 60.0, "max_series": 100, **kw}
    return StatsdState(**args)  # type: ignore[arg-type]


def test_counters_add_up_scaled_by_sample_rate_as_total() -> None:
    s = state()
    s.feed("hits:1|c\nhits:2|c|@0.5\nreq.ok-count:3|c|#code:200,path:/a", now=0)
    out = s.samples(now=1)
    assert values(out, "hits_total") == {(): 5.0}
    assert values(out, "req_ok_count_total") == {(("code", "200"), ("path", "/a")): 3.0}
    assert {x.type for x in out if x.name == "hits_total"} == {"counter"}
    s.feed("already_total:1|c", now=2)
    assert values(s.samples(now=2), "already_total") == {(): 1.0}


def test_gauges_set_and_signed_values_are_deltas() -> None:
    s = state()
    s.feed("temp:10|g\ntemp:+5|g\ntemp:-20|g", now=0)
    assert values(s.samples(now=0), "temp") == {(): -5.0}
    s.feed("temp:3|g", now=0)
    assert values(s.samples(now=0), "temp") == {(): 3.0}


def test_timers_are_histograms_in_seconds_with_cumulative_buckets() -> None:
    s = state(timer_buckets=[0.1, 1.0])
    s.feed("rpc:50|ms\nrpc:500:5000|ms\nrpc:100|ms|@0.5", now=0)
    out = s.samples(now=0)
    assert values(out, "rpc_bucket") == {
        (("le", "0.1"),): 3.0,  # 50 ms once, 100 ms weighted 2
        (("le", "1"),): 4.0,
        (("le", "+Inf"),): 5.0,
    }
    assert values(out, "rpc_count") == {(): 5.0}
    assert values(out, "rpc_sum") == pytest.approx({(): 0.05 + 0.5 + 5.0 + 0.2})
    assert {x.type for x in out if x.name.startswith("rpc")} == {"histogram"}


def test_h_and_d_lines_are_histograms_in_their_own_unit() -> None:
    s = state(histogram_buckets=[10, 100])
    s.feed("size:5|h\nsize:50|d\nsize:500|h", now=0)
    assert values(s.samples(now=0), "size_bucket") == {
        (("le", "10"),): 1.0,
        (("le", "100"),): 2.0,
        (("le", "+Inf"),): 3.0,
    }


def test_series_expire_after_ttl_and_a_returning_counter_starts_over() -> None:
    s = state(ttl=60.0)
    s.feed("a:1|c\nb:1|g", now=0)
    s.feed("a:1|c", now=50)
    out = s.samples(now=100)
    assert values(out, "a_total") == {(): 2.0}
    assert values(out, "b") == {}
    s.feed("b:1|c", now=100)  # b expired: it may come back with another type
    assert values(s.samples(now=100), "b_total") == {(): 1.0}
    assert values(s.samples(now=200), "a_total") == {}
    s.feed("a:1|c", now=200)
    assert values(s.samples(now=200), "a_total") == {(): 1.0}


def test_bad_lines_type_conflicts_and_the_series_limit_are_counted() -> None:
    s = state(max_series=2)
    s.feed("x:1|c\nx:1|g\nnope\ny:abc|c\nz:1|zz\ny:1|c\nw:1|c\n", now=0)
    out = s.samples(now=0)
    assert values(out, "vigil_statsd_dropped_lines_total") == {
        (("reason", "malformed"),): 3.0,
        (("reason", "type_conflict"),): 1.0,
        (("reason", "series_limit"),): 1.0,
    }
    assert values(out, "vigil_statsd_lines_total") == {(): 2.0}
    assert s.first_malformed is not None
    assert "nope" in s.first_malformed


@pytest.mark.parametrize(
    "line",
    ["x", "x:1", ":1|c", "x:|c", "x:1|c|@0", "x:1|c|@2", "x:nan|g", "x:1:2|g", "x:1|s"],
)
def test_malformed_lines(line: str) -> None:
    with pytest.raises(Malformed):
        parse_line(line)


def test_valueless_tags_and_unknown_sections_are_ignored() -> None:
    line = parse_line("x:1|c|#env:prod,flag,bad.key:v|T1700000000|c:abc")
    assert line.labels == (("bad_key", "v"), ("env", "prod"))


# ---------------------------------------------------------------- real UDP


def statsd(**options: object) -> StatsdCollector:
    return create(
        CollectorConfig.model_validate(
            {"type": "custom", "name": "sd", "options": {"kind": "statsd", **options}}
        )
    )


@pytest.fixture
async def listener() -> AsyncIterator[StatsdCollector]:
    c = statsd(listen="127.0.0.1:0")
    await c.start()
    yield c
    await c.close()


async def send_until(c: StatsdCollector, packets: list[bytes], name: str) -> list[Sample]:
    """Send ``packets`` and collect until ``name`` shows up (UDP: the loop reads asynchronously)."""
    assert c.port is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for p in packets:
            sock.sendto(p, ("127.0.0.1", c.port))
    for _ in range(400):
        samples = await c.collect()
        if any(s.name == name for s in samples):
            return samples
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} never arrived")


async def test_udp_packets_are_aggregated_and_collect_returns_cumulative_state(
    listener: StatsdCollector,
) -> None:
    assert listener.port
    out = await send_until(
        listener,
        [b"page.views:1|c|#site:a\npage.views:2|c|#site:a", b"load:0.5|g", b"done:1|g"],
        "done",
    )
    assert values(out, "page_views_total") == {(("site", "a"),): 3.0}
    assert values(out, "load") == {(): 0.5}
    out = await send_until(listener, [b"page.views:1|c|#site:a", b"done2:1|g"], "done2")
    assert values(out, "page_views_total") == {(("site", "a"),): 4.0}


async def test_malformed_packets_are_counted_and_logged_once(listener: StatsdCollector) -> None:
    with capture_logs() as logs:
        await send_until(listener, [b"garbage", b"\xff\xfe:1|c", b"more garbage", b"ok:1|g"], "ok")
        await listener.collect()
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert "garbage" in warnings[0]["first"]


async def test_the_listener_binds_on_first_collect_and_a_taken_port_fails_the_cycle(
    listener: StatsdCollector,
) -> None:
    other = statsd(listen=f"127.0.0.1:{listener.port}")
    assert other.port is None  # building binds nothing (--check-config, reload)
    with pytest.raises(OSError, match=r"cannot listen on udp 127\.0\.0\.1"):
        await other.collect()
    await other.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"listen": "0.0.0.0:8125"}, "not a loopback address"),
        ({"listen": "8125"}, "expected host:port"),
        ({"ttl": 0}, "options.ttl"),
        ({"timer_buckets": [1, 0.5]}, "strictly increasing"),
        ({"max_series": 0}, "options.max_series"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        statsd(**options)


def test_a_non_loopback_address_is_allowed_when_asked_for() -> None:
    assert statsd(listen="0.0.0.0:8125", allow_non_loopback=True).port is None


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


async def test_statsd_samples_pass_the_schedulers_checks(listener: StatsdCollector) -> None:
    await send_until(
        listener, [b"a.b:1|c|#x:y", b"g:-1|g", b"t:5|ms", b"h:5|h", b"done:1|g"], "done"
    )
    sink, dropped = await through_scheduler(listener)
    assert dropped == 0
    assert {"a_b_total", "g", "t_bucket", "h_sum", "vigil_statsd_lines_total"} <= {
        n for n, _l, _v in sink.got
    }
