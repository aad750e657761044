"""The scrape collector against real HTTP servers on 127.0.0.1 serving exposition pages.

``PageServer`` is a small asyncio HTTP/1.1 server: each path serves a
``Route`` (status, content type, body, chunked or gzip encoding) or hangs
after reading the request; it records the headers of every request. Pages
come from prometheus-client's own exposition (a realistic oracle) or are
written out where exact values matter.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from structlog.testing import capture_logs

from agent.collectors.base import Sample
from agent.collectors.process import ProcessCollector
from agent.collectors.registry import build, default_registry
from agent.collectors.scrape import ScrapeCollector, create
from agent.scheduler import CollectorEntry, CollectorRunner
from agent.selfmetrics import AgentMetrics
from shared.config.models import CollectorConfig
from shared.wire import DecodeLimits, is_stale
from tests.fixtures.natsauth import LocalCA, openssl

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

PAGE = """\
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027
http_requests_total{method="post",code="400"} 3
# HELP temperature_celsius Room temperature.
# TYPE temperature_celsius gauge
temperature_celsius{room=""} 21.5
# HELP rpc_duration_seconds A summary of RPC durations.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# HELP request_seconds A histogram of request durations.
# TYPE request_seconds histogram
request_seconds_bucket{le="0.05"} 24054
request_seconds_bucket{le="0.1"} 33444
request_seconds_bucket{le="+Inf"} 144320
request_seconds_sum 53423
request_seconds_count 144320
legacy_thing{kind="x"} +Inf
"""
PAGE_SAMPLES = 13


@dataclass
class Route:
    body: bytes = PAGE.encode()
    status: int = 200
    content_type: str = TEXT
    chunked: bool = False
    gzip: bool = False
    hang: bool = False


@dataclass
class PageServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(
            self._handle,
            "127.0.0.1",
            0,
            ssl=ssl_context,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            headers = {}
            for line in head[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            self.requests.append((path, headers))
            route = self.routes.get(path)
            if route is None:
                route = Route(b"not found\n", status=404)
            if route.hang:
                await asyncio.Event().wait()  # accepted, read, never answered
            writer.write(_response(route))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()


def _response(route: Route) -> bytes:
    body = route.body
    lines = [f"HTTP/1.1 {route.status} {'OK' if route.status == 200 else 'Oops'}"]
    lines.append(f"Content-Type: {route.content_type}")
    if route.gzip:
        body = gzip.compress(body)
        lines.append("Content-Encoding: gzip")
    if route.chunked:
        lines.append("Transfer-Encoding: chunked")
        step = max(1, len(body) // 3)
        chunks = [body[i : i + step] for i in range(0, len(body), step)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@pytest.fixture
async def server() -> AsyncIterator[PageServer]:
    srv = PageServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def other() -> AsyncIterator[PageServer]:
    """A second server, for a second target (one instance per target)."""
    srv = PageServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def hanging() -> AsyncIterator[PageServer]:
    """Accepts a connection, reads the request, never answers."""
    srv = PageServer({"/metrics": Route(hang=True)})
    await srv.start()
    yield srv
    await srv.stop()


def collector(
    targets: list[str], name: str = "apps", interval: float = 10, **options: object
) -> ScrapeCollector:
    config = CollectorConfig(
        type="application", name=name, interval=interval, targets=targets, options=options
    )
    return create(config)


def series(samples: Iterable[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


def value(samples: Iterable[Sample], name: str, **labels: str) -> float:
    return series(samples, name)[tuple(sorted(labels.items()))]


def report(samples: Iterable[Sample], instance: str, job: str = "apps") -> dict[str, float]:
    names = (
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
    )
    return {n: value(samples, n, job=job, instance=instance) for n in names}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- formats


async def test_text_page_gives_every_type_with_job_instance_and_metadata(
    server: PageServer,
) -> None:
    server.routes["/metrics"] = Route()
    samples = await collector([server.url("/metrics")]).collect()
    inst = f"127.0.0.1:{server.port}"
    base = {"job": "apps", "instance": inst}

    rep = report(samples, inst)
    assert rep["scrape_duration_seconds"] >= 0
    del rep["scrape_duration_seconds"]
    assert rep == {
        "up": 1.0,
        "scrape_samples_scraped": PAGE_SAMPLES,
        "scrape_samples_post_metric_relabeling": PAGE_SAMPLES,
    }
    assert value(samples, "http_requests_total", method="post", code="400", **base) == 3
    assert value(samples, "temperature_celsius", **base) == 21.5  # the empty label is absent
    assert value(samples, "rpc_duration_seconds", quantile="0.99", **base) == 76656
    assert value(samples, "rpc_duration_seconds_count", **base) == 2693
    assert value(samples, "request_seconds_bucket", le="+Inf", **base) == 144320
    assert value(samples, "request_seconds_bucket", le="0.05", **base) == 24054
    assert value(samples, "request_seconds_sum", **base) == 53423
    assert math.isinf(value(samples, "legacy_thing", kind="x", **base))
    meta = {s.name: (s.type, s.help, s.unit) for s in samples}
    assert meta["http_requests_total"] == ("counter", "The total number of HTTP requests.", None)
    assert meta["request_seconds_bucket"][0] == "histogram"
    assert meta["request_seconds_count"][0] == "histogram"
    assert meta["rpc_duration_seconds_sum"][0] == "summary"
    assert meta["legacy_thing"] == ("unknown", None, None)
    assert meta["up"][0] == "gauge"
    assert all(s.ts_ms is None for s in samples)  # the scheduler stamps them


async def test_prometheus_client_text_page_round_trips(server: PageServer) -> None:
    registry = CollectorRegistry()
    jobs = Counter("jobs", "Jobs done.", ["queue"], registry=registry)
    jobs.labels("mail").inc(3)
    latency = Histogram("lat_seconds", "Latency.", buckets=(0.1, 1), registry=registry)
    latency.observe(0.5)
    Gauge("queue_depth", "Depth.", registry=registry).set(7)
    server.routes["/metrics"] = Route(generate_latest(registry))

    samples = await collector([f"127.0.0.1:{server.port}"]).collect()

    base = {"job": "apps", "instance": f"127.0.0.1:{server.port}"}
    assert value(samples, "jobs_total", queue="mail", **base) == 3
    assert value(samples, "lat_seconds_bucket", le="1.0", **base) == 1
    assert value(samples, "lat_seconds_bucket", le="0.1", **base) == 0
    assert value(samples, "queue_depth", **base) == 7
    # The text format carries _created as gauges of their own; Prometheus keeps them.
    assert "jobs_created" in {s.name for s in samples}


async def test_openmetrics_page_is_chosen_by_content_type_with_units_and_no_created(
    server: PageServer,
) -> None:
    registry = CollectorRegistry()
    Counter("jobs", "Jobs done.", registry=registry).inc(2)
    Histogram("lat_seconds", "Latency.", buckets=(1,), registry=registry).observe(0.5)
    page = generate_openmetrics(registry).decode()  # type: ignore[no-untyped-call]
    page = page.replace("# EOF\n", "# TYPE disk_bytes gauge\n# UNIT disk_bytes bytes\n")
    page += "disk_bytes 4096 1700000000.123\n# EOF\n"
    server.routes["/metrics"] = Route(page.encode(), content_type=OPENMETRICS)

    samples = await collector([server.url("/metrics")]).collect()

    names = {s.name for s in samples}
    assert {"jobs_total", "lat_seconds_bucket", "lat_seconds_count", "disk_bytes"} <= names
    assert not {n for n in names if n.endswith("_created")}
    disk = next(s for s in samples if s.name == "disk_bytes")
    assert (disk.type, disk.unit, disk.ts_ms) == ("gauge", "bytes", 1_700_000_000_123)
    assert next(s for s in samples if s.name == "jobs_total").type == "counter"
    accept = server.requests[0][1]["accept"]
    assert accept.startswith("application/openmetrics-text;version=1.0.0")
    assert "text/plain;version=0.0.4" in accept


async def test_timestamps_in_the_page_are_kept_in_ms_unless_honor_timestamps_is_false(
    server: PageServer,
) -> None:
    server.routes["/metrics"] = Route(b"a 1 1700000000123\nb 2\n")

    kept = await collector([server.url("/metrics")]).collect()
    ignored = await collector([server.url("/metrics")], honor_timestamps=False).collect()

    assert {s.name: s.ts_ms for s in kept if s.name in "ab"} == {"a": 1700000000123, "b": None}
    assert all(s.ts_ms is None for s in ignored)


async def test_chunked_and_gzip_encoded_pages_are_read(server: PageServer) -> None:
    server.routes["/chunked"] = Route(chunked=True)
    server.routes["/gzip"] = Route(gzip=True, chunked=True)

    chunked = await collector([server.url("/chunked")]).collect()
    gzipped = await collector([server.url("/gzip")]).collect()

    inst = f"127.0.0.1:{server.port}"
    for samples in (chunked, gzipped):
        assert report(samples, inst)["scrape_samples_scraped"] == PAGE_SAMPLES
    assert server.requests[1][1]["accept-encoding"] == "gzip"


# ---------------------------------------------------------------------- failures


async def test_hanging_target_times_out_with_up_0_while_others_are_scraped(
    server: PageServer, hanging: PageServer
) -> None:
    server.routes["/metrics"] = Route()
    c = collector([hanging.url("/metrics"), server.url("/metrics")], timeout="2s")

    with capture_logs() as logs:
        samples = await c.collect()

    inst = f"127.0.0.1:{server.port}"
    assert report(samples, f"127.0.0.1:{hanging.port}")["up"] == 0
    assert report(samples, inst)["up"] == 1
    assert value(
        samples, "http_requests_total", method="post", code="200", job="apps", instance=inst
    )
    assert [e["target"] for e in logs if e["event"] == "cannot scrape target"] == [
        hanging.url("/metrics")
    ]
    assert "no answer within 2s" in logs[0]["reason"]
    assert hanging.requests  # it was reached, and kept silent


async def test_malformed_page_is_up_0_and_logged_once_until_it_recovers(
    server: PageServer,
) -> None:
    server.routes["/metrics"] = Route(b"<html><body>not metrics</body></html>\n")
    c = collector([server.url("/metrics")])
    inst = f"127.0.0.1:{server.port}"

    with capture_logs() as logs:
        first = await c.collect()
        second = await c.collect()
        server.routes["/metrics"] = Route()
        recovered = await c.collect()
        server.routes["/metrics"] = Route(b'bad{label="x} 1\n')
        broken_again = await c.collect()

    assert report(first, inst)["up"] == 0
    assert report(second, inst)["up"] == 0
    assert {s.name for s in first} == set(report(first, inst))  # nothing but the report
    assert report(recovered, inst)["up"] == 1
    assert report(broken_again, inst)["up"] == 0
    events = [(e["event"], e["log_level"]) for e in logs]
    assert events == [
        ("cannot scrape target", "warning"),
        ("target scraped again", "info"),
        ("cannot scrape target", "warning"),
    ]
    assert "cannot parse Prometheus text page" in logs[0]["reason"]


async def test_truncated_openmetrics_page_without_eof_is_malformed(server: PageServer) -> None:
    server.routes["/metrics"] = Route(b"# TYPE a gauge\na 1\n", content_type=OPENMETRICS)

    samples = await collector([server.url("/metrics")]).collect()

    assert report(samples, f"127.0.0.1:{server.port}")["up"] == 0


async def test_http_error_status_refused_connection_and_oversized_body_are_up_0(
    server: PageServer, other: PageServer
) -> None:
    server.routes["/error"] = Route(b"boom\n", status=500)
    other.routes["/big"] = Route(b"x 1\n" * 1000)
    refused = f"http://127.0.0.1:{closed_port()}/metrics"
    cases = [server.url("/error"), server.url("/missing"), refused, other.url("/big")]

    with capture_logs() as logs:
        results = [await collector([url], body_size_limit=1000).collect() for url in cases]

    assert [s.value for r in results for s in r if s.name == "up"] == [0.0, 0.0, 0.0, 0.0]
    reasons = {e["target"]: e["reason"] for e in logs}
    assert "HTTP status 500" in reasons[server.url("/error")]
    assert "HTTP status 404" in reasons[server.url("/missing")]
    assert "cannot connect" in reasons[refused]
    assert "exceeds the limit of 1000" in reasons[other.url("/big")]


async def test_page_over_sample_limit_fails_the_whole_scrape(server: PageServer) -> None:
    server.routes["/metrics"] = Route()
    c = collector([server.url("/metrics")], sample_limit=PAGE_SAMPLES - 1)

    with capture_logs() as logs:
        samples = await c.collect()

    inst = f"127.0.0.1:{server.port}"
    assert report(samples, inst)["up"] == 0
    assert {s.name for s in samples} == set(report(samples, inst))
    assert "sample limit exceeded" in logs[0]["reason"]


async def test_sample_limit_counts_samples_left_after_relabeling(server: PageServer) -> None:
    server.routes["/metrics"] = Route()
    c = collector(
        [server.url("/metrics")],
        sample_limit=PAGE_SAMPLES - 5,
        metric_relabel_configs=[
            {"source_labels": ["__name__"], "regex": "request_seconds.*", "action": "drop"}
        ],
    )

    samples = await c.collect()

    rep = report(samples, f"127.0.0.1:{server.port}")
    assert rep["up"] == 1
    assert rep["scrape_samples_scraped"] == PAGE_SAMPLES
    assert rep["scrape_samples_post_metric_relabeling"] == PAGE_SAMPLES - 5
    assert not [s for s in samples if s.name.startswith("request_seconds")]


# ---------------------------------------------------------------------- labels


async def test_clashing_job_and_instance_are_exported_unless_honor_labels(
    server: PageServer,
) -> None:
    server.routes["/metrics"] = Route(
        b'pushed{job="batch",instance="worker-1",exported_job="old"} 1\n'
    )
    inst = f"127.0.0.1:{server.port}"

    plain = await collector([server.url("/metrics")], job="gateway").collect()
    honored = await collector([server.url("/metrics")], honor_labels=True).collect()

    assert series(plain, "pushed") == {
        tuple(
            sorted(
                {
                    "job": "gateway",
                    "instance": inst,
                    "exported_job": "old",
                    "exported_exported_job": "batch",
                    "exported_instance": "worker-1",
                }.items()
            )
        ): 1.0
    }
    assert series(honored, "pushed") == {
        (("exported_job", "old"), ("instance", "worker-1"), ("job", "batch")): 1.0
    }
    assert report(honored, inst)["up"] == 1  # the report keeps the target's labels


async def test_metric_relabel_configs_rewrite_keep_and_drop_series(server: PageServer) -> None:
    server.routes["/metrics"] = Route()
    rules = [
        {"source_labels": ["__name__"], "regex": "http_requests_total|temperature_celsius", "action": "keep"},
        {"source_labels": ["code"], "regex": "4..", "action": "drop"},
        {"source_labels": ["__name__"], "regex": "temperature_(.*)", "target_label": "__name__", "replacement": "room_temperature_$1"},
        {"regex": "(method)", "replacement": "http_$1", "action": "labelmap"},
        {"regex": "method|instance", "action": "labeldrop"},
        {"source_labels": ["job", "code"], "separator": "/", "target_label": "origin"},
    ]  # fmt: skip
    c = collector([server.url("/metrics")], metric_relabel_configs=rules)

    samples = await c.collect()

    page = [s for s in samples if not s.name.startswith(("up", "scrape_"))]
    assert sorted((s.name, tuple(sorted(s.labels.items()))) for s in page) == [
        (
            "http_requests_total",
            (("code", "200"), ("http_method", "post"), ("job", "apps"), ("origin", "apps/200")),
        ),
        ("room_temperature_celsius", (("job", "apps"), ("origin", "apps/"))),
    ]
    rep = report(samples, f"127.0.0.1:{server.port}")
    assert (rep["scrape_samples_scraped"], rep["scrape_samples_post_metric_relabeling"]) == (
        PAGE_SAMPLES,
        2,
    )


async def test_duplicate_series_keep_the_first_and_are_logged_once(server: PageServer) -> None:
    server.routes["/metrics"] = Route(
        b'a{x="1"} 1\na{x="1"} 2\na{x="2",y="1"} 3\na{x="2",y="2"} 4\n'
    )
    c = collector(
        [server.url("/metrics")], metric_relabel_configs=[{"regex": "y", "action": "labeldrop"}]
    )
    inst = f"127.0.0.1:{server.port}"

    with capture_logs() as logs:
        samples = await c.collect()
        await c.collect()

    assert series(samples, "a") == {
        (("instance", inst), ("job", "apps"), ("x", "1")): 1.0,
        (("instance", inst), ("job", "apps"), ("x", "2")): 3.0,
    }
    rep = report(samples, inst)
    assert (
        rep["up"],
        rep["scrape_samples_scraped"],
        rep["scrape_samples_post_metric_relabeling"],
    ) == (1, 4, 2)
    assert [e["duplicates"] for e in logs] == [2]


async def test_relabeling_that_removes_the_name_drops_the_series(server: PageServer) -> None:
    server.routes["/metrics"] = Route(b"a 1\nb 2\n")
    rules = [{"regex": "__name__", "action": "labeldrop"}]

    samples = await collector([server.url("/metrics")], metric_relabel_configs=rules).collect()

    assert {s.name for s in samples} == {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
    }


# ---------------------------------------------------------------------- targets and auth


async def test_host_port_target_uses_scheme_and_metrics_path_and_sends_scrape_headers(
    server: PageServer,
) -> None:
    server.routes["/custom/path?x=1"] = Route()
    c = collector([f"127.0.0.1:{server.port}"], metrics_path="/custom/path?x=1", timeout=3)

    samples = await c.collect()

    assert report(samples, f"127.0.0.1:{server.port}")["up"] == 1
    path, headers = server.requests[0]
    assert path == "/custom/path?x=1"
    assert headers["x-prometheus-scrape-timeout-seconds"] == "3"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert "authorization" not in headers


def test_instance_is_host_and_port_with_the_scheme_default_filled_in() -> None:
    c = collector(
        ["http://example.invalid/metrics", "https://[::1]/m", "example.invalid:9100"],
        job="j",
    )
    assert [t.labels for t in c.targets] == [
        {"job": "j", "instance": "example.invalid:80"},
        {"job": "j", "instance": "[::1]:443"},
        {"job": "j", "instance": "example.invalid:9100"},
    ]


async def test_basic_auth_and_bearer_token_are_sent(server: PageServer, tmp_path: Path) -> None:
    server.routes["/metrics"] = Route()
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")

    await collector(
        [server.url("/metrics")], basic_auth={"username": "vigil", "password": "pw"}
    ).collect()
    await collector([server.url("/metrics")], bearer_token_file=str(token)).collect()

    assert server.requests[0][1]["authorization"] == "Basic dmlnaWw6cHc="
    assert server.requests[1][1]["authorization"] == "Bearer s3cret-token"


@pytest.mark.skipif(openssl() is None, reason="needs the openssl command to make certificates")
async def test_https_target_verified_with_ca_file_or_skipped_verification(
    tmp_path: Path,
) -> None:
    ca = LocalCA.create(tmp_path / "ca")
    leaf = ca.issue("exporter", ips=["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(leaf.cert_file, leaf.key_file)
    srv = PageServer({"/metrics": Route(), "/hang": Route(hang=True)})
    await srv.start(context)
    try:
        url = srv.url("/metrics", "https")
        inst = f"127.0.0.1:{srv.port}"
        with capture_logs() as logs:
            untrusted = await collector([url]).collect()
        trusted = await collector([url], tls_config={"ca_file": str(ca.cert_file)}).collect()
        skipped = await collector([url], tls_config={"insecure_skip_verify": True}).collect()
        silent = await collector(
            [srv.url("/hang", "https")], tls_config={"ca_file": str(ca.cert_file)}, timeout="1s"
        ).collect()
    finally:
        await srv.stop()

    assert report(untrusted, inst)["up"] == 0
    assert "TLS" in logs[0]["reason"]
    assert report(trusted, inst)["up"] == 1
    assert report(skipped, inst)["up"] == 1
    assert value(trusted, "temperature_celsius", job="apps", instance=inst) == 21.5
    assert report(silent, inst)["up"] == 0  # TLS up, then no answer: the timeout ends it


async def test_target_files_add_labelled_targets_and_are_reread_when_they_change(
    server: PageServer, other: PageServer, tmp_path: Path
) -> None:
    server.routes["/metrics"] = Route(b"a 1\n")
    other.routes["/metrics"] = Route(b"b 2\n")
    sd = tmp_path / "sd"
    sd.mkdir()

    def write(text: str) -> None:
        tmp = tmp_path / "new.yaml"
        tmp.write_text(text)
        tmp.replace(sd / "targets.yaml")  # a new inode: seen as changed whatever the clock

    write(f"- targets: ['127.0.0.1:{other.port}', 'ftp://nope/']\n  labels: {{team: db}}\n")
    c = collector([server.url("/metrics")], target_files=[str(sd / "*.yaml")])
    one, two = f"127.0.0.1:{server.port}", f"127.0.0.1:{other.port}"

    with capture_logs() as logs:
        first = await c.collect()
        again = await c.collect()
        write(f"- targets: ['127.0.0.1:{other.port}']\n  labels: {{team: web, job: legacy}}\n")
        changed = await c.collect()
        write("[]\n")
        emptied = await c.collect()

    assert series(first, "a") == {(("instance", one), ("job", "apps")): 1.0}
    assert series(first, "b") == {(("instance", two), ("job", "apps"), ("team", "db")): 2.0}
    assert value(first, "up", job="apps", instance=two, team="db") == 1
    assert {s.name for s in again} == {s.name for s in first}
    # A label from the file wins over the collector's job, as in Prometheus' file_sd.
    assert series(changed, "b") == {(("instance", two), ("job", "legacy"), ("team", "web")): 2.0}
    assert set(series(emptied, "up")) == {(("instance", one), ("job", "apps"))}
    skipped = [e for e in logs if e["event"] == "cannot use scrape target, skipping it"]
    assert [e["target"] for e in skipped] == ["ftp://nope/"]  # logged once, not every cycle


class ListSink:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], float]] = []

    def add(
        self, name: str, labels: Mapping[str, str], ts_ms: int, value: float, **_: object
    ) -> None:
        self.got.append((name, dict(labels), value))


async def test_through_the_scheduler_every_sample_is_valid_and_a_down_target_ends_its_series(
    server: PageServer,
) -> None:
    server.routes["/metrics"] = Route(PAGE.encode())
    c = collector([server.url("/metrics")])
    sink = ListSink()
    entry = CollectorEntry("apps", c, 10.0, {"env": "test"})
    run = CollectorRunner(
        entry, sink, AgentMetrics(), host_labels={"host": "h1"}, limits=DecodeLimits()
    )

    assert await run.cycle(1_700_000_000.0)
    assert len(sink.got) == PAGE_SAMPLES + 4  # nothing dropped as invalid
    assert all(lab["host"] == "h1" and lab["env"] == "test" for _n, lab, _v in sink.got)
    sink.got.clear()
    server.routes["/metrics"] = Route(b"garbage{\n")
    assert await run.cycle(1_700_000_010.0)  # a down target is not a failed cycle

    stale = {n for n, _lab, v in sink.got if is_stale(v)}
    assert "http_requests_total" in stale
    assert "request_seconds_bucket" in stale
    assert ("up", 0.0) in [(n, v) for n, _lab, v in sink.got]


# ---------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("targets", "options", "message"),
    [
        (["ftp://host/metrics"], {}, "scheme must be http or https"),
        (["http://a:1/m", "a:1"], {}, "have the same labels (instance a:1)"),
        (["a:1"], {"timeout": "30s"}, "longer than the interval"),
        (["a:1"], {"colour": "red"}, "options.colour"),
        (["a:1"], {"metrics_path": "metrics"}, "options.metrics_path"),
        (["a:1"], {"sample_limit": -1}, "options.sample_limit"),
        (["a:1"], {"metric_relabel_configs": [{"regex": "("}]}, "invalid regex"),
        (["a:1"], {"metric_relabel_configs": [{"action": "replace"}]}, "requires target_label"),
        (["a:1"], {"metric_relabel_configs": [{"action": "explode"}]}, "metric_relabel_configs"),
        (["a:1"], {"bearer_token": "t", "basic_auth": {"username": "u"}}, "not both"),
        (
            ["a:1"],
            {"tls_config": {"ca_file": "/nonexistent/ca.pem"}, "scheme": "https"},
            "tls_config",
        ),
        (["a:1"], {"bearer_token_file": "/nonexistent/token"}, "cannot read bearer_token_file"),
    ],
)
def test_bad_options_and_targets_are_named(
    targets: list[str], options: dict[str, object], message: str
) -> None:
    config = CollectorConfig(type="application", name="apps", targets=targets, options=options)
    with pytest.raises(ValueError, match="cannot configure collector 'apps'") as info:
        create(config)
    assert message in str(info.value)


def test_default_timeout_is_the_smaller_of_10s_and_the_interval_less_a_margin() -> None:
    assert collector(["a:1"], interval=60).timeout == 10
    assert collector(["a:1"], interval=2).timeout == pytest.approx(1.9)


def test_registry_builds_scrape_by_default_and_process_by_kind() -> None:
    registry = default_registry()
    scrape = build(registry, CollectorConfig(type="application", targets=["localhost:9100"]))
    process = build(
        registry,
        CollectorConfig(type="application", targets=["nginx"], options={"kind": "process"}),
    )
    assert isinstance(scrape, ScrapeCollector)
    assert isinstance(process, ProcessCollector)


async def test_no_targets_collects_nothing_and_close_is_harmless() -> None:
    c = collector([])
    assert await c.collect() == []
    await c.close()


def test_counter_declared_without_total_keeps_its_name_as_prometheus_does() -> None:
    from agent.collectors.scrape_page import PageSpec, process_page

    text = b"# TYPE foo counter\nfoo 1\n# TYPE bar_total counter\nbar_total 2\n"
    page = process_page(text, "text/plain; version=0.0.4", PageSpec(target_labels={}))
    assert sorted(s.name for s in page.samples) == ["bar_total", "foo"]
