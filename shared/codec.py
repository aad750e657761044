"""The msgpack codec for ``shared.wire``: the only module that imports msgpack.

Metric batch, schema v1: one msgpack map with short keys::

    {"v": 1,                          # schema version (int)
     "a": "<agent id>",               # str, 1..128 characters
     "q": <seq>,                      # int, 0 <= seq < 2**63
     "s": [[name, {label: value}, type|nil, help|nil, unit|nil], ...],  # series table
     "i": <bin>,                      # series indexes, uint32 little-endian
     "t": <bin>,                      # timestamps, int64 little-endian, ms since the epoch
     "x": <bin>}                      # values, float64 little-endian

The three columns are raw little-endian bytes so that every float64 bit
pattern (NaN payloads, ±Inf, the staleness marker) survives, and so that
both ends copy arrays instead of looping over samples. Unknown keys are
ignored (a later v1 writer may add optional ones).

``decode_batch`` checks the byte size before unpacking, unpacks with msgpack
limits derived from ``DecodeLimits`` (no container or string larger than a
valid batch can hold; a header claiming a huge array fails before anything
is allocated for it; when msgpack trips one, the typed error of the limit
concerned is raised all the same), then checks every field and raises only
``DecodeError`` subclasses, with messages such as
``cannot decode batch: series 3 (node_x) label "fo-o": invalid label name``:

- empty label values are dropped (Prometheus: empty means absent); a label
  value longer than the limit, a name breaking Prometheus syntax, a label name
  starting ``__`` (reserved, ``__name__`` included) are rejected;
- the series table may name the same series twice (after dropping empty
  values two entries can coincide, and checking costs a sort per series):
  consumers key series by (name, labels), never by table position;
- a sample outside ``[now - max_past_skew, now + max_future_skew]`` rejects
  the whole batch (``TimestampOutOfRange``), as does any other fault: a batch
  is accepted whole or not at all.

Too many samples raises ``BatchTooLarge`` with ``reason="samples_per_batch"``.

``BatchDecoder`` answers as ``decode_batch`` does, but remembers the series
tables it validated, keyed by their encoded bytes: agents resend the same
table with every batch, so a consumer that keeps one (ingest) decodes and
checks only the header and the columns of a repeat.

Messages (``shared.wire.WireMessage`` subclasses) are msgpack maps of their
JSON form with Alertmanager's field names (``model_dump(mode="json",
by_alias=True)``), at most ``MAX_MESSAGE_BYTES`` (NATS' default payload limit).
"""

from __future__ import annotations

import re
import sys
from array import array
from collections import OrderedDict
from typing import Any, Final, TypeVar

import msgpack
from pydantic import ValidationError

from shared.errors import (
    BatchTooLarge,
    DecodeError,
    EncodeError,
    InvalidName,
    LabelTooLong,
    TimestampOutOfRange,
    TooManyLabels,
    TooManySeries,
    UnsupportedVersion,
)
from shared.wire import (
    LABEL_NAME_RE,
    METRIC_NAME_RE,
    METRIC_TYPES,
    WIRE_VERSION,
    DecodeLimits,
    MetricBatch,
    SeriesDesc,
    WireMessage,
)

MAX_AGENT_ID_LENGTH: Final = 128
MAX_SEQ: Final = 2**63 - 1  # fits PostgreSQL bigint
MAX_MESSAGE_BYTES: Final = 1024 * 1024
# Most entries in one list or map of a message (labels, fingerprints of a group).
_MESSAGE_MAX_ITEMS: Final = 65_536

# The wire is little-endian; a big-endian host swaps after copying.
_SWAP: Final = sys.byteorder != "little"
if array("I").itemsize != 4 or array("q").itemsize != 8 or array("d").itemsize != 8:
    raise ImportError("BUG: this platform's array('I'/'q'/'d') item sizes are not 4/8/8 bytes")

M = TypeVar("M", bound=WireMessage)

