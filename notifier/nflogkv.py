"""The notification log in NATS KV (``<prefix>_nflog``), shared by notifier replicas.

Protocol for one group flush and one integration (``Entry`` and the rules are
in ``notifier.nflog``):

1. ``read`` the entry and its revision; if ``needs_update`` says no, stop;
   if another replica holds an unexpired lease, stop (it is delivering);
2. ``acquire``: write the entry back with this replica's lease (owner, until)
   by compare-and-set on the revision read (create when absent); losing the
   race means another replica took it: stop;
3. deliver; before each retry ``renew`` the lease over the back-off pause and
   the next attempt, by compare-and-set on the lease's revision (a changed
   revision means another replica took over: stop);
4. on success ``record`` the notified alerts by compare-and-set on the lease's
   revision (re-checked: if it changed, the lease expired and another replica
   took over, and the record is left to it); on failure ``release`` the lease
   so another replica (or the next flush) may try at once.

A lease covers one attempt (its timeout plus a margin) and is renewed before
each retry, so it outlasts the whole delivery of a live replica while a
replica killed mid-delivery is covered by another within one attempt's time,
not a whole ``group_interval``. A replica that dies between the provider's
answer and ``record`` leaves a duplicate to the next replica: at least once.
Clocks of replicas are assumed in sync to well under the lease.

If the KV store cannot be reached, the log falls back to this replica's memory
(delivery goes on; replicas may then both deliver) and says so once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from notifier.nflog import Entry
from shared.log import get_logger

log = get_logger(__name__)


class NotificationLog:
    def __init__(self, kv: KeyValue | None, owner: str) -> None:
        self.kv = kv
        self.owner = owner
        self._local: dict[str, tuple[Entry, int]] = {}
        self._failing = False
        self.conflicts = 0

    def _down(self, exc: Exception) -> None:
        if not self._failing:
            log.warning(
                "cannot use the notification log in KV, using memory",
                error=str(exc) or type(exc).__name__,
            )
            self._failing = True

    def _up(self) -> None:
        if self._failing:
            log.info("notification log in KV reachable again")
            self._failing = False

    async def read(self, key: str) -> tuple[Entry | None, int]:
        """The entry (``None`` if absent) and its revision (0 if absent)."""
        if self.kv is not None:
            try:
                got = await self.kv.get(key)
            except KeyNotFoundError:
                self._up()
                return None, 0
            except Exception as exc:  # noqa: BLE001 - any NATS trouble: fall back to memory
                self._down(exc)
            else:
                self._up()
                return (Entry.decode(got.value) if got.value else None), got.revision or 0
        entry, rev = self._local.get(key, (None, 0))
        return entry, rev

    async def _write(self, key: str, entry: Entry, last: int) -> int | None:
        if self.kv is not None and not self._failing:
            try:
                if last == 0:
                    return await self.kv.create(key, entry.encode())
                return await self.kv.update(key, entry.encode(), last=last)
            except KeyWrongLastSequenceError:
                self.conflicts += 1
                return None
            except Exception as exc:  # noqa: BLE001 - the KV store wraps "exists" and outages alike
                if "wrong last sequence" in str(exc) or "key exists" in str(exc):
                    self.conflicts += 1
                    return None
                self._down(exc)
        _, rev = self._local.get(key, (None, 0))
        if rev != last:
            return None
        self._local[key] = (entry, rev + 1)
        return rev + 1

    async def acquire(
        self, key: str, entry: Entry | None, rev: int, now: datetime, lease: float
    ) -> int | None:
        """Take the delivery lease; the new revision, or ``None`` if another replica has it."""
        base = entry or Entry()
        leased = Entry(
            base.firing,
            base.resolved,
            base.timestamp,
            self.owner,
            now + timedelta(seconds=lease),
            base.extra,
        )
        return await self._write(key, leased, rev)

    async def renew(
        self, key: str, lease_rev: int, entry: Entry | None, now: datetime, lease: float
    ) -> int | None:
        """Extend a held lease to ``now + lease``; the new revision, ``None`` if it was lost.

        With the KV store unreachable the lease is kept as it is (delivery goes on, as
        everywhere in the memory fallback).
        """
        got = await self.acquire(key, entry, lease_rev, now, lease)
        # A conflict leaves the store up; ``None`` with it down is the memory fallback's.
        return lease_rev if got is None and self._failing else got

    async def record(self, key: str, lease_rev: int, entry: Entry) -> bool:
        """Record a delivered notification; False if the lease was lost meanwhile."""
        return await self._write(key, entry, lease_rev) is not None

    async def release(self, key: str, lease_rev: int, previous: Entry | None) -> None:
        """Give the lease back after a failed delivery, keeping what was last sent."""
        await self._write(key, previous or Entry(), lease_rev)
