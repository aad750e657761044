"""Notifier replicas as real processes, and the audit of what they delivered.

``Slot`` is one replica position (``a``, ``b``): each start is a new process
and a new *instance* with its own replica name (``a0``, ``a1``, ...) and its own
webhook path (``/hook/a0``), so the receiver and the notification log both say
which process did what. ``NflogWatch`` records every revision of the
notification log in KV, in order. ``audit`` joins the two after the run.

How a delivery is accounted: each request the receiver got came from one
instance for one group. It is *logged* when that instance's lease revision on
the group's log key is followed by its record (a lease-free entry with the
alerts), and *in the window* when it is not: the provider had the
notification and the instance died before its log write. A duplicate is any
request for a group beyond its first.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from notifier.nflog import Entry, key
from tests.notifier.hookserver import HookServer

REPO = Path(__file__).resolve().parents[2]
RECEIVER = "hook"


def group_key(alertname: str) -> str:
    """The group key of the test's route (``group_by: [alertname]`` at the root)."""
    return f'{{}}:{{alertname="{alertname}"}}'


def nflog_key(alertname: str) -> str:
    return key(group_key(alertname), RECEIVER, "webhook", 0)


def write_config(
    directory: Path,
    nats_url: str,
    hook_url: str,
    replica: str,
    *,
    group_wait: str,
    group_interval: str = "1s",
) -> Path:
    """Vigil's file and its Alertmanager file for one instance; the path of Vigil's."""
    directory.mkdir(parents=True, exist_ok=True)
    am = {
        "route": {
            "receiver": RECEIVER,
            "group_by": ["alertname"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": "1h",
        },
        # a 1 s attempt timeout keeps the lease (group_interval + timeout + margin) short
        "receivers": [{"name": RECEIVER, "webhook_configs": [{"url": hook_url, "timeout": "1s"}]}],
    }
    (directory / "alertmanager.yml").write_text(yaml.safe_dump(am), encoding="utf-8")
    path = directory / "vigil.yaml"
    doc = {
        "nats": {"servers": [nats_url]},
        "alerting": {"alertmanager_config": "alertmanager.yml"},
        "notifier": {"listen_address": "127.0.0.1:0", "replica": replica, "replay": "10m"},
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@dataclass
class Slot:
    """One replica position, restarted as new instances; every end is recorded."""

    name: str
    base: Path
    nats_url: str
    hook: HookServer
    group_wait: str = "200ms"
    group_interval: str = "1s"
    proc: subprocess.Popen[bytes] | None = None
    instance: str = ""
    started: int = 0
    ends: list[tuple[str, str]] = field(default_factory=list)  # (instance, "kill"/"fault"/"exit")

    def start(self, faults: str = "") -> str:
        """Start the next instance, with ``VIGIL_FAULTS`` set to ``faults``; its name."""
        self.instance = f"{self.name}{self.started}"
        self.started += 1
        cfg = write_config(
            self.base / self.instance,
            self.nats_url,
            self.hook.url(f"/hook/{self.instance}"),
            self.instance,
            group_wait=self.group_wait,
            group_interval=self.group_interval,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env["VIGIL_FAULTS"] = faults
        with (self.base / f"{self.instance}.log").open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "notifier", "--config", str(cfg)],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        return self.instance

    def log_text(self, instance: str | None = None) -> str:
        path = self.base / f"{instance or self.instance}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_exit(self, limit_s: float = 60.0) -> int:
        """Bounded polling (the loop keeps serving the receiver) until the process ends."""
        assert self.proc is not None
        deadline = time.monotonic() + limit_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"notifier {self.instance} did not end within {limit_s}s")
            await asyncio.sleep(0.02)
        return self.proc.returncode

    async def kill(self) -> None:
        """SIGKILL the running instance by its PID."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.wait_exit()
        self.ends.append((self.instance, "kill"))

    def reap(self, code: int) -> None:
        """Record the end of an instance that exited by itself (a fault point: ``code``)."""
        self.ends.append((self.instance, "fault" if code == 77 else f"exit {code}"))

    async def terminate(self) -> int:
        """SIGTERM (graceful stop) and wait."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        code = await self.wait_exit()
        self.ends.append((self.instance, "exit"))
        return code

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


async def consumer_ready(js: JetStreamContext, stream: str, instance: str) -> bool:
    """The instance has made its durable consumer on the alerts stream (it is consuming)."""
    try:
        await js.consumer_info(stream, f"notifier_{instance}")
    except Exception:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Revision:
    key: str
    revision: int
    entry: Entry | None  # None: deleted


class NflogWatch:
    """Every revision of the notification log bucket, in order (started before any replica)."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self.revisions: list[Revision] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> NflogWatch:
        watcher = await self.kv.watchall(include_history=True)

        async def run() -> None:
            async for e in watcher:
                if e is None:
                    continue
                got = Entry.decode(e.value) if e.value else None
                self.revisions.append(Revision(e.key, e.revision or 0, got))

        self._task = asyncio.create_task(run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def logged(self, alertname: str) -> bool:
        """The group's latest log entry records it as sent (no lease pending)."""
        k = nflog_key(alertname)
        last = [r for r in self.revisions if r.key == k]
        return bool(last) and _is_record(last[-1].entry)


def _is_record(entry: Entry | None) -> bool:
    return entry is not None and entry.lease_owner is None and bool(entry.firing)


@dataclass
class Audit:
    expected: int
    delivered: int
    duplicates: int
    window_hits: int  # deliveries the provider had whose log write never happened
    kills: int  # instances ended by SIGKILL or a fault point
    kills_in_window: int  # of those, the ones that left at least one window hit
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"alerts={self.expected} delivered={self.delivered} kills={self.kills} "
            f"kills_in_window={self.kills_in_window} window_hits={self.window_hits} "
            f"duplicates={self.duplicates}"
        )