# msgpack reports a limit as "<n> exceeds max_<kind>_len(<limit>)"; when it
# trips on a batch, the typed error says which of our limits that was.
_MSGPACK_LIMIT = re.compile(r"(\d+) exceeds max_(str|bin|array|map|ext)_len")

_BATCH = "cannot decode batch"


# --------------------------------------------------------------------------- batches


def encode_batch(batch: MetricBatch) -> bytes:
    """Encode ``batch``; ``EncodeError`` if its columns disagree (a BUG of the producer)."""
    n = len(batch.values)
    if len(batch.series_index) != n or len(batch.timestamps_ms) != n:
        raise EncodeError(
            f"BUG: cannot encode batch {batch.msg_id}: columns have "
            f"{len(batch.series_index)}/{len(batch.timestamps_ms)}/{n} entries"
        )
    index, ts, values = batch.series_index, batch.timestamps_ms, batch.values
    if (index.typecode, ts.typecode, values.typecode) != ("I", "q", "d"):
        raise EncodeError(f"BUG: cannot encode batch {batch.msg_id}: columns are not I/q/d arrays")
    if _SWAP:
        index, ts, values = _swapped(index), _swapped(ts), _swapped(values)
    doc = {
        "v": WIRE_VERSION,
        "a": batch.agent_id,
        "q": batch.seq,
        "s": [(d.name, d.labels, d.type, d.help, d.unit) for d in batch.series],
        "i": index.tobytes(),
        "t": ts.tobytes(),
        "x": values.tobytes(),
    }
    try:
        return msgpack.packb(doc, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"BUG: cannot encode batch {batch.msg_id}: {exc}") from exc


def decode_batch(data: bytes, *, limits: DecodeLimits, now_ms: int) -> MetricBatch:
    """Decode and validate one batch; ``now_ms`` is the decoder's clock (ms since the epoch).

    Raises only ``DecodeError`` subclasses (see the module docstring).
    """
    _check_size(data, limits)
    doc = _unpack_batch(data, limits)
    if type(doc) is not dict:
        raise DecodeError(f"{_BATCH}: not a map")
    agent_id, seq = _check_header(doc)
    table = _field(doc, "s", list, "series table")
    if len(table) > limits.max_series_per_batch:
        raise TooManySeries(f"{_BATCH}: {len(table)} series, limit {limits.max_series_per_batch}")
    series = _SeriesChecker(limits).check_table(table)
    return _with_columns(doc, agent_id, seq, series, limits=limits, now_ms=now_ms)


def _check_size(data: bytes, limits: DecodeLimits) -> None:
    if len(data) > limits.max_batch_bytes:
        raise BatchTooLarge(f"{_BATCH}: {len(data)} bytes, limit {limits.max_batch_bytes}")


def _check_header(doc: dict[str, Any]) -> tuple[str, int]:
    """Version, agent id and sequence of an unpacked batch, in that order of checking."""
    version = doc.get("v")
    if type(version) is not int:
        raise DecodeError(f"{_BATCH}: field v (version) is missing or not an integer")
    if version != WIRE_VERSION:
        raise UnsupportedVersion(f"{_BATCH}: schema version {version}, this build reads 1")
    agent_id = _field(doc, "a", str, "agent id")
    if not 0 < len(agent_id) <= MAX_AGENT_ID_LENGTH:
        raise DecodeError(f"{_BATCH}: agent id must have 1..{MAX_AGENT_ID_LENGTH} characters")
    seq = _field(doc, "q", int, "sequence")
    if not 0 <= seq <= MAX_SEQ:
        raise DecodeError(f"{_BATCH}: sequence {seq} outside 0..2**63-1")
    return agent_id, seq


