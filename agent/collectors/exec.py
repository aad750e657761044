"""``custom`` collector of kind ``exec``: runs commands and reads metrics from their stdout.

Each target is a command line, split like a shell would (``shlex``) but run
without one: no pipes, globs or variables (wrap them in a script). All
commands of a cycle run at once, each in a new session (so in a process
group of its own), stdin from /dev/null, with the agent's environment.
Its stdout is Prometheus text format or Influx line protocol
(``options.format``; ``auto`` decides per run, see
``agent.collectors.exec_formats.sniff`` for the rule and the naming of line
protocol fields). Sample config::

    collectors:
      - type: custom
        name: scripts
        interval: 30
        targets:
          - /usr/local/bin/queue_depth --format prom
          - "python3 /opt/checks/backup_age.py"
        options:
          kind: exec
          format: auto              # prometheus | influx | auto
          timeout: 10s              # default: min(10 s, interval)
          max_output_bytes: 1048576
          influx_precision: ns      # ns | us | ms | s
          target_files: [/etc/vigil/exec.d/*.yaml]   # Prometheus file_sd format

Per command (label ``command``: the target as written), every cycle:

===================================  =======  =====================================
metric                               type     meaning
===================================  =======  =====================================
``vigil_exec_up``                    gauge    1: exited 0 within the timeout and its
                                              output parsed; 0 otherwise
``vigil_exec_duration_seconds``      gauge    wall time of the run
``vigil_exec_samples``               gauge    samples taken from its output
``vigil_exec_skipped_fields_total``  counter  line protocol string fields skipped
===================================  =======  =====================================

A command that exits non-zero, times out, writes more than
``max_output_bytes`` or prints output that does not parse contributes only
its ``up 0`` (its other series then get staleness markers, as Prometheus
does for a failed scrape); that is logged once when it starts failing and
once when it recovers. On timeout, overflow, a cancelled cycle or
``close`` the whole process group is sent SIGKILL (by the group id the agent created; a descendant that started
its own session is beyond reach). A timeout not below the interval is cut to
90 % of it, so a hung command is reported as down by its own cycle instead of
the scheduler cancelling the cycle of every command. Labels of file-given
targets are added to its samples and to the four above (a sample's own
label of the same name is kept as ``exported_<name>``). A series repeated in
one output keeps its first sample, as in a Prometheus scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent import lineprotocol
from agent.collectors.base import Sample
from agent.collectors.exec_formats import (
    first_of_each_series,
    influx_samples,
    parse_prometheus,
    sniff,
)
from agent.lineprotocol import Precision
from agent.targets import Target, TargetSource
from shared.config.models import CollectorConfig
from shared.duration import Duration
from shared.log import get_logger

log = get_logger(__name__)

MAX_STDERR_BYTES: Final = 2048
"""Bytes of a failing command's stderr quoted in the log line."""
_READ_CHUNK: Final = 65536


