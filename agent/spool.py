"""A bounded on-disk FIFO of encoded batches that survives agent restarts.

When NATS is unreachable, or a publish is not acknowledged in time, the
publisher appends the encoded batch, with its ``Nats-Msg-Id`` and sample
count, here; on reconnect it reads records back in append order and
``commit``s each one once JetStream acknowledged it. A restarted agent
replays old records under their original msg ids (the id travels in the
record), while its new batches carry its own fresh random instance id, so
ids never collide.

Layout of ``spool_dir``::

    lock                   flock()ed by the one agent using this folder
    cursor                 "<segment> <offset>": everything before it was acknowledged
    00000000000000000007.seg  segments, named by a growing number

A segment starts with ``MAGIC`` and holds records framed as
``<u32 body length><u32 crc32(body)><body>`` (little endian), the body being
``<u32 samples><u16 id length><msg id utf-8><batch bytes>``. A segment is
sealed when it passes ``segment_bytes`` and a new one is started.

Guarantees and policies:

- **Order**: records come back in append order. Records handed out but not
  yet committed when the agent stops are handed out again at the next start
  (a replay; JetStream's duplicate window or ingest's idempotent writes absorb it).
- **Cap**: past ``max_bytes`` the oldest segment goes, whole; the samples of
  its records not yet handed out are added to ``dropped_samples`` exactly
  (records already handed out are in flight and are not lost). A single
  record larger than the cap is dropped and counted the same way.
- **Torn tail**: a record whose length runs past the end of its file or whose
  CRC does not match ends that segment; the bytes after it are skipped and
  counted in ``corrupt_bytes`` (their samples cannot be known), and at open
  the last segment is truncated there so new appends follow valid data.
- **fsync**: each record is written with one ``write`` (a process crash loses
  nothing written); the file is fsynced at most every ``fsync_interval``
  seconds on append, at seal and at close, so a power loss can lose up to
  ``fsync_interval`` of spooled batches. The cursor is rewritten (atomic
  rename) at most every ``fsync_interval`` seconds and at close, so a crash
  replays at most that much acknowledged data again.

Not thread-safe; the publisher calls it from its event loop. Calls do small
blocking file I/O (one write per record, reads of one record).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import SpoolCorrupt, SpoolError
from shared.log import get_logger

log = get_logger(__name__)

MAGIC = b"VGSPOOL1"
_FRAME = struct.Struct("<II")
_BODY_HEAD = struct.Struct("<IH")
_SUFFIX = ".seg"


@dataclass(slots=True)
class SpoolRecord:
    """One batch read back; hand ``ticket`` to ``commit`` once it is acknowledged."""

    msg_id: str
    payload: bytes
    samples: int
    ticket: int


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    size: int  # bytes of valid data, MAGIC included
    samples: int  # samples in all its valid records
    read_samples: int = 0  # samples of records handed out (or committed before open)
    sealed: bool = False


@dataclass(slots=True)
class _Ticket:
    seg: int
    end: int
    done: bool = False


class Spool:
    """See the module docstring. ``clock`` is monotonic seconds (injected for tests)."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int | None = None,
        fsync_interval: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 * 1024, max_bytes // 8)
        self.fsync_interval = fsync_interval
        self._clock = clock or time.monotonic
        self.dropped_samples = 0
        self.dropped_records = 0
        self.corrupt_bytes = 0
        self._segments: deque[_Segment] = deque()
        self._write_fd: int | None = None
        self._read_fd: tuple[int, int] | None = None  # (segment seq, fd)
        self._read: tuple[int, int] = (0, len(MAGIC))  # next record to hand out
        self._committed: tuple[int, int] = (0, len(MAGIC))
        self._tickets: deque[_Ticket] = deque()
        self._next_ticket = 0
        self._ticket_base = 0
        self._last_fsync = self._clock()
        self._last_cursor_write = self._clock()
        self._cursor_dirty = False
        self._lock_fd = self._open()

    # ------------------------------------------------------------------ opening

    def _open(self) -> int:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot open spool {self.dir}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock_fd)
            raise SpoolError(
                f"cannot open spool {self.dir}: another agent uses it ({exc.strerror or exc})"
            ) from exc
        cursor = self._load_cursor()
        paths = sorted(self.dir.glob("*" + _SUFFIX))
        for path in paths:
            try:
                seq = int(path.stem)
            except ValueError:
                continue
            if seq < cursor[0]:
                path.unlink()  # fully acknowledged before the last stop
                continue
            seg = self._scan(seq, path, truncate=path == paths[-1])
            if seq == cursor[0]:
                seg.read_samples = self._samples_before(seg, cursor[1])
            self._segments.append(seg)
        if self._segments:
            head = self._segments[0]
            start = cursor[1] if head.seq == cursor[0] else len(MAGIC)
            self._read = self._committed = (head.seq, min(start, head.size))
            for seg in list(self._segments)[:-1]:
                seg.sealed = True
        else:
            self._read = self._committed = (cursor[0], len(MAGIC))
        return lock_fd

    def _load_cursor(self) -> tuple[int, int]:
        try:
            seg, off = (self.dir / "cursor").read_text(encoding="ascii").split()
            return int(seg), int(off)
        except (OSError, ValueError):
            return (0, len(MAGIC))

    def _scan(self, seq: int, path: Path, *, truncate: bool) -> _Segment:
        data = path.read_bytes()
        seg = _Segment(seq, path, len(MAGIC), 0)
        if not data.startswith(MAGIC):
            self._corrupt(path, len(data), "bad header")
            path.write_bytes(MAGIC)
            return seg
        off = len(MAGIC)
        while off < len(data):
            try:
                end, samples = _frame_at(data, off)
            except SpoolCorrupt as exc:
                self._corrupt(path, len(data) - off, str(exc))
                if truncate:
                    with path.open("r+b") as f:
                        f.truncate(off)
                break
            seg.samples += samples
            off = end
        seg.size = off
        return seg

    def _samples_before(self, seg: _Segment, offset: int) -> int:
        data = seg.path.read_bytes()[:offset]
        off, total = len(MAGIC), 0
        while off < len(data):
            off, samples = _frame_at(data, off)
            total += samples
        return total

    def _corrupt(self, path: Path, nbytes: int, reason: str) -> None:
        self.corrupt_bytes += nbytes
        log.warning(
            "cannot read spool segment to its end, skipping the rest",
            path=str(path),
            skipped_bytes=nbytes,
            reason=reason,
        )

    # ------------------------------------------------------------------ state

    @property
    def pending_bytes(self) -> int:
        """Bytes of records not yet acknowledged (what the cap applies to)."""
        total = sum(s.size - len(MAGIC) for s in self._segments)
        if self._segments and self._segments[0].seq == self._committed[0]:
            total -= self._committed[1] - len(MAGIC)
        return max(total, 0)

    @property
    def unread(self) -> bool:
        """Whether records are waiting to be handed out."""
        for seg in self._segments:
            if seg.seq > self._read[0] or (seg.seq == self._read[0] and seg.size > self._read[1]):
                return True
        return False

    @property
    def empty(self) -> bool:
        """No record is waiting or in flight."""
        return not self.unread and not self._tickets

    # ------------------------------------------------------------------ writing

    def append(self, msg_id: str, payload: bytes, samples: int) -> None:
        ident = msg_id.encode()
        body = _BODY_HEAD.pack(samples, len(ident)) + ident + payload
        record = _FRAME.pack(len(body), zlib.crc32(body)) + body
        if len(record) > self.max_bytes:
            self._count_drop(samples, 1)
            log.error(
                "cannot spool batch: larger than the spool",
                msg_id=msg_id,
                bytes=len(record),
                max_bytes=self.max_bytes,
            )
            return
        while self._segments and self.pending_bytes + len(record) > self.max_bytes:
            self._drop_oldest()
        tail = self._segments[-1] if self._segments else None
        if tail is None or tail.sealed or tail.size + len(record) > self.segment_bytes:
            tail = self._new_segment()
        fd = self._writer(tail)
        try:
            os.write(fd, record)
        except OSError as exc:
            raise SpoolError(f"cannot write spool segment {tail.path}: {exc.strerror}") from exc
        tail.size += len(record)
        tail.samples += samples
        now = self._clock()
        if now - self._last_fsync >= self.fsync_interval:
            self._fsync()

    def _writer(self, seg: _Segment) -> int:
        if self._write_fd is None:
            self._write_fd = os.open(seg.path, os.O_WRONLY | os.O_APPEND)
        return self._write_fd

    def _new_segment(self) -> _Segment:
        if self._segments:
            self._seal(self._segments[-1])
            seq = self._segments[-1].seq + 1
        else:
            seq = max(self._read[0], self._committed[0]) + 1
        path = self.dir / f"{seq:020d}{_SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            os.write(fd, MAGIC)
        except OSError as exc:
            raise SpoolError(f"cannot create spool segment {path}: {exc.strerror}") from exc
        self._write_fd = fd
        seg = _Segment(seq, path, len(MAGIC), 0)
        if not self._segments:
            self._read = self._committed = (seq, len(MAGIC))
        self._segments.append(seg)
        return seg

    def _seal(self, seg: _Segment) -> None:
        if not seg.sealed:
            seg.sealed = True
            if self._write_fd is not None:
                os.fsync(self._write_fd)
                os.close(self._write_fd)
                self._write_fd = None

    def _fsync(self) -> None:
        if self._write_fd is not None:
            os.fsync(self._write_fd)
        self._last_fsync = self._clock()

    def _drop_oldest(self) -> None:
        seg = self._segments[0]
        if seg is self._segments[-1]:
            self._seal(seg)
        self._segments.popleft()
        self._count_drop(seg.samples - seg.read_samples, None)
        self._close_reader(seg.seq)
        seg.path.unlink(missing_ok=True)
        nxt = self._segments[0].seq if self._segments else seg.seq + 1
        if self._read[0] <= seg.seq:
            self._read = (nxt, len(MAGIC))
        if self._committed[0] <= seg.seq:
            self._committed = (nxt, len(MAGIC))
            self._cursor_dirty = True
        log.warning(
            "spool full, dropped its oldest segment",
            path=str(seg.path),
            dropped_samples=seg.samples - seg.read_samples,
            total_dropped_samples=self.dropped_samples,
        )

    def _count_drop(self, samples: int, records: int | None) -> None:
        self.dropped_samples += samples
        self.dropped_records += records or 0

    # ------------------------------------------------------------------ reading

    def read_next(self) -> SpoolRecord | None:
        """Hand out the oldest record not yet handed out, or None."""
        while self._segments:
            seg = self._find(self._read[0])
            if seg is None:
                later = [s for s in self._segments if s.seq > self._read[0]]
                if not later:
                    return None
                self._read = (later[0].seq, len(MAGIC))
                continue
            if self._read[1] >= seg.size:
                if not seg.sealed:
                    return None
                later = [s for s in self._segments if s.seq > seg.seq]
                if not later:
                    return None
                self._read = (later[0].seq, len(MAGIC))
                continue
            data = self._pread(seg, self._read[1])
            try:
                end, samples = _frame_at(data, 0)
            except SpoolCorrupt as exc:  # damaged after open: skip the rest of this segment
                self._corrupt(seg.path, seg.size - self._read[1], str(exc))
                seg.size = self._read[1]
                seg.sealed = True
                continue
            body = data[_FRAME.size : end]
            _samples, id_len = _BODY_HEAD.unpack_from(body)
            msg_id = body[_BODY_HEAD.size : _BODY_HEAD.size + id_len].decode()
            payload = body[_BODY_HEAD.size + id_len :]
            ticket = _Ticket(seg.seq, self._read[1] + end)
            self._tickets.append(ticket)
            self._read = (seg.seq, ticket.end)
            seg.read_samples += samples
            self._next_ticket += 1
            return SpoolRecord(msg_id, payload, samples, self._next_ticket - 1)
        return None

    def _find(self, seq: int) -> _Segment | None:
        for seg in self._segments:
            if seg.seq == seq:
                return seg
        return None

    def _pread(self, seg: _Segment, offset: int) -> bytes:
        if self._read_fd is None or self._read_fd[0] != seg.seq:
            self._close_reader(None)
            self._read_fd = (seg.seq, os.open(seg.path, os.O_RDONLY))
        fd = self._read_fd[1]
        head = os.pread(fd, _FRAME.size, offset)
        if len(head) < _FRAME.size:
            return head
        length, _crc = _FRAME.unpack(head)
        return head + os.pread(fd, min(length, seg.size - offset), offset + _FRAME.size)

    def _close_reader(self, seq: int | None) -> None:
        if self._read_fd is not None and (seq is None or self._read_fd[0] == seq):
            os.close(self._read_fd[1])
            self._read_fd = None

    def commit(self, ticket: int) -> None:
        """The record with ``ticket`` was acknowledged (or re-appended): it need not come back."""
        pos = ticket - self._ticket_base
        if 0 <= pos < len(self._tickets):
            self._tickets[pos].done = True
        while self._tickets and self._tickets[0].done:
            t = self._tickets.popleft()
            self._ticket_base += 1
            if (t.seg, t.end) > self._committed:
                self._committed = (t.seg, t.end)
                self._cursor_dirty = True
        self._release_consumed()
        if self._cursor_dirty and self._clock() - self._last_cursor_write >= self.fsync_interval:
            self._write_cursor()

    def _release_consumed(self) -> None:
        while self._segments:
            head = self._segments[0]
            if self._committed[0] > head.seq or (
                self._committed[0] == head.seq and self._committed[1] >= head.size
            ):
                if not head.sealed and (self._tickets or self.unread):
                    return
                self._seal(head)
                self._segments.popleft()
                self._close_reader(head.seq)
                head.path.unlink(missing_ok=True)
                nxt = self._segments[0].seq if self._segments else head.seq + 1
                self._committed = max(self._committed, (nxt, len(MAGIC)))
                self._read = max(self._read, (nxt, len(MAGIC)))
                self._cursor_dirty = True
            else:
                return

    def _write_cursor(self) -> None:
        tmp = self.dir / "cursor.tmp"
        try:
            tmp.write_text(f"{self._committed[0]} {self._committed[1]}\n", encoding="ascii")
            tmp.replace(self.dir / "cursor")
        except OSError as exc:
            raise SpoolError(f"cannot write spool cursor in {self.dir}: {exc.strerror}") from exc
        self._cursor_dirty = False
        self._last_cursor_write = self._clock()

    def close(self) -> None:
        """Flush, fsync, write the cursor and release the folder."""
        if self._write_fd is not None:
            os.fsync(self._write_fd)
            os.close(self._write_fd)
            self._write_fd = None
        self._close_reader(None)
        self._write_cursor()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


def _frame_at(data: bytes, off: int) -> tuple[int, int]:
    """(end offset, samples) of the record at ``off``; SpoolCorrupt if it is torn or damaged."""
    if off + _FRAME.size > len(data):
        raise SpoolCorrupt(f"record at byte {off}: truncated frame header")
    length, crc = _FRAME.unpack_from(data, off)
    start = off + _FRAME.size
    end = start + length
    if length < _BODY_HEAD.size or end > len(data):
        raise SpoolCorrupt(f"record at byte {off}: length {length} runs past the end")
    body = data[start:end]
    if zlib.crc32(body) != crc:
        raise SpoolCorrupt(f"record at byte {off}: CRC mismatch")
    samples, _id_len = _BODY_HEAD.unpack_from(body)
    return end, samples