def _with_columns(
    doc: dict[str, Any],
    agent_id: str,
    seq: int,
    series: list[SeriesDesc],
    *,
    limits: DecodeLimits,
    now_ms: int,
) -> MetricBatch:
    """The batch of a checked header and series table, once its columns pass their checks."""
    raw_index = _field(doc, "i", bytes, "series indexes")
    raw_ts = _field(doc, "t", bytes, "timestamps")
    raw_values = _field(doc, "x", bytes, "values")
    n, rest = divmod(len(raw_values), 8)
    if rest or len(raw_ts) != 8 * n or len(raw_index) != 4 * n:
        raise DecodeError(
            f"{_BATCH}: column byte lengths {len(raw_index)}/{len(raw_ts)}/{len(raw_values)} "
            "are not 4n/8n/8n for one sample count n"
        )
    index: array[int] = array("I")
    index.frombytes(raw_index)
    ts: array[int] = array("q")
    ts.frombytes(raw_ts)
    values: array[float] = array("d")
    values.frombytes(raw_values)
    if _SWAP:
        index.byteswap()
        ts.byteswap()
        values.byteswap()
    _check_columns(len(series), index, ts, values, limits=limits, now_ms=now_ms)
    return MetricBatch(agent_id, seq, series, index, ts, values)


def validate_batch(batch: MetricBatch, *, limits: DecodeLimits, now_ms: int) -> None:
    """Run the decoder's checks on an in-memory batch (a producer's early warning).

    Everything but the byte size is checked; raises what ``decode_batch`` would.
    """
    if len(batch.series) > limits.max_series_per_batch:
        raise TooManySeries(
            f"{_BATCH}: {len(batch.series)} series, limit {limits.max_series_per_batch}"
        )
    checker = _SeriesChecker(limits)
    checker.check_table([[d.name, d.labels, d.type, d.help, d.unit] for d in batch.series])
    if not (len(batch.series_index) == len(batch.timestamps_ms) == len(batch.values)):
        raise DecodeError(f"{_BATCH}: columns have different lengths")
    _check_columns(
        len(batch.series),
        batch.series_index,
        batch.timestamps_ms,
        batch.values,
        limits=limits,
        now_ms=now_ms,
    )


