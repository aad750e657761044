"""The network collector: module choice per target, labels, concurrency, timeouts, logging."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.collectors.base import Sample
from agent.collectors.network import (
    DEFAULT_MODULES,
    NetworkCollector,
    NetworkOptions,
    budget,
    create,
    plan,
)
from agent.collectors.probe_base import HELP
from agent.collectors.registry import build, default_registry
from agent.errors import CollectorBuildError
from agent.scheduler import CollectorEntry, CollectorRunner
from agent.selfmetrics import AgentMetrics
from shared.config.models import CollectorConfig
from shared.wire import LABEL_NAME_RE, METRIC_NAME_RE, DecodeLimits, is_stale
from tests.agent.collectors.test_probe_servers import HttpServers, http_servers, silent_listener


@pytest.fixture(scope="module")
def servers() -> Iterator[HttpServers]:
    with http_servers() as srv:
        yield srv


def config(targets: list[str], interval: float | None = None, **options: Any) -> CollectorConfig:
    data: dict[str, Any] = {"type": "network", "targets": targets, "options": options}
    if interval is not None:
        data["interval"] = interval
    return CollectorConfig.model_validate(data)


def by_instance(samples: list[Sample], name: str) -> dict[tuple[str, str], float]:
    return {(s.labels["instance"], s.labels["module"]): s.value for s in samples if s.name == name}


# ---------------------------------------------------------------------- plan


def test_targets_name_their_module_by_prefix_else_the_default() -> None:
    probes = plan(
        [
            "https://example.org",
            "http_2xx:https://example.org/health",
            "tcp_connect:db.example.org:5432",
            "localhost:8080",
            "icmp:10.0.0.1",
        ],
        NetworkOptions(),
        interval=30,
        job="net",
    )
    assert [(p.target, p.module_name) for p in probes] == [
        ("https://example.org", "http_2xx"),
        ("https://example.org/health", "http_2xx"),
        ("db.example.org:5432", "tcp_connect"),
        ("localhost:8080", "http_2xx"),
        ("10.0.0.1", "icmp"),
    ]
    assert probes[2].labels == {
        "instance": "db.example.org:5432",
        "module": "tcp_connect",
        "job": "net",
    }


def test_probes_list_default_module_and_custom_modules() -> None:
    options = NetworkOptions.model_validate(
        {
            "module": "tcp_connect",
            "modules": {
                "http_post": {"prober": "http", "timeout": "5s", "http": {"method": "POST"}},
                "icmp": {"prober": "icmp", "icmp": {"preferred_ip_protocol": "ip4"}},
            },
            "probes": [{"target": "https://a.example/x", "module": "http_post"}],
        }
    )
    probes = plan(["db:5432", "http_post:https://b.example"], options, interval=30, job="j")
    assert [(p.target, p.module_name) for p in probes] == [
        ("db:5432", "tcp_connect"),
        ("https://b.example", "http_post"),
        ("https://a.example/x", "http_post"),
    ]
    assert probes[1].module.http.method == "POST"
    assert probes[1].timeout == 5
    assert options.all_modules()["icmp"].icmp.preferred_ip_protocol == "ip4"
    assert options.all_modules()["dns"] == DEFAULT_MODULES["dns"]


def test_timeouts_stay_under_the_interval() -> None:
    assert budget(30) == 29
    assert budget(1) == pytest.approx(0.9)
    options = NetworkOptions.model_validate(
        {"modules": {"slow": {"prober": "tcp", "timeout": "1m"}}}
    )
    (probe,) = plan(["slow:h:1"], options, interval=10, job="j")
    assert probe.timeout == 9
    (probe,) = plan(["h:1"], NetworkOptions(module="tcp_connect"), interval=10, job="j")
    assert probe.timeout == 9


@pytest.mark.parametrize(
    ("targets", "options", "message"),
    [
        (["x"], {"module": "nope"}, "options.module 'nope' is not a module"),
        ([], {"probes": [{"target": "x", "module": "nope"}]}, "module 'nope' of 'x'"),
        (["tcp_connect:h:1", "tcp_connect:h:1"], {}, "probed twice"),
        (["  "], {}, "a target is empty"),
        ([], {"modules": {"https": {"prober": "http"}}}, "must be letters"),
        ([], {"modules": {"m": {"prober": "ftp"}}}, "prober"),
        ([], {"modules": {"m": {"prober": "http", "http": {"nope": 1}}}}, "nope"),
        ([], {"modules": {"m": {"prober": "http", "timeout": 0}}}, "timeout must be positive"),
        ([], {"color": "red"}, "color"),
    ],
)
def test_bad_config_is_rejected_naming_what(
    targets: list[str], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(CollectorBuildError, match=message) as info:
        build(default_registry(), config(targets, **options))
    assert "cannot configure collector 'network'" in str(info.value)


def test_registry_builds_the_network_collector() -> None:
    got = build(default_registry(), config(["tcp_connect:h:1"], job="blackbox"))
    assert isinstance(got, NetworkCollector)
    assert got.probes[0].labels["job"] == "blackbox"
    default_job = create(config(["tcp_connect:h:1"]))
    assert default_job.probes[0].labels["job"] == "network"


# ---------------------------------------------------------------------- cycles


async def test_a_cycle_reports_every_target_with_names_help_and_labels(
    servers: HttpServers,
) -> None:
    collector = create(
        config(
            [servers.http + "/ok", "tcp_connect:" + servers.http_hostport, servers.http + "/nope"]
        )
    )
    samples = await collector.collect()
    success = by_instance(samples, "probe_success")
    assert success == {
        (servers.http + "/ok", "http_2xx"): 1.0,
        (servers.http_hostport, "tcp_connect"): 1.0,
        (servers.http + "/nope", "http_2xx"): 0.0,
    }
    assert all(v >= 0 for v in by_instance(samples, "probe_duration_seconds").values())
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for s in samples:
        assert METRIC_NAME_RE.fullmatch(s.name)
        assert all(LABEL_NAME_RE.fullmatch(k) for k in s.labels)
        assert s.type == "gauge"
        assert s.help == HELP[s.name]
        assert {"instance", "module", "job"} <= set(s.labels)
        key = (s.name, tuple(sorted(s.labels.items())))
        assert key not in seen, f"{key} reported twice"
        seen.add(key)
    assert collector.failing() == {
        (servers.http + "/nope", "http_2xx"): "status code 404 is not 2xx"
    }


async def test_a_hanging_target_times_out_alone(servers: HttpServers) -> None:
    with silent_listener() as hanging:
        collector = create(
            config(
                [f"quick:{hanging}", servers.http + "/ok", "quick:" + servers.http + "/ok"],
                modules={"quick": {"prober": "http", "timeout": "300ms"}},
            )
        )
        with capture_logs() as logs:
            samples = await collector.collect()
    success = by_instance(samples, "probe_success")
    assert success[(hanging, "quick")] == 0.0
    assert success[(servers.http + "/ok", "http_2xx")] == 1.0
    assert success[(servers.http + "/ok", "quick")] == 1.0
    (event,) = [e for e in logs if e["event"] == "probe failed"]
    assert event["target"] == hanging
    assert event["reason"] == "no result within the probe timeout of 0.3 s"
    # What the hanging probe measured before its timeout is still reported.
    status = by_instance(samples, "probe_http_status_code")
    assert status[(hanging, "quick")] == 0.0


async def test_hanging_tls_handshakes_and_dns_servers_time_out_too() -> None:
    with silent_listener() as hanging:
        collector = create(
            config(
                [f"https://{hanging}/", f"tls:{hanging}", f"dns:{hanging}"],
                modules={
                    "http_2xx": {"prober": "http", "timeout": "300ms"},
                    "tls": {"prober": "tcp", "timeout": "300ms", "tcp": {"tls": True}},
                    # UDP to a port with no UDP socket may be refused at once; TCP hangs.
                    "dns": {
                        "prober": "dns",
                        "timeout": "300ms",
                        "dns": {"query_name": "x.test", "transport_protocol": "tcp"},
                    },
                },
            )
        )
        samples = await collector.collect()
    assert set(by_instance(samples, "probe_success").values()) == {0.0}
    assert set(collector.failing().values()) == {"no result within the probe timeout of 0.3 s"}


async def test_a_failure_is_logged_once_and_its_recovery_once() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    collector = create(config([f"tcp_connect:127.0.0.1:{port}"]))
    with capture_logs() as logs:
        assert by_instance(await collector.collect(), "probe_success") == {
            (f"127.0.0.1:{port}", "tcp_connect"): 1.0
        }
        server.close()
        await server.wait_closed()
        for _ in range(3):
            samples = await collector.collect()
            assert by_instance(samples, "probe_success")[(f"127.0.0.1:{port}", "tcp_connect")] == 0
        server = await asyncio.start_server(
            handle, "127.0.0.1", port, family=socket.AF_INET, reuse_address=True
        )
        try:
            samples = await collector.collect()
        finally:
            server.close()
            await server.wait_closed()
    assert by_instance(samples, "probe_success")[(f"127.0.0.1:{port}", "tcp_connect")] == 1
    events = [e["event"] for e in logs]
    assert events == ["probe failed", "probe succeeds again"]


async def test_no_targets_means_no_samples() -> None:
    collector = create(config([]))
    assert await collector.collect() == []
    await collector.close()


async def test_the_scheduler_accepts_every_sample_and_ends_vanished_series(
    servers: HttpServers,
) -> None:
    got: list[tuple[str, dict[str, str], float]] = []

    class Sink:
        def add(
            self, name: str, labels: Mapping[str, str], ts_ms: int, value: float, **_: object
        ) -> None:
            got.append((name, dict(labels), value))

    collector = create(config([servers.http + "/ok"], interval=10))
    metrics = AgentMetrics()
    run = CollectorRunner(
        CollectorEntry("network", collector, 10.0, {"env": "test"}),
        Sink(),
        metrics,
        host_labels={"host": "h1"},
        limits=DecodeLimits(),
    )
    assert await run.cycle(1_700_000_000.0)
    names = {name for name, _, _ in got}
    assert {"probe_success", "probe_http_last_modified_timestamp_seconds"} <= names
    assert all(labels["host"] == "h1" and labels["env"] == "test" for _, labels, _ in got)
    # The target goes: every one of its series ends with a staleness marker.
    collector.probes = []
    got.clear()
    assert await run.cycle(1_700_000_010.0)
    assert {name for name, _, _ in got} == names
    assert all(is_stale(v) for _, _, v in got)


async def test_targets_from_files_are_probed_with_their_labels_and_follow_file_changes(
    tmp_path: Path,
) -> None:
    import asyncio
    import os

    import yaml

    from agent.collectors.network import create as create_network
    from shared.config.models import CollectorConfig as Config

    async def accept(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sd = tmp_path / "targets.yaml"
    sd.write_text(
        yaml.safe_dump([{"targets": [f"tcp_connect:127.0.0.1:{port}"], "labels": {"team": "db"}}])
    )
    collector = create_network(
        Config(type="network", name="net", options={"target_files": [str(tmp_path / "*.yaml")]})
    )
    try:
        samples = await collector.collect()
        success = [s for s in samples if s.name == "probe_success"]
        assert [(s.labels["instance"], s.labels["module"], s.labels["team"], s.value)
                for s in success] == [(f"127.0.0.1:{port}", "tcp_connect", "db", 1.0)]  # fmt: skip
        sd.write_text(yaml.safe_dump([{"targets": []}]))
        os.utime(sd, (1, 1))  # a different mtime, whatever the clock's resolution
        assert [s for s in await collector.collect() if s.name == "probe_success"] == []
    finally:
        server.close()
        await server.wait_closed()
