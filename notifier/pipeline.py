"""What happens to one group flush: Alertmanager's notification pipeline.

For a ``Flush`` from the dispatcher:

1. time intervals: a route muted now (``mute_time_intervals`` contain the
   instant, or ``active_time_intervals`` are given and none does) sends
   nothing, and the flush counts as handled;
2. silenced and inhibited alerts are left out (firing and resolved alike);
3. per integration of the receiver, concurrently (one task each, so a slow
   integration never holds up another): the notification log decides whether
   to send (``needs_update``) and hands out the delivery lease (one
   attempt's timeout plus ``lease_margin``, renewed before each retry),
   resolved alerts are left out for ``send_resolved: false``,
   ``delivery.deliver`` sends with retries, every attempt is published as a
   ``NotificationResult``, and the log records what was sent;
4. the flush is handled when every integration is (sent, not needed, or
   someone else's); resolved alerts then leave the group. When another
   replica holds the lease, ``on_leased(flush, until)`` asks for the group
   to be looked at again when that lease ends (the holder may have died).

Crash tests arm the fault points (``shared.faults``) on the send path, in
order: ``notifier.before_claim`` (a send is needed, the lease not yet taken),
``notifier.after_claim`` (lease taken, nothing sent), ``notifier.after_send_before_log``
(the provider answered, the log not yet written: the one place a crash leaves
a duplicate) and ``notifier.after_log``.

``Pipeline`` holds no timers: the clock is the flush's instant, and the
retry loop's clock and sleep are injectable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from notifier.delivery import Attempt, RetryPolicy, deliver
from notifier.group import Flush
from notifier.inhibit import Inhibitor
from notifier.nflog import Entry, key, needs_update
from notifier.nflogkv import NotificationLog
from notifier.receivers.base import Integration, Notification
from notifier.timeinterval import TimeInterval, any_contains
from shared.alertmanager.silence import Silencer
from shared.faults import fault_point
from shared.log import get_logger
from shared.wire import AlertEvent, AlertStatus, NotificationResult

log = get_logger(__name__)

Publish = Callable[[NotificationResult], Awaitable[None]]
PublishStatus = Callable[[AlertStatus], Awaitable[None]]


@dataclass
class Pipeline:
    receivers: dict[str, list[Integration]]
    intervals: dict[str, list[TimeInterval]]
    silencer: Silencer
    inhibitor: Inhibitor
    nflog: NotificationLog
    publish: Publish
    publish_status: PublishStatus
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    external_url: str = ""
    lease_margin: float = 5.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    on_attempt: Callable[[Integration, Attempt], None] | None = None
    on_done: Callable[[Integration, bool], None] | None = None
    on_leased: Callable[[Flush, datetime], None] | None = None

    def muted(self, flush: Flush) -> bool:
        opts = flush.route.opts
        for name in opts.mute_time_intervals:
            if any_contains(self.intervals.get(name, []), flush.at):
                return True
        if opts.active_time_intervals:
            return not any(
                any_contains(self.intervals.get(name, []), flush.at)
                for name in opts.active_time_intervals
            )
        return False

    def _unmuted(self, alerts: list[AlertEvent], now: datetime) -> list[AlertEvent]:
        return [
            a
            for a in alerts
            if not self.silencer.silenced_by(a.labels, now)
            and not self.inhibitor.inhibited_by(a.labels, now)
        ]

    async def handle(self, flush: Flush) -> bool:
        """Handle one flush; True when the group may drop the resolved alerts it sent."""
        if self.muted(flush):
            return True
        firing = self._unmuted(flush.firing, flush.at)
        resolved = self._unmuted(flush.resolved, flush.at)
        integrations = self.receivers.get(flush.receiver, [])
        if not integrations:
            return True
        results = await asyncio.gather(
            *(self._integration(flush, i, firing, resolved) for i in integrations)
        )
        return all(results)

    def _look_again(self, flush: Flush, at: datetime | None) -> None:
        if self.on_leased is not None and at is not None:
            self.on_leased(flush, at)

    async def _integration(
        self,
        flush: Flush,
        integration: Integration,
        firing: list[AlertEvent],
        resolved: list[AlertEvent],
    ) -> bool:
        opts = flush.route.opts
        now = flush.at
        k = key(flush.group_key, flush.receiver, integration.kind, integration.index)
        entry, rev = await self.nflog.read(k)
        firing_fps = {a.fingerprint for a in firing}
        resolved_fps = {a.fingerprint for a in resolved}
        if not needs_update(
            entry,
            firing_fps,
            resolved_fps,
            send_resolved=integration.send_resolved,
            repeat_interval=opts.repeat_interval,
            now=now,
        ):
            return True
        if entry is not None and entry.leased_by_other(self.nflog.owner, datetime.now(UTC)):
            # another replica is delivering; look again when its lease ends, in case it died
            self._look_again(flush, entry.lease_until)
            return False
        deadline = opts.group_interval
        # an integration's own ``timeout`` (webhook_configs[].timeout) overrides the policy's
        timeout = getattr(getattr(integration, "cfg", None), "timeout", 0.0) or None
        # the lease covers one attempt and is renewed before each retry (over the pause and
        # the next attempt): a replica killed mid-delivery is covered within one attempt's time
        attempt_timeout = timeout or self.policy.attempt_timeout
        fault_point("notifier.before_claim")
        claimed = await self.nflog.acquire(
            k, entry, rev, datetime.now(UTC), attempt_timeout + self.lease_margin
        )
        if claimed is None:  # another replica won the race: look again when its lease may end
            lease = timedelta(seconds=attempt_timeout + self.lease_margin)
            self._look_again(flush, datetime.now(UTC) + lease)
            return False
        lease_rev: int = claimed
        fault_point("notifier.after_claim")
        sent = Entry(frozenset(firing_fps), frozenset(resolved_fps), now)
        n = Notification(
            flush.receiver,
            flush.group_key,
            flush.group_labels,
            firing,
            resolved if integration.send_resolved else [],
            self.external_url,
            now,
        )
        if not n.alerts:  # only resolved alerts, and they are not to be shown
            return await self.nflog.record(k, lease_rev, sent)

        async def report(attempt: Attempt) -> None:
            if self.on_attempt is not None:
                self.on_attempt(integration, attempt)
            await self.publish(
                NotificationResult(
                    receiver=flush.receiver,
                    integration=integration.kind,
                    integration_index=integration.index,
                    group_key=flush.group_key,
                    firing=len(n.firing),
                    resolved=len(n.resolved),
                    fingerprints=[a.fingerprint for a in n.alerts],
                    outcome=attempt.outcome,
                    attempt=attempt.attempt,
                    error=attempt.error,
                    duration_seconds=attempt.duration_seconds,
                    at=datetime.now(UTC),
                )
            )

        async def renew(seconds: float) -> bool:
            nonlocal lease_rev
            got = await self.nflog.renew(
                k, lease_rev, entry, datetime.now(UTC), seconds + self.lease_margin
            )
            if got is None:
                return False
            lease_rev = got
            return True

        ok = await deliver(
            integration,
            n,
            policy=self.policy,
            deadline=deadline,
            report=report,
            attempt_timeout=timeout,
            sleep=self.sleep,
            renew=renew,
        )
        if self.on_done is not None:
            self.on_done(integration, ok)
        if not ok:
            await self.nflog.release(k, lease_rev, entry)
            return False
        fault_point("notifier.after_send_before_log")
        if not await self.nflog.record(k, lease_rev, sent):
            log.warning(
                "notification sent but its log entry changed meanwhile (lease expired?)",
                receiver=flush.receiver,
                integration=integration.kind,
            )
        fault_point("notifier.after_log")
        notified_at = datetime.now(UTC)
        for a in n.alerts:
            await self.publish_status(
                AlertStatus(
                    fingerprint=a.fingerprint,
                    state="active",
                    notified_at=notified_at,
                    receivers=[flush.receiver],
                    at=notified_at,
                )
            )
        return True