class BatchDecoder:
    """``decode_batch`` that remembers validated series tables by their encoded bytes.

    An agent sends the same series table with every batch (only the columns
    change), and decoding and validating that table is most of a decode's
    cost. ``decode`` first walks the top-level map without decoding the
    table (msgpack ``skip``), which yields the exact bytes of the table's
    encoding; when those bytes equal a table this decoder validated before,
    only the header and the columns are decoded and checked. Otherwise, or
    when the walk finds anything unusual (not a map, a repeated key, bytes
    after the map, any unpacking error), the batch goes through
    ``decode_batch`` as is, so every rejection has the same error and
    message; a batch it accepts has its table remembered.

    Sound because a table's validation depends only on its bytes and the
    limits, which are fixed per decoder; the check of the columns against
    the table needs only its length. Batches decoded from one remembered
    table share its ``series`` list and ``SeriesDesc`` objects (treat them
    as read-only) and carry its bytes as ``MetricBatch.series_key``.

    Bounded: least recently used tables are dropped while the tables held
    count more than ``max_series`` series in all. Not thread-safe.
    """

    __slots__ = ("_held", "_limits", "_max_series", "_options", "_tables", "hits", "misses")

    def __init__(self, limits: DecodeLimits, *, max_series: int) -> None:
        if max_series < 1:
            raise ValueError(f"cannot size the series-table cache to {max_series} series")
        self._limits = limits
        self._max_series = max_series
        self._options = _unpack_options(limits)
        self._tables: OrderedDict[bytes, tuple[bytes, list[SeriesDesc]]] = OrderedDict()
        self._held = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        """Number of tables held."""
        return len(self._tables)

    @property
    def series_held(self) -> int:
        return self._held

    def decode(self, data: bytes, *, now_ms: int) -> MetricBatch:
        """What ``decode_batch(data, limits=..., now_ms=now_ms)`` returns or raises."""
        limits = self._limits
        _check_size(data, limits)
        walked = self._walk(data)
        if walked is None:
            return decode_batch(data, limits=limits, now_ms=now_ms)
        doc, span = walked
        found = self._tables.get(span)
        if found is None:
            self.misses += 1
            batch = decode_batch(data, limits=limits, now_ms=now_ms)
            batch.series_key = self._remember(span, batch.series)
            return batch
        self.hits += 1
        self._tables.move_to_end(span)
        key, series = found
        agent_id, seq = _check_header(doc)
        batch = _with_columns(doc, agent_id, seq, series, limits=limits, now_ms=now_ms)
        batch.series_key = key
        return batch

    def _walk(self, data: bytes) -> tuple[dict[str, Any], bytes] | None:
        """The top-level fields but the table, and the table's bytes; ``None``: take the slow path."""
        unpacker = msgpack.Unpacker(max_buffer_size=max(len(data), 1), **self._options)
        try:
            unpacker.feed(data)
            doc: dict[str, Any] = {}
            span = None
            entries = unpacker.read_map_header()
            if entries > self._options["max_map_len"]:  # unpackb would refuse it
                return None
            for _ in range(entries):
                key = unpacker.unpack()
                if type(key) is not str or key in doc:
                    return None
                if key == "s":
                    start = unpacker.tell()
                    unpacker.skip()
                    span = bytes(data[start : unpacker.tell()])
                    doc[key] = None
                else:
                    doc[key] = unpacker.unpack()
            if span is None or unpacker.tell() != len(data):
                return None
        except Exception:  # noqa: BLE001 - whatever went wrong, decode_batch names it
            return None
        return doc, span

    def _remember(self, span: bytes, series: list[SeriesDesc]) -> bytes | None:
        size = max(len(series), 1)
        if size > self._max_series:
            return None
        tables = self._tables
        while tables and self._held + size > self._max_series:
            _, (_, dropped) = tables.popitem(last=False)
            self._held -= max(len(dropped), 1)
        tables[span] = (span, series)
        self._held += size
        return span


def _unpack_options(limits: DecodeLimits) -> dict[str, Any]:
    # Each limit is the largest legitimate size, so hostile headers fail early.
    return {
        "raw": False,
        "strict_map_key": True,
        "use_list": True,
        "max_str_len": 4 * max(limits.max_label_value_length, limits.max_label_name_length),
        "max_bin_len": 8 * limits.max_samples_per_batch,
        "max_array_len": max(limits.max_series_per_batch, 5),
        "max_map_len": max(limits.max_labels_per_series, 7),
        "max_ext_len": 0,
    }


def _unpack_batch(data: bytes, limits: DecodeLimits) -> object:
    try:
        return msgpack.unpackb(data, **_unpack_options(limits))
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise _typed_unpack_error(exc, limits) from exc


def _typed_unpack_error(exc: Exception, limits: DecodeLimits) -> DecodeError:
    match = _MSGPACK_LIMIT.match(str(exc))
    if match is None:
        return DecodeError(f"{_BATCH}: not valid msgpack: {type(exc).__name__}: {exc}"[:300])
    size, kind = int(match.group(1)), match.group(2)
    if kind == "array":
        return TooManySeries(
            f"{_BATCH}: an array of {size} entries, limit {limits.max_series_per_batch} series"
        )
    if kind == "map":
        return TooManyLabels(
            f"{_BATCH}: a map of {size} entries, limit {limits.max_labels_per_series} labels"
        )
    if kind == "str":
        return LabelTooLong(
            f"{_BATCH}: a string of {size} bytes, longer than any label value may be "
            f"({limits.max_label_value_length} characters)"
        )
    if kind == "bin":
        return BatchTooLarge(
            f"{_BATCH}: a column of {size} bytes, more than {limits.max_samples_per_batch} samples",
            reason="samples_per_batch",
        )
    return DecodeError(f"{_BATCH}: msgpack extension types are not used")


