"""What happens to one group flush: Alertmanager's notification pipeline.

For a ``Flush`` from the dispatcher:

1. time intervals: a route muted now (``mute_time_intervals`` contain the
   instant, or ``active_time_intervals`` are given and none does) sends
   nothing, and the flush counts as handled;
2. silenced and inhibited alerts are left out (firing and resolved alike);
3. per integration of the receiver, concurrently (one task each, so a slow
   integration never holds up another): the notification log decides whether
   to send (``needs_update``) and hands out the delivery lease, resolved
   alerts are left out for ``send_resolved: false``, ``delivery.deliver``
   sends with retries, every attempt is published as a ``NotificationResult``,
   and the log records what was sent;
4. the flush is handled when every integration is (sent, not needed, or
   someone else's); resolved alerts then leave the group.

``Pipeline`` holds no timers: the clock is the flush's instant, and the
retry loop's clock and sleep are injectable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from notifier.delivery import Attempt, RetryPolicy, deliver
from notifier.group import Flush
from notifier.inhibit import Inhibitor
from notifier.nflog import Entry, key, needs_update
from notifier.nflogkv import NotificationLog
from notifier.receivers.base import Integration, Notification
from notifier.silence import Silencer
from notifier.timeinterval import TimeInterval, any_contains
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
            return False  # another replica is delivering; the next flush looks again
        deadline = opts.group_interval
        # an integration's own ``timeout`` (webhook_configs[].timeout) overrides the policy's
        timeout = getattr(getattr(integration, "cfg", None), "timeout", 0.0) or None
        # the lease outlasts the whole delivery: the last attempt may start just before the
        # deadline and run its full timeout
        lease = deadline + (timeout or self.policy.attempt_timeout) + self.lease_margin
        lease_rev = await self.nflog.acquire(k, entry, rev, datetime.now(UTC), lease)
        if lease_rev is None:
            return False
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

        ok = await deliver(
            integration,
            n,
            policy=self.policy,
            deadline=deadline,
            report=report,
            attempt_timeout=timeout,
            sleep=self.sleep,
        )
        if self.on_done is not None:
            self.on_done(integration, ok)
        if not ok:
            await self.nflog.release(k, lease_rev, entry)
            return False
        if not await self.nflog.record(k, lease_rev, sent):
            log.warning(
                "notification sent but its log entry changed meanwhile (lease expired?)",
                receiver=flush.receiver,
                integration=integration.kind,
            )
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