def audit(
    alertnames: list[str],
    requests: list[tuple[str, str]],
    revisions: list[Revision],
    killed: set[str],
) -> Audit:
    """Join the receiver's requests ``(instance, group key)`` with the log's revisions."""
    by_key: dict[str, list[Revision]] = defaultdict(list)
    for r in revisions:
        by_key[r.key].append(r)
    logged: Counter[tuple[str, str]] = Counter()  # (instance, log key) -> records after its lease
    records: Counter[str] = Counter()
    for k, revs in by_key.items():
        for this, after in zip(revs, [*revs[1:], None], strict=True):
            owner = this.entry.lease_owner if this.entry is not None else None
            if owner is not None and after is not None and _is_record(after.entry):
                logged[(owner, k)] += 1
                records[k] += 1
    sent: Counter[tuple[str, str]] = Counter(requests)
    per_group: Counter[str] = Counter(gk for _, gk in requests)
    problems: list[str] = []
    window_hits = 0
    in_window: set[str] = set()
    names_by_group = {group_key(a): a for a in alertnames}
    for (instance, gk), n in sent.items():
        k = nflog_key(names_by_group[gk]) if gk in names_by_group else ""
        unlogged = n - logged[(instance, k)]
        if unlogged < 0:
            problems.append(f"{instance} logged {gk} more often than the receiver got it")
        elif unlogged > 0 and instance not in killed:
            problems.append(f"{instance} sent {gk} and never logged it, yet was not killed")
        elif unlogged > 0:
            window_hits += unlogged
            in_window.add(instance)
    problems.extend(
        f"{group_key(a)} logged as sent {records[nflog_key(a)]} times"
        for a in alertnames
        if records[nflog_key(a)] > 1
    )
    delivered = sum(1 for a in alertnames if per_group[group_key(a)] > 0)
    duplicates = sum(max(0, n - 1) for n in per_group.values())
    return Audit(
        expected=len(alertnames),
        delivered=delivered,
        duplicates=duplicates,
        window_hits=window_hits,
        kills=len(killed),
        kills_in_window=len(in_window),
        problems=problems,
    )


def requests_of(hook: HookServer) -> list[tuple[str, str]]:
    """``(instance, group key)`` of every webhook the receiver got."""
    out = []
    for r in hook.requests:
        if r.path.startswith("/hook/"):
            doc: Any = r.json()
            out.append((r.path.removeprefix("/hook/"), str(doc["groupKey"])))
    return out
