"""Silences through the API: Alertmanager's rules, kept in the KV bucket, announced on the stream.

Rules (Alertmanager's ``api/v2`` handler and ``silence.Silences.Set``/``Expire``):

- a posted silence needs ``startsAt`` before ``endsAt``, an ``endsAt`` not in
  the past, valid matchers, and one matcher that does not match the empty
  string (``shared.alertmanager.silence.validate``); otherwise 400;
- without ``id`` it is new: a UUID is drawn and a ``startsAt`` in the past
  becomes now;
- with ``id`` of an unknown silence: 404; of a known one it is changed in
  place when the matchers are equal and the change is one the state allows
  (pending: ``startsAt`` not in the past; active: same ``startsAt``; expired:
  never); otherwise the old silence is expired (unless it already is) and the
  posted one is created under a new id;
- expiring sets ``endsAt`` to now (and ``startsAt`` too for a pending silence);
  an expired silence cannot be expired again (500, as Alertmanager).

The KV bucket (key = silence id) is the truth: every change reads the entry
and writes with compare-and-set on its revision, re-reading on a conflict, so
two replicas changing one silence never lose an update. Each change is then
published as a ``SilenceEvent`` on ``<prefix>.silences`` with ``Nats-Msg-Id`` =
id and revision (a retry is dropped by the duplicate window). Reads are served
from a watch of the bucket, updated at once by this replica's own writes, so a
client reads what it just wrote. Silences expired for longer than ``RETENTION``
are deleted from the bucket (compare-and-set on the revision read, so a silence
changed meanwhile stays), by every replica every ``GC_EVERY_S``: the first
delete wins and the others' fail harmlessly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import nats.errors
import nats.js.errors
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from shared.alertmanager.apierrors import ApiError, BadRequest, NotFound
from shared.alertmanager.errors import MatcherError
from shared.alertmanager.models import PostableSilence
from shared.alertmanager.silence import state, validate
from shared.codec import decode_message, encode_message
from shared.errors import DecodeError
from shared.log import get_logger
from shared.wire import Matcher, Names, Silence, SilenceEvent

log = get_logger(__name__)

CAS_ATTEMPTS = 40
CAS_BACKOFF_S = 0.005
CAS_BACKOFF_MAX_S = 0.2
RETENTION = timedelta(hours=120)
"""How long an expired silence stays listed (Alertmanager's ``--data.retention`` default)."""
GC_EVERY_S = 600.0
_KEY_RE = re.compile(r"[-/_=.a-zA-Z0-9]+")

Kind = Literal["created", "updated", "expired"]


# ------------------------------------------------------------------ pure rules


def ms(value: datetime) -> datetime:
    """Truncated to milliseconds: the precision the API shows, so what a client reads
    back and posts again compares equal (``canUpdate`` needs the same ``startsAt``)."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def check(posted: PostableSilence, now: datetime) -> Silence:
    """The posted silence as a wire ``Silence`` (its id possibly empty); ``BadRequest`` if invalid."""
    if posted.starts_at >= posted.ends_at:
        raise BadRequest("Failed to create silence: start time must be before end time")
    if posted.ends_at < now:
        raise BadRequest("Failed to create silence: end time can't be in the past")
    if not posted.matchers:
        raise BadRequest("at least one matcher required")
    if any(not m.name for m in posted.matchers):
        raise BadRequest("invalid label matcher: empty label name")
    silence = Silence(
        id=posted.id or "new",
        matchers=[
            Matcher(name=m.name, value=m.value, is_regex=m.is_regex, is_equal=m.is_equal)
            for m in posted.matchers
        ],
        starts_at=ms(posted.starts_at),
        ends_at=ms(posted.ends_at),
        created_by=posted.created_by,
        comment=posted.comment,
        updated_at=now,
    )
    try:
        validate(silence)
    except MatcherError as exc:
        raise BadRequest(str(exc)) from exc
    return silence.model_copy(update={"id": posted.id})


def can_update(old: Silence, new: Silence, now: datetime) -> bool:
    """Alertmanager's ``canUpdate``: may ``new`` replace ``old`` under the same id?"""
    if old.matchers != new.matchers:
        return False
    current = state(old, now)
    if current == "active":
        return new.starts_at == old.starts_at and new.ends_at >= now
    if current == "pending":
        return new.starts_at >= now
    return False


def expired(silence: Silence, now: datetime) -> Silence:
    """The silence expired at ``now`` (``ApiError`` if it already is)."""
    current = state(silence, now)
    if current == "expired":
        raise ApiError(f"silence {silence.id} already expired")
    update: dict[str, object] = {"ends_at": now, "updated_at": now}
    if current == "pending":
        update["starts_at"] = now
    return silence.model_copy(update=update)


def sort_key(silence: Silence, now: datetime) -> tuple[int, float]:
    """Alertmanager's order: active by end, pending by start, expired latest end first."""
    current = state(silence, now)
    if current == "active":
        return (0, silence.ends_at.timestamp())
    if current == "pending":
        return (1, silence.starts_at.timestamp())
    return (2, -silence.ends_at.timestamp())


# ------------------------------------------------------------------ the store


@dataclass(slots=True)
class _Held:
    silence: Silence
    revision: int


class SilenceStore:
    """The silences of the KV bucket, read from a watch, changed with compare-and-set."""

    def __init__(
        self, names: Names, clock: Callable[[], datetime], retention: timedelta = RETENTION
    ) -> None:
        self.names = names
        self.clock = clock
        self.retention = retention
        self._held: dict[str, _Held] = {}
        self._kv: KeyValue | None = None
        self._js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()

    async def start(self, js: JetStreamContext, kv: KeyValue) -> None:
        self._js, self._kv = js, kv
        watcher = await kv.watchall()
        self._tasks = [
            asyncio.create_task(self._watch(watcher)),
            asyncio.create_task(self._gc_loop()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _gc_loop(self) -> None:
        while True:
            await asyncio.sleep(GC_EVERY_S)
            try:
                await self.gc()
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                log.warning("cannot delete old silences, retrying later", error=str(exc))

    async def gc(self) -> list[str]:
        """Delete the silences expired for longer than ``retention``; their ids."""
        _, kv = self._bus()
        horizon = self.clock() - self.retention
        old = [h for h in self._held.values() if h.silence.ends_at < horizon]
        gone = []
        for held in old:
            # a wrong last revision (changed meanwhile) is a BadRequestError: leave it be
            with contextlib.suppress(nats.js.errors.BadRequestError):
                await kv.delete(held.silence.id, last=held.revision)
                self._held.pop(held.silence.id, None)
                gone.append(held.silence.id)
        return gone

    async def _watch(self, watcher: object) -> None:
        async for entry in watcher:  # type: ignore[attr-defined]
            if entry is None:
                self.ready.set()
                continue
            if entry.operation in ("DEL", "PURGE") or not entry.value:
                self._held.pop(entry.key, None)
                continue
            try:
                silence = decode_message(entry.value, Silence)
            except (DecodeError, ValueError) as exc:
                log.warning("cannot read silence, ignoring it", key=entry.key, error=str(exc))
                continue
            self._remember(silence, entry.revision)

    def _remember(self, silence: Silence, revision: int) -> None:
        held = self._held.get(silence.id)
        if held is None or held.revision < revision:
            self._held[silence.id] = _Held(silence, revision)

    # reads ------------------------------------------------------------------

    def all(self) -> list[Silence]:
        now = self.clock()
        return sorted((h.silence for h in self._held.values()), key=lambda s: sort_key(s, now))

    def get(self, silence_id: str) -> Silence:
        held = self._held.get(silence_id)
        if held is None:
            raise NotFound("silence not found")
        return held.silence

    # writes -----------------------------------------------------------------

    def _bus(self) -> tuple[JetStreamContext, KeyValue]:
        if self._js is None or self._kv is None:
            raise ApiError("silences are not available yet: the notifier is starting")
        return self._js, self._kv

    async def _read(self, silence_id: str) -> tuple[Silence, int]:
        _, kv = self._bus()
        if not _KEY_RE.fullmatch(silence_id):
            raise NotFound("silence not found")
        try:
            entry = await kv.get(silence_id)
        except nats.js.errors.KeyNotFoundError as exc:
            raise NotFound("silence not found") from exc
        if not entry.value:
            raise NotFound("silence not found")
        try:
            return decode_message(entry.value, Silence), int(entry.revision or 0)
        except (DecodeError, ValueError) as exc:
            raise ApiError(f"cannot read silence {silence_id}: {exc}") from exc

    async def _write(self, silence: Silence, revision: int | None, kind: Kind) -> None:
        """Create (``revision`` None) or compare-and-set; ``_Conflict`` when someone was faster."""
        js, kv = self._bus()
        data = encode_message(silence)
        try:
            if revision is None:
                new_rev = await kv.create(silence.id, data)
            else:
                new_rev = await kv.update(silence.id, data, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError as exc:
            raise _Conflict from exc
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise ApiError(f"cannot store silence {silence.id}: {exc}") from exc
        self._remember(silence, int(new_rev))
        event = SilenceEvent(**silence.model_dump(), kind=kind)
        try:
            await js.publish(
                self.names.silences,
                encode_message(event),
                headers={"Nats-Msg-Id": f"{silence.id}:{new_rev}"},
            )
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            # the KV holds the change already; the history misses one event
            log.warning("cannot publish silence event", silence=silence.id, error=str(exc))

    async def set(self, posted: PostableSilence) -> str:
        """Create or change a silence; its id (a new one when it had to be replaced)."""
        for attempt in range(CAS_ATTEMPTS):
            now = ms(self.clock())
            new = check(posted, now)
            try:
                return await self._set_once(new, now)
            except _Conflict:
                await _backoff(attempt)
        raise ApiError(f"cannot store silence {posted.id}: it kept changing meanwhile")

    async def _set_once(self, new: Silence, now: datetime) -> str:
        if new.id:
            old, rev = await self._read(new.id)
            if can_update(old, new, now):
                await self._write(new.model_copy(update={"updated_at": now}), rev, "updated")
                return new.id
            if state(old, now) != "expired":
                await self._write(expired(old, now), rev, "expired")
        created = new.model_copy(
            update={
                "id": str(uuid.uuid4()),
                "starts_at": max(new.starts_at, now),
                "updated_at": now,
            }
        )
        await self._write(created, None, "created")
        return created.id

    async def expire(self, silence_id: str) -> None:
        for attempt in range(CAS_ATTEMPTS):
            old, rev = await self._read(silence_id)
            try:
                await self._write(expired(old, ms(self.clock())), rev, "expired")
            except _Conflict:
                await _backoff(attempt)
            else:
                return
        raise ApiError(f"cannot expire silence {silence_id}: it kept changing meanwhile")


async def _backoff(attempt: int) -> None:
    """A random pause growing with the attempts, so racing writers spread out instead of
    colliding in step (many writers on a loaded machine would otherwise exhaust the tries)."""
    cap = min(CAS_BACKOFF_MAX_S, CAS_BACKOFF_S * 2**attempt)
    await asyncio.sleep(random.uniform(0, cap))  # noqa: S311 - jitter, not crypto


class _Conflict(Exception):
    """The entry's revision moved between our read and our write."""