def _field(doc: dict[str, Any], key: str, kind: type[Any], what: str) -> Any:
    value = doc.get(key)
    # type() rather than isinstance: msgpack gives exact types, and bool is an int.
    if type(value) is not kind:
        raise DecodeError(f"{_BATCH}: field {key} ({what}) is missing or not {kind.__name__}")
    return value


class _SeriesChecker:
    """Validates series-table entries, remembering names already found valid in this batch."""

    __slots__ = ("_labels", "_limits", "_metrics")

    def __init__(self, limits: DecodeLimits) -> None:
        self._limits = limits
        self._metrics: set[str] = set()
        self._labels: set[str] = set()

    def check_table(self, table: list[Any]) -> list[SeriesDesc]:
        # One flat loop with locals, no helper call per series: this runs once
        # per series and is most of a decode's cost.
        limits = self._limits
        max_labels = limits.max_labels_per_series
        max_value = limits.max_label_value_length
        metrics, labels_ok = self._metrics, self._labels
        out: list[SeriesDesc] = []
        for pos, entry in enumerate(table):
            if type(entry) is not list or len(entry) != 5:
                raise DecodeError(f"{_BATCH}: series {pos}: not a 5-element array")
            name, labels, mtype, help_, unit = entry
            if type(name) is not str or name not in metrics:
                self._check_metric_name(pos, name)
            if type(labels) is not dict:
                raise DecodeError(f"{_BATCH}: {_s(pos, name)}: labels are not a map")
            if len(labels) > max_labels:
                raise TooManyLabels(
                    f"{_BATCH}: {_s(pos, name)}: {len(labels)} labels, limit {max_labels}"
                )
            has_empty = False
            for key, value in labels.items():
                if key not in labels_ok:
                    self._check_label_name(pos, name, key)
                # One test for the common case; the rare ones are sorted out inside.
                if type(value) is not str or not 0 < len(value) <= max_value:
                    if value != "":
                        self._reject_label_value(pos, name, key, value)
                    has_empty = True
            if has_empty:
                labels = {k: v for k, v in labels.items() if v}
            # Producers send metadata once per metric name, so most entries stop here.
            if mtype is not None or help_ is not None or unit is not None:
                self._check_metadata(pos, name, mtype, help_, unit)
            out.append(SeriesDesc(name, labels, mtype, help_, unit))
        return out

    def _reject_label_value(self, pos: int, name: str, key: str, value: object) -> None:
        where = f"{_BATCH}: {_s(pos, name)} label {_q(key)}"
        if type(value) is not str:
            raise DecodeError(f"{where}: value is not a string")
        limit = self._limits.max_label_value_length
        raise LabelTooLong(f"{where}: value of {len(value)} characters, limit {limit}")

    def _check_metadata(
        self, pos: int, name: str, mtype: object, help_: object, unit: object
    ) -> None:
        if mtype is not None and (type(mtype) is not str or mtype not in METRIC_TYPES):
            raise DecodeError(f"{_BATCH}: {_s(pos, name)}: unknown type {_q(mtype)}")
        if help_ is not None and type(help_) is not str:
            raise DecodeError(f"{_BATCH}: {_s(pos, name)}: help is not a string")
        if unit is not None and type(unit) is not str:
            raise DecodeError(f"{_BATCH}: {_s(pos, name)}: unit is not a string")

    def _check_metric_name(self, pos: int, name: object) -> None:
        if type(name) is not str:
            raise DecodeError(f"{_BATCH}: series {pos}: metric name is not a string")
        limit = self._limits.max_label_value_length
        if len(name) > limit:
            raise LabelTooLong(
                f"{_BATCH}: series {pos} metric name {_q(name)}: {len(name)} characters, "
                f"limit {limit}"
            )
        if not METRIC_NAME_RE.fullmatch(name):
            raise InvalidName(f"{_BATCH}: series {pos} metric name {_q(name)}: invalid name")
        self._metrics.add(name)

    def _check_label_name(self, pos: int, metric: str, key: object) -> None:
        where = f"{_BATCH}: series {pos} ({metric}) label {_q(key)}"
        if type(key) is not str:
            raise DecodeError(f"{where}: label name is not a string")
        limit = self._limits.max_label_name_length
        if len(key) > limit:
            raise LabelTooLong(f"{where}: name of {len(key)} characters, limit {limit}")
        if not LABEL_NAME_RE.fullmatch(key):
            raise InvalidName(f"{where}: invalid label name")
        if key.startswith("__"):
            raise InvalidName(f"{where}: label names starting with __ are reserved")
        self._labels.add(key)


