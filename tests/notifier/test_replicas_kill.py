"""Two notifier replicas as real processes, one killed: nothing lost, duplicates only from
kills between the provider's answer and the log write.

Each replica is ``python -m notifier`` against a real nats-server, delivering to a
real local webhook receiver (``HookServer``, in this test's loop). Every alert is
its own group. The audit (``tests.notifier.replicas``) joins what the receiver got
with every revision of the notification log and counts both the duplicates and the
deliveries a kill caught in the window; it asserts every alert was delivered, no
group was logged as sent twice, every unlogged delivery came from a killed
instance, and duplicates <= those window hits.

- the default-suite test kills replica ``a`` once at each fault point on the send
  path (``VIGIL_FAULTS=<point>=crash``); replica ``b`` waits longer before its
  first flush, so ``a`` always claims first and ``b`` covers, when ``a``'s lease
  ends rather than a ``group_interval`` (an hour here) later;
- the ``slow`` test publishes 200 alerts while SIGKILLing either replica at random
  instants and restarting it, some restarts armed at a random fault point.

Two in-process tests pin the lease that makes coverage quick: it covers one
attempt and is renewed before each retry, and a replica whose lease was taken
over stops retrying.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.aio.client import Client

from notifier.delivery import RetryPolicy
from notifier.errors import RetryableError
from notifier.group import Dispatcher
from notifier.inhibit import Inhibitor
from notifier.nflog import Entry, key
from notifier.nflogkv import NotificationLog
from notifier.pipeline import Pipeline
from notifier.receivers.base import Notification
from notifier.route import build
from shared.alertmanager.silence import Silencer
from shared.bus.provision import provision
from shared.codec import encode_message
from shared.config.loader import load_config
from shared.devenv.nats import NatsServer
from shared.faults import CRASH_EXIT_CODE
from shared.wire import AlertEvent, Names, NotificationResult
from tests.notifier.helpers import alert, at, config
from tests.notifier.hookserver import HookServer
from tests.notifier.replicas import (
    NflogWatch,
    Slot,
    audit,
    consumer_ready,
    requests_of,
)

NAMES = Names()
POINTS = [
    "notifier.before_claim",
    "notifier.after_claim",
    "notifier.after_send_before_log",
    "notifier.after_log",
]


@pytest.fixture
async def hook() -> AsyncIterator[HookServer]:
    server = await HookServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def nflog(nats_client: Client) -> AsyncIterator[NflogWatch]:
    js = nats_client.jetstream()
    await provision(js, load_config(None, env={}).config.nats)
    watch = await NflogWatch(await js.key_value(NAMES.kv_nflog)).start()
    yield watch
    await watch.stop()


async def _until(check: Callable[[], Awaitable[bool]], limit_s: float, what: str) -> None:
    """Bounded polling of state owned by other processes (a failure, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def _publish(nc: Client, alertname: str) -> None:
    now = datetime.now(UTC)
    event = AlertEvent(
        labels={"alertname": alertname, "instance": "h"},
        annotations={"summary": alertname},
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        generator_url="http://vigil.example/graph",
        status="firing",
    )
    await nc.jetstream().publish(NAMES.alerts("rules"), encode_message(event))


async def _started(nc: Client, slot: Slot, faults: str = "") -> str:
    instance = slot.start(faults)
    js = nc.jetstream()

    async def ready() -> bool:
        if not slot.alive:
            raise AssertionError(f"notifier {instance} ended at start:\n{slot.log_text()[-2000:]}")
        return await consumer_ready(js, NAMES.stream_alerts, instance)

    await _until(ready, 60, f"notifier {instance} consuming")
    return instance


async def _all_logged(nflog: NflogWatch, names: list[str], limit_s: float) -> None:
    async def done() -> bool:
        return all(nflog.logged(n) for n in names)

    await _until(done, limit_s, "every group logged as sent")


async def test_a_replica_killed_at_each_fault_point_is_covered_by_the_other(
    tmp_path: Path,
    nats_server: NatsServer,
    nats_client: Client,
    hook: HookServer,
    nflog: NflogWatch,
) -> None:
    # group_interval 1h: b's covering flush can only be the one brought forward to the end
    # of a's lease (``look_again``), not the periodic one
    a = Slot("a", tmp_path, nats_server.url, hook, group_wait="100ms", group_interval="1h")
    b = Slot("b", tmp_path, nats_server.url, hook, group_wait="3s", group_interval="1h")
    killed: set[str] = set()
    names: list[str] = []
    covered: dict[str, float] = {}  # fault point -> seconds from the crash to the log record
    try:
        await _started(nats_client, b)
        for phase, point in enumerate(POINTS):
            instance = await _started(nats_client, a, f"{point}=crash")
            name = f"P{phase}"
            names.append(name)
            await _publish(nats_client, name)
            assert await a.wait_exit() == CRASH_EXIT_CODE, a.log_text()[-2000:]
            assert f"fault point {point} fired" in a.log_text()
            a.reap(CRASH_EXIT_CODE)
            killed.add(instance)
            crashed = time.monotonic()
            # b covers: at its first flush, or once a's lease (attempt timeout + 5 s) expired
            await _all_logged(nflog, names, limit_s=60)
            covered[point] = time.monotonic() - crashed
        assert b.alive
        assert await b.terminate() == 0
    finally:
        a.cleanup()
        b.cleanup()
    result = audit(names, requests_of(hook), nflog.revisions, killed)
    print(f"fault points: {result.line()}")
    print("covered after (s): " + " ".join(f"{p}={t:.1f}" for p, t in covered.items()))
    assert result.problems == []
    assert result.delivered == len(names)
    assert result.kills == len(POINTS)
    # only the kill between the provider's answer and the log write left a duplicate
    assert result.window_hits == 1
    assert result.kills_in_window == 1
    assert result.duplicates == 1
    per_group = [gk for _, gk in requests_of(hook)]
    assert per_group.count('{}:{alertname="P2"}') == 2


ALERTS = 200


@pytest.mark.slow
async def test_two_replicas_one_killed_at_random_deliver_200_alerts(
    tmp_path: Path,
    nats_server: NatsServer,
    nats_client: Client,
    hook: HookServer,
    nflog: NflogWatch,
) -> None:
    seed = int(os.environ.get("VIGIL_TEST_KILL_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"seed={seed} (VIGIL_TEST_KILL_SEED repeats the run's choices)")
    slots = [
        Slot(s, tmp_path, nats_server.url, hook, group_wait="500ms", group_interval="1s")
        for s in "ab"
    ]
    killed: set[str] = set()
    names = [f"K{i:03d}" for i in range(ALERTS)]

    async def publisher() -> None:
        for i, name in enumerate(names):
            await _publish(nats_client, name)
            if i % 5 == 4:
                await asyncio.sleep(0.1)  # spread out, so kills land among flushes

    def armed() -> str:
        if rng.random() < 0.5:
            return ""
        return f"{rng.choice(POINTS)}=crash@{rng.randint(1, 3)}"

    async def restart_ended() -> None:
        """Restart an instance a fault point ended (it counts as a kill)."""
        for slot in slots:
            if slot.proc is not None and not slot.alive:
                code = await slot.wait_exit()
                assert code == CRASH_EXIT_CODE, slot.log_text()[-2000:]
                slot.reap(code)
                killed.add(slot.instance)
                await _started(nats_client, slot, armed())

    try:
        for slot in slots:
            await _started(nats_client, slot)
        pub = asyncio.create_task(publisher())
        deadline = time.monotonic() + 40.0
        kills = 0
        while time.monotonic() < deadline and kills < 25 and not (pub.done() and kills >= 8):
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await restart_ended()
            slot = rng.choice(slots)
            if not slot.alive:
                continue
            await slot.kill()
            killed.add(slot.instance)
            kills += 1
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            await _started(nats_client, slot, armed())
        await pub
        # the run is over: no more faults; every group must end logged as sent
        for slot in slots:
            if slot.alive:
                await slot.kill()
                killed.add(slot.instance)
            elif slot.proc is not None:
                slot.reap(await slot.wait_exit())
                killed.add(slot.instance)
            await _started(nats_client, slot)
        await _all_logged(nflog, names, limit_s=120)
        for slot in slots:
            assert await slot.terminate() == 0
    finally:
        for slot in slots:
            slot.cleanup()
    result = audit(names, requests_of(hook), nflog.revisions, killed)
    ends = Counter(how for slot in slots for _, how in slot.ends)
    print(
        f"random kills (seed={seed}): {result.line()} "
        f"sigkills={ends['kill']} fault_crashes={ends['fault']}"
    )
    assert result.problems == []
    assert result.delivered == ALERTS
    assert result.duplicates <= result.window_hits


class Flaky:
    """An integration that fails its first ``failures`` attempts; ``during`` runs in each."""

    kind = "webhook"
    index = 0
    send_resolved = True

    def __init__(self, failures: int, during: Callable[[], Awaitable[None]]) -> None:
        self.failures = failures
        self.during = during
        self.calls = 0

    async def notify(self, notification: Notification) -> None:
        self.calls += 1
        await self.during()
        if self.calls <= self.failures:
            raise RetryableError("cannot notify webhook r: HTTP 503")

    async def close(self) -> None:
        return None


async def _retrying_pipeline(
    nats_client: Client, flaky: Flaky, results: list[NotificationResult]
) -> tuple[Dispatcher, Pipeline, NotificationLog]:
    js = nats_client.jetstream()
    await provision(js, load_config(None, env={}).config.nats)
    nflog = NotificationLog(await js.key_value(NAMES.kv_nflog), "a")
    cfg = config(
        {
            "route": {
                "receiver": "r",
                "group_by": ["alertname"],
                "group_wait": "0s",
                "group_interval": "5m",
            },
            "receivers": [{"name": "r"}],
        }
    )

    async def publish(result: NotificationResult) -> None:
        results.append(result)

    async def ignore(_status: object) -> None:
        return None

    async def no_pause(_seconds: float) -> None:
        return None

    pipeline = Pipeline(
        receivers={"r": [flaky]},
        intervals=cfg.am.intervals(),
        silencer=Silencer(),
        inhibitor=Inhibitor([]),
        nflog=nflog,
        publish=publish,
        publish_status=ignore,
        policy=RetryPolicy(initial=1.0, jitter=0.0, attempt_timeout=2.0),
        lease_margin=5.0,
        sleep=no_pause,
    )
    dispatcher = Dispatcher(build(cfg.route))
    dispatcher.process(alert(0, alertname="Down"), 1, at(0))
    return dispatcher, pipeline, nflog


async def test_the_lease_covers_one_attempt_and_is_renewed_before_each_retry(
    nats_client: Client,
) -> None:
    seen: list[tuple[datetime, int, Entry]] = []  # (looked at, revision, entry) per attempt
    logs: list[NotificationLog] = []

    async def look() -> None:
        looked_at = datetime.now(UTC)
        entry, rev = await logs[0].read(key('{}:{alertname="Down"}', "r", "webhook", 0))
        assert entry is not None
        seen.append((looked_at, rev, entry))

    flaky = Flaky(2, look)
    results: list[NotificationResult] = []
    d, p, nflog = await _retrying_pipeline(nats_client, flaky, results)
    logs.append(nflog)
    [flush] = d.tick(at(0))
    assert await p.handle(flush)
    assert flaky.calls == 3
    assert [r.outcome for r in results] == ["retrying", "retrying", "success"]
    assert len({rev for _, rev, _ in seen}) == 3  # a new lease revision per attempt
    assert {e.lease_owner for _, _, e in seen} == {"a"}
    # one attempt's worth (2 s timeout + 5 s margin), not the 5 min group_interval; each
    # renewal also covers the pause before it (1 s, then 2 s)
    untils = []
    for (looked_at, _, e), pause in zip(seen, [0.0, 1.0, 2.0], strict=True):
        assert e.lease_until is not None
        assert e.lease_until <= looked_at + timedelta(seconds=pause + 2.0 + 5.0)
        untils.append(e.lease_until)
    assert untils == sorted(untils)
    final, _ = await nflog.read(key(flush.group_key, "r", "webhook", 0))
    assert final is not None
    assert final.lease_owner is None
    assert final.firing


async def test_a_replica_whose_lease_was_taken_over_stops_retrying(nats_client: Client) -> None:
    logs: list[NotificationLog] = []

    async def taken_over() -> None:
        # another replica decided the lease had expired and took the delivery over
        other = NotificationLog(logs[0].kv, "b")
        k = key('{}:{alertname="Down"}', "r", "webhook", 0)
        entry, rev = await other.read(k)
        assert await other.acquire(k, entry, rev, datetime.now(UTC) + timedelta(hours=1), 60)

    flaky = Flaky(5, taken_over)
    results: list[NotificationResult] = []
    d, p, nflog = await _retrying_pipeline(nats_client, flaky, results)
    logs.append(nflog)
    [flush] = d.tick(at(0))
    assert not await p.handle(flush)
    assert flaky.calls == 1
    assert [r.outcome for r in results] == ["failed"]
    assert "another replica took the delivery over" in (results[0].error or "")
    final, _ = await nflog.read(key(flush.group_key, "r", "webhook", 0))
    assert final is not None
    assert final.lease_owner == "b"  # a neither recorded nor released
