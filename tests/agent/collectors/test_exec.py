"""The exec collector with real subprocesses: good, hanging, failing and garbage-printing commands."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.collectors.base import Collector, Sample
from agent.collectors.exec import ExecCollector, create
from agent.scheduler import CollectorEntry, CollectorRunner
from agent.selfmetrics import AgentMetrics
from shared.config.models import CollectorConfig
from shared.wire import DecodeLimits

PROM = """
# HELP jobs_total Jobs done.
# TYPE jobs_total counter
jobs_total{queue="a"} 3
# TYPE depth gauge
depth 7 1700000000000
"""

INFLUX = r"""disk,host=h1,mount\ point=/srv used=12i,free=2.5,ok=t,label="x" 1700000000000000000
"""


def command(script: str) -> str:
    """A target running ``script`` with this Python, as a shell-free command line."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"


def printing(text: str) -> str:
    return command(f"import sys; sys.stdout.write({text!r})")


def exec_collector(*targets: str, interval: float = 10, **options: object) -> ExecCollector:
    return create(
        CollectorConfig.model_validate(
            {
                "type": "custom",
                "name": "scripts",
                "interval": interval,
                "targets": list(targets),
                "options": {"kind": "exec", **options},
            }
        )
    )


def values(samples: Iterable[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


def up(samples: Iterable[Sample]) -> dict[str, float]:
    return {s.labels["command"]: s.value for s in samples if s.name == "vigil_exec_up"}


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


async def until_dead(*pids: int) -> None:
    for _ in range(400):
        if not any(alive(p) for p in pids):
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"processes still alive: {[p for p in pids if alive(p)]}")


def read_if_written(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


async def until_file(path: Path) -> str:
    for _ in range(400):
        if text := read_if_written(path):
            return text
        await asyncio.sleep(0.025)
    raise AssertionError(f"{path} was never written")


def hanging(pid_file: Path) -> str:
    """A command that starts a child, writes both pids, and never ends."""
    return command(
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(120)\n"
    )


async def test_prometheus_output_becomes_samples_with_types_help_and_timestamps() -> None:
    c = exec_collector(printing(PROM))
    samples = await c.collect()
    assert values(samples, "jobs_total") == {(("queue", "a"),): 3.0}
    jobs = next(s for s in samples if s.name == "jobs_total")
    assert (jobs.type, jobs.help) == ("counter", "Jobs done.")
    depth = next(s for s in samples if s.name == "depth")
    assert (depth.type, depth.ts_ms) == ("gauge", 1700000000000)
    cmd = printing(PROM)
    assert up(samples) == {cmd: 1.0}
    assert values(samples, "vigil_exec_samples") == {(("command", cmd),): 2.0}
    duration = values(samples, "vigil_exec_duration_seconds")[(("command", cmd),)]
    assert duration > 0


async def test_influx_output_names_measurement_field_sanitises_tags_and_skips_strings() -> None:
    cmd = printing(INFLUX)
    c = exec_collector(cmd, format="auto")
    samples = await c.collect()
    labels = (("host", "h1"), ("mount_point", "/srv"))
    assert values(samples, "disk_used") == {labels: 12.0}
    assert values(samples, "disk_free") == {labels: 2.5}
    assert values(samples, "disk_ok") == {labels: 1.0}
    assert "disk_label" not in {s.name for s in samples}
    assert {s.ts_ms for s in samples if s.name.startswith("disk_")} == {1700000000000}
    assert values(samples, "vigil_exec_skipped_fields_total") == {(("command", cmd),): 1.0}
    samples = await c.collect()
    assert values(samples, "vigil_exec_skipped_fields_total") == {(("command", cmd),): 2.0}


async def test_a_repeated_series_keeps_its_first_sample() -> None:
    samples = await exec_collector(printing('a{x="1"} 1\na{x="1"} 2\na{x="2"} 3\n')).collect()
    assert values(samples, "a") == {(("x", "1"),): 1.0, (("x", "2"),): 3.0}
    assert len([s for s in samples if s.name == "a"]) == 2


async def test_a_forced_format_that_does_not_match_the_output_fails_the_command() -> None:
    cmd = printing(INFLUX)
    samples = await exec_collector(cmd, format="prometheus").collect()
    assert up(samples) == {cmd: 0.0}


async def test_a_hanging_command_is_killed_with_its_group_and_others_still_report(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pids"
    hang, good = hanging(pid_file), printing("ok 1\n")
    c = exec_collector(hang, good, timeout=3)  # room for the good one on a loaded machine
    with capture_logs() as logs:
        samples = await c.collect()
    assert up(samples) == {hang: 0.0, good: 1.0}
    assert values(samples, "ok") == {(): 1.0}
    pids = [int(p) for p in (await until_file(pid_file)).split()]
    await until_dead(*pids)
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert warning["command"] == hang
    assert "timed out after 3 s" in warning["reason"]


async def test_a_failing_command_is_down_logged_once_and_its_recovery_logged(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "ok"
    cmd = command(
        "import os, sys\n"
        f"if not os.path.exists({str(flag)!r}):\n"
        "    print('partial 1'); print('boom', file=sys.stderr); sys.exit(3)\n"
        "print('fine 1')\n"
    )
    c = exec_collector(cmd)
    with capture_logs() as logs:
        first = await c.collect()
        second = await c.collect()
        flag.touch()
        third = await c.collect()
    assert up(first) == up(second) == {cmd: 0.0}
    assert "partial" not in {s.name for s in first}  # output of a failed run is not used
    assert up(third) == {cmd: 1.0}
    assert values(third, "fine") == {(): 1.0}
    assert [(e["log_level"], e["event"]) for e in logs] == [
        ("warning", "command failed"),
        ("info", "command succeeded again"),
    ]
    assert logs[0]["reason"] == "exit status 3; stderr: boom"


async def test_garbage_output_is_a_parse_failure_naming_the_format_and_line() -> None:
    cmd = printing("ok 1\nthis is { not metrics\n")
    with capture_logs() as logs:
        samples = await exec_collector(cmd).collect()
    assert up(samples) == {cmd: 0.0}
    assert "ok" not in {s.name for s in samples}
    assert logs[0]["reason"].startswith("cannot parse output as prometheus")
    assert "line 2" in logs[0]["reason"]


async def test_output_beyond_the_cap_fails_the_command_and_kills_it() -> None:
    cmd = command(
        "import sys, time\nsys.stdout.write('x' * 5000); sys.stdout.flush()\ntime.sleep(120)"
    )
    with capture_logs() as logs:
        samples = await exec_collector(cmd, max_output_bytes=1000).collect()
    assert up(samples) == {cmd: 0.0}
    assert "exceeds max_output_bytes (1000)" in logs[0]["reason"]


async def test_a_missing_program_is_down_with_the_reason() -> None:
    cmd = "/nonexistent/vigil-test-program --flag"
    with capture_logs() as logs:
        samples = await exec_collector(cmd).collect()
    assert up(samples) == {cmd: 0.0}
    assert logs[0]["reason"].startswith("cannot start")


async def test_a_cancelled_cycle_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    c = exec_collector(hanging(pid_file), timeout=60, interval=100)
    task = asyncio.create_task(c.collect())
    pids = [int(p) for p in (await until_file(pid_file)).split()]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until_dead(*pids)
    await c.close()


async def test_close_kills_commands_still_running_and_their_run_reports_down(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pids"
    cmd = hanging(pid_file)
    c = exec_collector(cmd, timeout=60, interval=100)
    task = asyncio.create_task(c.collect())
    pids = [int(p) for p in (await until_file(pid_file)).split()]
    with capture_logs() as logs:
        await c.close()
        samples = await task
    await until_dead(*pids)
    assert up(samples) == {cmd: 0.0}
    assert logs[0]["reason"] == "killed by signal 9"


async def test_commands_from_target_files_carry_their_labels_and_follow_file_changes(
    tmp_path: Path,
) -> None:
    sd = tmp_path / "exec.yaml"
    one, two = printing('m{team="mine"} 1\n'), printing("n 2\n")
    sd.write_text(json.dumps([{"targets": [one], "labels": {"team": "ops"}}]), encoding="utf-8")
    c = exec_collector(target_files=[str(tmp_path / "*.yaml")])
    samples = await c.collect()
    assert values(samples, "m") == {(("exported_team", "mine"), ("team", "ops")): 1.0}
    assert values(samples, "vigil_exec_up") == {(("command", one), ("team", "ops")): 1.0}
    sd.write_text(json.dumps([{"targets": [two]}]), encoding="utf-8")
    st = sd.stat()
    os.utime(sd, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    samples = await c.collect()
    assert up(samples) == {two: 1.0}
    assert values(samples, "n") == {(): 2.0}


def test_timeout_defaults_to_the_interval_cut_below_it() -> None:
    assert exec_collector("true", interval=30).timeout == 10
    assert exec_collector("true", interval=5).timeout == 4.5
    assert exec_collector("true", interval=5, timeout="2s").timeout == 2


@pytest.mark.parametrize(
    ("targets", "options", "message"),
    [
        (["echo 'unclosed"], {}, "cannot split command line"),
        (["  "], {}, "empty command line"),
        (["true"], {"format": "xml"}, "options.format"),
        (["true"], {"timeout": 0}, "options.timeout"),
        (["true"], {"colour": 1}, "options.colour"),
        ([], {}, "needs targets"),
    ],
)
def test_bad_config_names_the_problem(
    targets: list[str], options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        exec_collector(*targets, **options)


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


async def test_exec_samples_pass_the_schedulers_checks() -> None:
    cmd = printing(PROM.replace(" 1700000000000", ""))  # an old timestamp is dropped, rightly
    influx = printing(INFLUX.replace("1700000000000000000", ""))
    sink, dropped = await through_scheduler(exec_collector(cmd, influx, printing("garbage")))
    assert dropped == 0
    names = {n for n, _l, _v in sink.got}
    assert {"jobs_total", "disk_used", "vigil_exec_up", "vigil_exec_duration_seconds"} <= names