def _check_columns(
    n_series: int,
    index: array[int],
    ts: array[int],
    values: array[float],
    *,
    limits: DecodeLimits,
    now_ms: int,
) -> None:
    n = len(values)
    if n > limits.max_samples_per_batch:
        raise BatchTooLarge(
            f"{_BATCH}: {n} samples, limit {limits.max_samples_per_batch}",
            reason="samples_per_batch",
        )
    if not n:
        return
    if max(index) >= n_series:
        k = next(k for k, i in enumerate(index) if i >= n_series)
        raise DecodeError(
            f"{_BATCH}: sample {k} refers to series {index[k]}, the table has {n_series}"
        )
    low = now_ms - 1000 * limits.max_past_skew_seconds
    high = now_ms + 1000 * limits.max_future_skew_seconds
    if min(ts) < low or max(ts) > high:
        k = next(k for k, t in enumerate(ts) if not low <= t <= high)
        raise TimestampOutOfRange(
            f"{_BATCH}: sample {k} timestamp {ts[k]} ms is {(ts[k] - now_ms) / 1000:+.3f} s "
            f"from now, allowed -{limits.max_past_skew_seconds} s..+"
            f"{limits.max_future_skew_seconds} s"
        )


def _swapped(column: array[Any]) -> array[Any]:
    copy = array(column.typecode, column)
    copy.byteswap()
    return copy


def _s(pos: int, name: str) -> str:
    return f"series {pos} ({name[:64]})"


def _q(text: object, limit: int = 64) -> str:
    """Quote a name for an error message, cut short: hostile names can be long."""
    shown = text if isinstance(text, str) else repr(text)
    cut = shown[:limit] + "..." if len(shown) > limit else shown
    return '"' + cut.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -------------------------------------------------------------------------- messages


def encode_message(message: WireMessage) -> bytes:
    """Encode one message as msgpack of its JSON form with Alertmanager's field names."""
    try:
        return msgpack.packb(  # type: ignore[no-any-return]
            message.model_dump(mode="json", by_alias=True), use_bin_type=True
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"BUG: cannot encode {type(message).__name__}: {exc}") from exc


def decode_message(data: bytes, model_cls: type[M], *, max_bytes: int = MAX_MESSAGE_BYTES) -> M:
    """Decode one message of type ``model_cls``; raises only ``DecodeError`` subclasses."""
    what = f"cannot decode {model_cls.__name__}"
    if len(data) > max_bytes:
        raise BatchTooLarge(f"{what}: {len(data)} bytes, limit {max_bytes}")
    try:
        doc = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_array_len=_MESSAGE_MAX_ITEMS,
            max_map_len=_MESSAGE_MAX_ITEMS,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"{what}: not valid msgpack: {type(exc).__name__}: {exc}"[:300]) from exc
    if type(doc) is not dict:
        raise DecodeError(f"{what}: not a map")
    version = doc.get("v")
    if type(version) is not int:
        raise DecodeError(f"{what}: field v (version) is missing or not an integer")
    if version != WIRE_VERSION:
        raise UnsupportedVersion(f"{what}: schema version {version}, this build reads 1")
    try:
        return model_cls.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"]) or "(message)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise DecodeError(f"{what}: field {loc}: {first['msg']}{more}"[:500]) from exc