class ExecOptions(BaseModel):
    """``options`` of a ``custom`` collector of kind ``exec``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["exec"] = "exec"
    format: Literal["prometheus", "influx", "auto"] = Field(
        default="auto", description="Format of the commands' stdout; auto sniffs each run."
    )
    timeout: Duration | None = Field(
        default=None,
        description="Seconds (or a duration) a command may run; default min(10 s, interval). "
        "Cut to 90 % of the interval.",
    )
    max_output_bytes: int = Field(
        default=1024 * 1024, ge=1, description="More stdout than this fails the run."
    )
    influx_precision: Precision = Field(
        default="ns", description="Unit of line protocol timestamps."
    )
    target_files: list[str] = Field(
        default_factory=list,
        description="Glob patterns of Prometheus file_sd files (YAML or JSON) adding commands.",
    )

    @field_validator("timeout")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("timeout must be positive")
        return v


class CommandFailed(Exception):
    """One run failed; the message is the reason logged (internal to this module)."""


@dataclass(slots=True)
class _Run:
    samples: list[Sample]
    skipped: int


class ExecCollector:
    """Runs the commands of ``source`` every cycle; see the module docstring."""

    def __init__(
        self, options: ExecOptions, source: TargetSource, *, interval: float, name: str = "exec"
    ) -> None:
        self.options = options
        self.source = source
        self.name = name
        wanted = options.timeout if options.timeout is not None else min(10.0, interval)
        self.timeout = min(wanted, 0.9 * interval)
        self._failing: dict[str, str] = {}  # command -> reason, while it fails
        self._skipped: dict[str, int] = {}  # command -> string fields skipped so far
        self._procs: set[asyncio.subprocess.Process] = set()
        self._argv: dict[str, list[str]] = {}

    async def collect(self) -> list[Sample]:
        targets = await asyncio.to_thread(self.source.refresh)
        runs = await asyncio.gather(*(self._one(t) for t in targets))
        out: list[Sample] = []
        for run in runs:
            out += run
        live = {t.target for t in targets}
        for state in (self._skipped, self._failing, self._argv):
            for gone in state.keys() - live:
                del state[gone]
        return out

    async def close(self) -> None:
        """Kill the process groups of commands still running and reap them."""
        procs = list(self._procs)
        for proc in procs:
            _kill_group(proc)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()

    async def _one(self, target: Target) -> list[Sample]:
        command = target.target
        labels = {"command": command}
        started = time.perf_counter()
        try:
            run = await self._run(command)
        except CommandFailed as exc:
            self._failed(command, str(exc))
            run, up = _Run([], 0), 0.0
        else:
            self._recovered(command)
            up = 1.0
        skipped = self._skipped.get(command, 0) + run.skipped
        self._skipped[command] = skipped
        samples = run.samples
        if target.labels:
            samples = [_with_target_labels(s, target.labels) for s in samples]
        extra = {**target.labels, **labels} if target.labels else labels
        return [
            *samples,
            Sample(
                "vigil_exec_up", extra, up, "gauge", "1 if the command ran and its output parsed."
            ),
            Sample(
                "vigil_exec_duration_seconds",
                extra,
                time.perf_counter() - started,
                "gauge",
                "Wall time of the command's run.",
                "seconds",
            ),
            Sample(
                "vigil_exec_samples",
                extra,
                float(len(run.samples)),
                "gauge",
                "Samples taken from the command's output.",
            ),
            Sample(
                "vigil_exec_skipped_fields_total",
                extra,
                float(skipped),
                "counter",
                "Line protocol string fields skipped.",
            ),
        ]

    async def _run(self, command: str) -> _Run:
        argv = self._argv.get(command)
        if argv is None:
            try:
                argv = shlex.split(command)
            except ValueError as exc:
                raise CommandFailed(f"cannot split command line: {exc}") from None
            if not argv:
                raise CommandFailed("empty command line")
            self._argv[command] = argv
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise CommandFailed(f"cannot start: {exc.strerror or exc}") from None
        self._procs.add(proc)
        try:
            stdout, stderr, code = await self._communicate(proc)
        finally:
            self._procs.discard(proc)
        if code != 0:
            why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            tail = stderr.decode("utf-8", "replace").strip()[-MAX_STDERR_BYTES:]
            raise CommandFailed(why + (f"; stderr: {tail}" if tail else ""))
        return self._parse(stdout.decode("utf-8", "replace"))

    async def _communicate(self, proc: asyncio.subprocess.Process) -> tuple[bytes, bytes, int]:
        if proc.stdout is None or proc.stderr is None:
            raise RuntimeError("BUG: subprocess started without pipes")
        try:
            async with asyncio.timeout(self.timeout):
                stdout, stderr = await asyncio.gather(
                    _read_capped(proc.stdout, self.options.max_output_bytes),
                    _read_capped(proc.stderr, MAX_STDERR_BYTES, keep_tail=True),
                )
                code = await proc.wait()
        except TimeoutError:
            _kill_group(proc)
            await proc.wait()
            raise CommandFailed(
                f"timed out after {self.timeout:g} s (process group killed)"
            ) from None
        except _Overflow:
            _kill_group(proc)
            await proc.wait()
            raise CommandFailed(
                f"output exceeds max_output_bytes ({self.options.max_output_bytes}); process group killed"
            ) from None
        except BaseException:
            # Cancelled (the scheduler's deadline, agent stop): never leave the group behind.
            _kill_group(proc)
            with contextlib.suppress(BaseException):
                await asyncio.shield(proc.wait())
            raise
        return stdout, stderr, code

    def _parse(self, text: str) -> _Run:
        fmt = self.options.format
        if fmt == "auto":
            fmt = sniff(text)
        try:
            if fmt == "prometheus":
                samples, skipped = parse_prometheus(text), 0
            else:
                points = lineprotocol.parse(text)
                samples, skipped = influx_samples(points, self.options.influx_precision)
        except ValueError as exc:
            raise CommandFailed(f"cannot parse output as {fmt}: {exc}") from None
        return _Run(first_of_each_series(samples), skipped)

    def _failed(self, command: str, reason: str) -> None:
        if command not in self._failing:
            log.warning("command failed", collector=self.name, command=command, reason=reason)
        self._failing[command] = reason

    def _recovered(self, command: str) -> None:
        if self._failing.pop(command, None) is not None:
            log.info("command succeeded again", collector=self.name, command=command)


class _Overflow(Exception):
    """A pipe delivered more than its cap."""


async def _read_capped(stream: asyncio.StreamReader, cap: int, *, keep_tail: bool = False) -> bytes:
    """Everything ``stream`` delivers; past ``cap`` bytes ``_Overflow``, or with ``keep_tail``
    the last ``cap`` bytes (the rest is drained so the writer never blocks)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_READ_CHUNK):
        size += len(chunk)
        chunks.append(chunk)
        if size > cap:
            if not keep_tail:
                raise _Overflow
            chunks = [b"".join(chunks)[-cap:]]
            size = len(chunks[0])
    return b"".join(chunks)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    # The child called setsid(): its process group id is its pid. While the child is
    # not yet reaped (returncode None) that id cannot have been reused.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _with_target_labels(s: Sample, target: Mapping[str, str]) -> Sample:
    # Prometheus' honor_labels: false, as the scheduler does for collector labels.
    labels = dict(s.labels)
    for key, value in target.items():
        mine = labels.get(key)
        if mine:
            labels["exported_" + key] = mine
        labels[key] = value
    return Sample(s.name, labels, s.value, s.type, s.help, s.unit, s.ts_ms)


def create(config: CollectorConfig) -> ExecCollector:
    """Build the exec collector of ``config``; ``ValueError`` names a bad option."""
    try:
        options = ExecOptions.model_validate(config.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"options.{where}: {first['msg'].removeprefix('Value error, ')}") from exc
    if not config.targets and not options.target_files:
        raise ValueError("the exec collector needs targets (commands) or options.target_files")
    for command in config.targets:
        _check_command(command)
    source = TargetSource(config.targets, options.target_files, owner=config.effective_name)
    return ExecCollector(
        options, source, interval=config.effective_interval, name=config.effective_name
    )


def _check_command(command: str) -> None:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"targets: cannot split command line {command!r}: {exc}") from exc
    if not argv:
        raise ValueError("targets: empty command line")
