"""The process collector: target syntax, real child processes, and psutil readings faked where needed.

Real-process tests start a Python child through a symlink with a unique
name (the kernel takes ``comm`` from the path executed), find it by name,
pattern, command line and executable, then end it by its PID and see its
group empty. Fake processes stand in for psutil where a reading must be
exact (CPU time of ended processes, access denied, PID reuse).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from agent.collectors.base import Sample
from agent.collectors.process import PREFIX, ProcessCollector, ProcessOptions, create
from agent.collectors.process_match import parse_target, parse_targets
from shared.config.models import CollectorConfig

# ---------------------------------------------------------------------- target syntax


@pytest.mark.parametrize(
    ("target", "group", "field", "text"),
    [
        ("nginx", "nginx", "name", "nginx"),
        ("name:a=b", "a=b", "name", "a=b"),
        ("exe=exe:sshd", "exe", "exe", "sshd"),
        ("re:^php-fpm", "re:^php-fpm", "re", "^php-fpm"),
        ("cmdline:--port=80", "cmdline:--port=80", "cmdline", "--port=80"),
        ("exe:/usr/sbin/sshd", "exe:/usr/sbin/sshd", "exe", "/usr/sbin/sshd"),
        ("web=cmdline:gunicorn", "web", "cmdline", "gunicorn"),
        ("db=postgres", "db", "name", "postgres"),
    ],
)
def test_target_syntax(target: str, group: str, field: str, text: str) -> None:
    m = parse_target(target)
    assert (m.group, m.field, m.text) == (group, field, text)


def test_matchers_compare_the_right_field() -> None:
    assert parse_target("nginx").matches("nginx", None, None)
    assert not parse_target("nginx").matches("nginx-debug", None, None)
    assert parse_target("re:^ngin").matches("nginx-debug", None, None)
    assert parse_target("cmdline:celery.*worker").matches(
        "python3", ["python3", "-m", "celery", "worker"], None
    )
    assert not parse_target("cmdline:celery").matches("celery", None, None)
    assert parse_target("exe:sshd").matches("x", None, "/usr/sbin/sshd")
    assert parse_target("exe:/usr/sbin/sshd").matches("x", None, "/usr/sbin/sshd")
    assert not parse_target("exe:/sbin/sshd").matches("x", None, "/usr/sbin/sshd")


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (["re:("], "invalid regular expression"),
        (["cmdline:"], "nothing to match"),
        ([" "], "empty"),
        (["nginx", "nginx"], "named twice"),
        (["x=nginx", "x=re:a"], "named twice"),
    ],
)
def test_bad_targets_are_named(targets: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_targets(targets)


def test_create_names_bad_options_and_requires_targets() -> None:
    with pytest.raises(
        ValueError, match=r"cannot configure collector 'p': options\.rematch_cycles"
    ):
        create(
            CollectorConfig(
                type="application", name="p", targets=["x"], options={"kind": "process", "rematch_cycles": 0}
            )
        )  # fmt: skip
    with pytest.raises(ValueError, match="needs targets"):
        create(CollectorConfig(type="application", name="p", options={"kind": "process"}))
    with pytest.raises(
        ValueError, match="cannot configure collector 'p': cannot use process target"
    ):
        create(
            CollectorConfig(
                type="application", name="p", targets=["re:["], options={"kind": "process"}
            )
        )


# ---------------------------------------------------------------------- real processes


def by_name(samples: Iterable[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == PREFIX + name}


def value(samples: Iterable[Sample], name: str, **labels: str) -> float:
    return by_name(samples, name)[tuple(sorted(labels.items()))]


@contextmanager
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """A sleeping Python child named ``vgl<hex>``, with a marker in its command line."""
    name = "vgl" + secrets.token_hex(5)  # 13 characters: within the kernel's 15 for comm
    link = tmp_path / name
    link.symlink_to(os.path.realpath(sys.executable))
    marker = "vigil-test-" + secrets.token_hex(4)
    child = subprocess.Popen(
        [str(link), "-S", "-c", "import time\nfor _ in range(600): time.sleep(0.1)", marker]
    )
    try:
        yield child, name, marker
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)


def collect(targets: list[str], **options: object) -> tuple[ProcessCollector, list[Sample]]:
    config = CollectorConfig(
        type="application", name="p", targets=targets, options={"kind": "process", **options}
    )
    c = create(config)
    return c, c.collect_now()


def test_child_found_by_name_pattern_cmdline_and_exe_and_gone_when_it_ends(
    tmp_path: Path,
) -> None:
    with sleeper(tmp_path) as (child, name, marker):
        targets = [name, f"pat=re:^{name[:6]}", f"cmd=cmdline:{marker}"]
        # One collector per matcher: a process is counted in the first group that matches.
        live = {t: collect([t])[1] for t in targets}
        groups = {t: parse_target(t).group for t in targets}
        proc = psutil.Process(child.pid)
        for target, samples in live.items():
            g = groups[target]
            assert value(samples, "num_procs", groupname=g) == 1, target
            assert value(samples, "num_threads", groupname=g) >= 1
            assert value(samples, "memory_bytes", groupname=g, memtype="resident") > 0
            assert value(samples, "memory_bytes", groupname=g, memtype="virtual") > 0
            assert value(samples, "open_filedesc", groupname=g) >= 3
            assert value(samples, "cpu_seconds_total", groupname=g, mode="user") >= 0
            assert value(samples, "cpu_seconds_total", groupname=g, mode="system") >= 0
            assert value(samples, "oldest_start_time_seconds", groupname=g) == proc.create_time()

        # /proc/<pid>/exe is the resolved interpreter, which this test process runs too.
        exe = collect([f"exe:{os.path.realpath(sys.executable)}"])[1]
        assert value(exe, "num_procs", groupname=f"exe:{os.path.realpath(sys.executable)}") >= 2

        c, _ = collect([name, "vgl-never-" + secrets.token_hex(4)])
        child.kill()
        child.wait(timeout=30)
        after = c.collect_now()

    assert value(after, "num_procs", groupname=name) == 0
    assert {s.name for s in after} == {PREFIX + "num_procs"}  # the rest ends, to be marked stale


def test_group_missing_from_the_start_reports_zero_processes_only() -> None:
    _, samples = collect(["vgl-never-" + secrets.token_hex(4)])
    assert [(s.name, s.value, s.type) for s in samples] == [(PREFIX + "num_procs", 0, "gauge")]


def test_first_matching_target_takes_the_process(tmp_path: Path) -> None:
    with sleeper(tmp_path) as (_child, name, marker):
        _, samples = collect([f"first=cmdline:{marker}", name])
    assert value(samples, "num_procs", groupname="first") == 1
    assert value(samples, "num_procs", groupname=name) == 0


async def test_collect_runs_in_a_thread_and_close_is_harmless(tmp_path: Path) -> None:
    with sleeper(tmp_path) as (_child, name, _marker):
        c, _ = collect([name])
        samples = await c.collect()
        await c.close()
    assert value(samples, "num_procs", groupname=name) == 1


# ---------------------------------------------------------------------- fake psutil readings


@dataclass(eq=False)
class FakeProc:
    """Stands in for psutil.Process: fixed readings, counted name() calls."""

    pid: int
    name_: str
    user: float = 1.0
    system: float = 0.5
    rss: int = 100
    fds: int | None = 4
    started: float = 1000.0
    running: bool = True
    gone: bool = False
    calls: dict[str, int] = field(default_factory=dict)

    def name(self) -> str:
        self.calls["name"] = self.calls.get("name", 0) + 1
        return self.name_

    def cmdline(self) -> list[str]:
        return [self.name_]

    def exe(self) -> str:
        return "/bin/" + self.name_

    @contextmanager
    def oneshot(self) -> Iterator[None]:
        yield

    def is_running(self) -> bool:
        return self.running

    def cpu_times(self) -> SimpleNamespace:
        if self.gone:
            raise psutil.NoSuchProcess(self.pid)
        return SimpleNamespace(user=self.user, system=self.system)

    def memory_info(self) -> SimpleNamespace:
        return SimpleNamespace(rss=self.rss, vms=2 * self.rss)

    def num_threads(self) -> int:
        return 2

    def num_fds(self) -> int:
        if self.fds is None:
            raise psutil.AccessDenied(self.pid)
        return self.fds

    def create_time(self) -> float:
        return self.started


def fake(procs: list[FakeProc], targets: list[str], rematch_cycles: int = 10) -> ProcessCollector:
    return ProcessCollector(
        ProcessOptions(rematch_cycles=rematch_cycles),
        parse_targets(targets),
        process_iter=lambda: list(procs),  # type: ignore[arg-type]
    )


def test_group_sums_its_processes_and_ended_ones_keep_their_cpu_time() -> None:
    a = FakeProc(1, "web", user=10, system=1, started=50)
    b = FakeProc(2, "web", user=5, system=2, rss=300, fds=None, started=40)
    other = FakeProc(3, "db", user=99)
    procs = [a, b, other]
    c = fake(procs, ["web"])

    first = c.collect_now()
    assert value(first, "num_procs", groupname="web") == 2
    assert value(first, "cpu_seconds_total", groupname="web", mode="user") == 15
    assert value(first, "memory_bytes", groupname="web", memtype="resident") == 400
    assert value(first, "memory_bytes", groupname="web", memtype="virtual") == 800
    assert value(first, "open_filedesc", groupname="web") == 4  # b's fds may not be read
    assert value(first, "num_threads", groupname="web") == 4
    assert value(first, "oldest_start_time_seconds", groupname="web") == 40

    procs.remove(b)  # b ends; a replacement starts from zero
    procs.append(FakeProc(4, "web", user=0.5, system=0))
    a.user = 12
    second = c.collect_now()
    assert value(second, "num_procs", groupname="web") == 2
    assert value(second, "cpu_seconds_total", groupname="web", mode="user") == 5 + 12 + 0.5
    assert value(second, "cpu_seconds_total", groupname="web", mode="system") == 2 + 1 + 0

    procs[:] = [other]  # the group empties: its series end, the counter starts afresh later
    assert {s.name for s in c.collect_now()} == {PREFIX + "num_procs"}
    procs.append(FakeProc(5, "web", user=1, system=0))
    again = c.collect_now()
    assert value(again, "cpu_seconds_total", groupname="web", mode="user") == 1


def test_processes_are_matched_once_until_the_rematch_cycle() -> None:
    a = FakeProc(1, "web")
    c = fake([a], ["web"], rematch_cycles=3)
    for _ in range(2):
        c.collect_now()
    assert a.calls["name"] == 1
    c.collect_now()  # the third cycle matches again
    assert a.calls["name"] == 2


def test_a_process_that_ends_during_the_read_or_whose_pid_was_reused_is_skipped() -> None:
    ending = FakeProc(1, "web", gone=True)
    reused = FakeProc(2, "web", running=False)
    c = fake([ending, reused, FakeProc(3, "web")], ["web"])
    samples = c.collect_now()
    assert value(samples, "num_procs", groupname="web") == 1


def test_unreadable_process_name_is_not_matched() -> None:
    class Denied(FakeProc):
        def name(self) -> str:
            raise psutil.AccessDenied(self.pid)

    c = fake([Denied(1, "web"), FakeProc(2, "web")], ["web"])
    assert value(c.collect_now(), "num_procs", groupname="web") == 1


async def test_a_stopped_process_series_get_staleness_markers_through_the_scheduler(
    tmp_path: Path,
) -> None:
    from agent.scheduler import CollectorEntry, CollectorRunner
    from agent.selfmetrics import AgentMetrics
    from shared.wire import DecodeLimits, is_stale

    got: list[tuple[str, dict[str, str], float]] = []

    class Sink:
        def add(
            self, name: str, labels: dict[str, str], ts_ms: int, value: float, **_: object
        ) -> None:
            got.append((name, dict(labels), value))

    with sleeper(tmp_path) as (child, name, _marker):
        collector = create(
            CollectorConfig(
                type="application", name="p", targets=[name], options={"kind": "process"}
            )
        )
        entry = CollectorEntry("p", collector, 10.0, {})
        runner = CollectorRunner(
            entry, Sink(), AgentMetrics(), host_labels={}, limits=DecodeLimits()
        )
        assert await runner.cycle(1_700_000_000.0)
        live = {n for n, _l, v in got if not is_stale(v)}
        child.kill()
        child.wait(timeout=30)
        got.clear()
        assert await runner.cycle(1_700_000_010.0)
    stale = {n for n, _l, v in got if is_stale(v)}
    assert stale == live - {PREFIX + "num_procs"}
    assert PREFIX + "memory_bytes" in stale
