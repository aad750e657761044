"""Wire schema v1: every message on NATS, and the names of subjects, streams and buckets.

This module defines *what* travels; ``shared.codec`` (the only msgpack user)
defines the bytes. Contracts:

Names
    ``Names(prefix)`` derives every subject, stream and KV bucket from one
    prefix (``vigil`` by default) so several tenants can share one NATS.
    Host names, alert group keys and receiver names become subject tokens
    through ``shared.hosttoken``; consumers take the host from the subject
    (``Names.host_from_metrics_subject``), never from a payload.

Metric batches (the hot path: plain slotted dataclasses, no pydantic)
    ``MetricBatch`` is columnar: a per-batch series table and three parallel
    arrays, sample ``k`` being ``(series[series_index[k]], timestamps_ms[k],
    values[k])``. Timestamps are milliseconds since the Unix epoch (int64),
    values any float64, NaN payloads, ±Inf and ``STALE_NAN`` included, bit
    for bit. Label maps never contain ``__name__`` (the metric name is its own
    field) nor empty values (empty means absent, as in Prometheus: the builder
    and the decoder drop them). The series table of a decoded batch may hold
    the same series twice (see ``shared.codec``): key series by
    ``(name, labels)``, not by index. A decoded batch belongs to the caller.
    Publishers send it with ``Nats-Msg-Id`` = ``MetricBatch.msg_id``.

Messages (pydantic, Alertmanager's JSON field names where Alertmanager has one)
    ``AlertEvent``, ``AlertStatus``, ``Silence``/``SilenceEvent`` and
    ``NotificationResult`` all carry ``v`` (``WIRE_VERSION``). Datetimes are
    timezone-aware and normalised to UTC. Unknown fields are ignored so a
    later v1 writer may add optional fields; anything else is a new version.

``DecodeLimits`` bounds what a decoder accepts; the config embeds it.
"""

from __future__ import annotations

import re
import struct
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import isnan
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared import hosttoken
from shared.errors import DecodeError

WIRE_VERSION: Final = 1

# --------------------------------------------------------------------------- names

_STREAM_UNSAFE = re.compile(r"[^A-Z0-9_]")
_BUCKET_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class Names:
    """Subjects, stream names and KV bucket names under one prefix.

    The prefix is one NATS subject token of printable ASCII (no ``.``, ``*``,
    ``>``, whitespace, and no leading ``$``, which NATS reserves for its own
    subjects). Streams use the prefix upper-cased and buckets the prefix as
    is, each with characters outside their alphabet (``[A-Z0-9_]``, and
    ``[A-Za-z0-9_-]``) mapped to ``_``; two prefixes that differ only there
    share streams and buckets, so pick prefixes from ``[a-z0-9_]``.
    """

    prefix: str = "vigil"

    def __post_init__(self) -> None:
        bad = (
            not self.prefix
            or self.prefix.startswith("$")
            or any(not ("!" <= c <= "~") or c in ".*>" for c in self.prefix)
        )
        if bad:
            raise ValueError(
                f"cannot use subject prefix {self.prefix!r}: it must be one subject token of "
                "printable ASCII without '.', '*', '>' or a leading '$'"
            )

    # Subjects -------------------------------------------------------------
    def metrics(self, host: str) -> str:
        """Subject an agent on ``host`` publishes its batches to."""
        return f"{self.prefix}.metrics.{hosttoken.encode(host)}"

    @property
    def metrics_wildcard(self) -> str:
        return f"{self.prefix}.metrics.*"

    def host_from_metrics_subject(self, subject: str) -> str:
        """The host a metrics subject speaks for; ``DecodeError(reason="subject")`` if foreign."""
        head = f"{self.prefix}.metrics."
        if not subject.startswith(head):
            raise DecodeError(
                f"cannot decode host from subject {subject[:200]!r}: not under {head}*",
                reason="subject",
            )
        return hosttoken.decode(subject[len(head) :])

    def alerts(self, group: str) -> str:
        """Subject for the alert events of one alert group (any non-empty name)."""
        return f"{self.prefix}.alerts.{hosttoken.encode(group)}"

    @property
    def alerts_wildcard(self) -> str:
        return f"{self.prefix}.alerts.*"

    @property
    def alertstatus(self) -> str:
        return f"{self.prefix}.alertstatus"

    def notifications(self, receiver: str) -> str:
        """Subject for the delivery results of one receiver (any non-empty name)."""
        return f"{self.prefix}.notifications.{hosttoken.encode(receiver)}"

    @property
    def notifications_wildcard(self) -> str:
        return f"{self.prefix}.notifications.*"

    @property
    def silences(self) -> str:
        return f"{self.prefix}.silences"

    # JetStream streams ----------------------------------------------------
    def _stream(self, what: str) -> str:
        return f"{_STREAM_UNSAFE.sub('_', self.prefix.upper())}_{what}"

    @property
    def stream_metrics(self) -> str:
        return self._stream("METRICS")

    @property
    def stream_alerts(self) -> str:
        return self._stream("ALERTS")

    @property
    def stream_notifications(self) -> str:
        return self._stream("NOTIFICATIONS")

    @property
    def stream_silences(self) -> str:
        return self._stream("SILENCES")

    # KV buckets (NATS stores bucket B as stream KV_B: no clash with the above)
    def _bucket(self, what: str) -> str:
        return f"{_BUCKET_UNSAFE.sub('_', self.prefix)}_{what}"

    @property
    def kv_silences(self) -> str:
        return self._bucket("silences")

    @property
    def kv_alert_state(self) -> str:
        """Bucket of the alerter's state: alert states, and rule-group status documents
        under keys starting with ``RULE_STATUS_PREFIX`` (a dot no host token holds)."""
        return self._bucket("alert_state")

    @property
    def kv_agents(self) -> str:
        """Bucket of agents; its keys are host tokens (``shared.hosttoken`` is KV-safe)."""
        return self._bucket("agents")

    @property
    def kv_nflog(self) -> str:
        return self._bucket("nflog")


DEFAULT_NAMES: Final = Names()

RULE_STATUS_PREFIX: Final = "rules."
"""Key prefix of the rule groups' status documents in ``Names.kv_alert_state``."""

# ----------------------------------------------------------------- staleness marker

STALE_NAN_BITS: Final = 0x7FF0000000000002
"""Prometheus' staleness marker: a signalling NaN with this exact bit pattern."""
_STALE_BYTES: Final = struct.pack("<Q", STALE_NAN_BITS)
STALE_NAN: Final[float] = struct.unpack("<d", _STALE_BYTES)[0]
_pack_double = struct.Struct("<d").pack


def is_stale(value: float) -> bool:
    """True only for the staleness marker's exact bits (any other NaN is a plain NaN)."""
    # The byte comparison alone decides; math.isnan first keeps most samples cheap.
    return isnan(value) and _pack_double(value) == _STALE_BYTES


# --------------------------------------------------------------------- metric batch

METRIC_NAME_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
"""Prometheus metric name syntax (use with ``fullmatch``)."""
LABEL_NAME_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
"""Prometheus label name syntax (use with ``fullmatch``); names starting ``__`` are reserved."""

MetricType = Literal[
    "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"
]
METRIC_TYPES: Final[frozenset[str]] = frozenset(
    ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown")
)


@dataclass(slots=True)
class SeriesDesc:
    """One series of a batch: metric name, labels (no ``__name__``, no empty values), metadata.

    ``type``, ``help`` and ``unit`` describe the metric name; producers send
    them on one series per name and batch (``BatchBuilder``), so ``None``
    here means "not said in this entry", not "untyped".
    """

    name: str
    labels: dict[str, str]
    type: MetricType | None = None
    help: str | None = None
    unit: str | None = None


@dataclass(slots=True)
class MetricBatch:
    """A columnar batch of samples from one agent process.

    ``agent_id`` is random per agent process (kept with its spool) and ``seq``
    (>= 0) counts that process' batches; together they are the JetStream
    de-duplication id. The host is not in the batch: it is the subject's.
    The three arrays have one entry per sample: ``series_index`` ('I', an
    index into ``series``), ``timestamps_ms`` ('q', ms since the epoch) and
    ``values`` ('d').

    ``series_key`` is in-memory only, never on the wire: set by
    ``shared.codec.BatchDecoder`` to the encoded bytes of the series table
    when it came from the decoder's cache of validated tables. Batches with
    equal keys share one ``series`` list (read-only), so a consumer may key
    its own per-table work by it; ``None`` means "no such identity".
    """

    agent_id: str
    seq: int
    series: list[SeriesDesc]
    series_index: array[int] = field(default_factory=lambda: array("I"))
    timestamps_ms: array[int] = field(default_factory=lambda: array("q"))
    values: array[float] = field(default_factory=lambda: array("d"))
    series_key: bytes | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.values)

    @property
    def msg_id(self) -> str:
        """The ``Nats-Msg-Id`` to publish this batch with."""
        return f"{self.agent_id}:{self.seq}"

    def samples(self) -> Iterator[tuple[SeriesDesc, int, float]]:
        """Each sample as ``(series, timestamp_ms, value)``, in batch order."""
        series = self.series
        for pos, ts, value in zip(self.series_index, self.timestamps_ms, self.values, strict=True):
            yield series[pos], ts, value


class BatchBuilder:
    """Collects samples into a ``MetricBatch``, one series-table entry per distinct series.

    Series are keyed by (name, label set) after empty label values are
    dropped. Metadata (type, help, unit) describes a metric name, as in
    Prometheus, so the builder sends it once per name and batch: on the
    series of the first ``add`` that gives any, later ``add`` calls filling
    only what is still missing. That keeps a node_cpu_seconds_total help text
    from travelling 256 times. No validation happens here: producers that take
    names from users call ``shared.codec.validate_batch`` before sending.
    ``build`` hands the collected data to the batch and leaves the builder empty.
    """

    __slots__ = ("_index", "_keys", "_meta", "_series", "_size", "_ts", "_values")

    # Upper bound of the msgpack envelope around the columns, agent id excluded.
    _ENVELOPE_BYTES = 64

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._series: list[SeriesDesc] = []
        self._keys: dict[tuple[str, frozenset[tuple[str, str]]], int] = {}
        self._meta: dict[str, SeriesDesc] = {}  # metric name -> the series carrying its metadata
        self._index: array[int] = array("I")
        self._ts: array[int] = array("q")
        self._values: array[float] = array("d")
        self._size = self._ENVELOPE_BYTES

    def add(
        self,
        name: str,
        labels: Mapping[str, str],
        ts_ms: int,
        value: float,
        *,
        type: MetricType | None = None,
        help: str | None = None,
        unit: str | None = None,
    ) -> int:
        """Append one sample; return the index of its series in the table."""
        clean = dict(labels)  # a copy: the caller may reuse its dict
        if "" in clean.values():
            clean = {k: v for k, v in clean.items() if v}
        key = (name, frozenset(clean.items()))  # cheaper than sorting, same identity
        pos = self._keys.get(key)
        if pos is None:
            pos = len(self._series)
            self._keys[key] = pos
            self._series.append(SeriesDesc(name, clean))
            self._size += _series_bytes(name, clean)
        if type is not None or help is not None or unit is not None:
            self._add_metadata(name, pos, type, help, unit)
        self._index.append(pos)
        self._ts.append(ts_ms)
        self._values.append(value)
        self._size += 20
        return pos

    def _add_metadata(
        self, name: str, pos: int, type_: MetricType | None, help_: str | None, unit: str | None
    ) -> None:
        desc = self._meta.setdefault(name, self._series[pos])
        # Each text replaces a 1-byte nil with at most a 5-byte header and its UTF-8.
        if desc.type is None and type_ is not None:
            desc.type = type_
            self._size += len(type_) + 4
        if desc.help is None and help_ is not None:
            desc.help = help_
            self._size += len(help_.encode()) + 4
        if desc.unit is None and unit is not None:
            desc.unit = unit
            self._size += len(unit.encode()) + 4

    def __len__(self) -> int:
        """Number of samples added since the last ``build``."""
        return len(self._values)

    @property
    def series_count(self) -> int:
        return len(self._series)

    @property
    def approx_bytes(self) -> int:
        """Upper bound of the encoded size, agent id excluded (compare with ``max_batch_bytes``)."""
        return self._size

    def build(self, agent_id: str, seq: int) -> MetricBatch:
        batch = MetricBatch(agent_id, seq, self._series, self._index, self._ts, self._values)
        self._reset()  # the batch owns the old containers now
        return batch


def _series_bytes(name: str, labels: dict[str, str]) -> int:
    # msgpack headers are at most 5 bytes: entry array, name, label map; 3 nils of metadata.
    size = 5 + len(name.encode()) + 5 + 5 + 3
    for k, v in labels.items():
        size += len(k.encode()) + len(v.encode()) + 10
    return size


class DecodeLimits(BaseModel):
    """What a decoder accepts from the bus; beyond it, a typed ``DecodeError`` rejects."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_batch_bytes: int = Field(
        4 * 1024 * 1024,
        gt=0,
        description="Largest encoded batch in bytes, checked before unpacking. NATS' own "
        "max_payload (1 MiB by default) may be lower.",
    )
    max_series_per_batch: int = Field(
        20_000, gt=0, description="Most entries in one batch's series table."
    )
    max_samples_per_batch: int = Field(200_000, gt=0, description="Most samples in one batch.")
    max_labels_per_series: int = Field(
        64, gt=0, description="Most labels on one series, the metric name not counted."
    )
    max_label_name_length: int = Field(256, gt=0, description="Longest label name, in characters.")
    max_label_value_length: int = Field(
        4096,
        gt=0,
        description="Longest label value or metric name, in characters (Unicode code points).",
    )
    max_past_skew_seconds: int = Field(
        7 * 86400,
        ge=0,
        description="How far before the decoder's clock a sample may lie, in seconds. Generous "
        "because agents replay their disk spool after an outage.",
    )
    max_future_skew_seconds: int = Field(
        600, ge=0, description="How far after the decoder's clock a sample may lie, in seconds."
    )


# ------------------------------------------------------------------------ fingerprint

_FNV64_OFFSET: Final = 0xCBF29CE484222325
_FNV64_PRIME: Final = 0x100000001B3
_U64: Final = 0xFFFFFFFFFFFFFFFF
_FINGERPRINT_RE: Final = r"^[0-9a-f]{16}$"


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's alert fingerprint: prometheus/common ``LabelSet.Fingerprint()`` as ``%016x``.

    FNV-1a 64 over, for each label name in sorted order, the name's UTF-8
    bytes, 0xFF, the value's UTF-8 bytes, 0xFF. Python's code-point order of
    ``str`` equals Go's byte order of UTF-8 strings, so the sort agrees.
    """
    h = _FNV64_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8"):
                h = ((h ^ byte) * _FNV64_PRIME) & _U64
            h = ((h ^ 0xFF) * _FNV64_PRIME) & _U64
    return f"{h:016x}"


# --------------------------------------------------------------------------- messages


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDateTime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
"""A timezone-aware datetime, normalised to UTC; naive datetimes are rejected."""
Fingerprint = Annotated[str, Field(pattern=_FINGERPRINT_RE)]


class WireMessage(BaseModel):
    """Base of every pydantic message on the bus (immutable, versioned)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    v: int = WIRE_VERSION


class AlertEvent(WireMessage):
    """Alertmanager's alert: published by the alerter (and web) on ``<prefix>.alerts.<group>``.

    ``fingerprint`` is computed from ``labels`` when left out, and rejected
    when given but different, so every reader can trust it for de-duplication.
    """

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: UtcDateTime = Field(alias="startsAt")
    ends_at: UtcDateTime = Field(alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = ""
    status: Literal["firing", "resolved"]

    @model_validator(mode="after")
    def _check_fingerprint(self) -> AlertEvent:
        expected = fingerprint(self.labels)
        if not self.fingerprint:
            # Frozen model: set the derived field once, during validation.
            object.__setattr__(self, "fingerprint", expected)
        elif self.fingerprint != expected:
            raise ValueError(
                f"fingerprint {self.fingerprint[:40]!r} does not match the labels' {expected!r}"
            )
        return self


class AlertStatus(WireMessage):
    """What the notifier did with one alert; published on ``<prefix>.alertstatus``."""

    fingerprint: Fingerprint
    state: Literal["unprocessed", "active", "suppressed"]
    silenced_by: list[str] = Field(default_factory=list, alias="silencedBy")
    inhibited_by: list[str] = Field(default_factory=list, alias="inhibitedBy")
    notified_at: UtcDateTime | None = None
    receivers: list[str] = Field(default_factory=list)
    at: UtcDateTime


class Matcher(BaseModel):
    """An Alertmanager API v2 matcher (``isRegex`` uses RE2 syntax, checked by the notifier)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    name: str = Field(min_length=1)
    value: str
    is_regex: bool = Field(False, alias="isRegex")
    is_equal: bool = Field(True, alias="isEqual")


class Silence(WireMessage):
    """A silence as Alertmanager API v2 has it; the value type of the ``silences`` KV bucket."""

    id: str = Field(min_length=1)
    matchers: list[Matcher] = Field(min_length=1)
    starts_at: UtcDateTime = Field(alias="startsAt")
    ends_at: UtcDateTime = Field(alias="endsAt")
    created_by: str = Field("", alias="createdBy")
    comment: str = ""
    updated_at: UtcDateTime = Field(alias="updatedAt")

    @model_validator(mode="after")
    def _check_period(self) -> Silence:
        if self.ends_at < self.starts_at:
            raise ValueError("endsAt is before startsAt")
        return self


class SilenceEvent(Silence):
    """A change to a silence; published by web on ``<prefix>.silences``."""

    kind: Literal["created", "updated", "expired"]


class NotificationResult(WireMessage):
    """One delivery attempt of one group flush, on ``<prefix>.notifications.<receiver>``."""

    receiver: str
    integration: str
    integration_index: int = Field(ge=0)
    group_key: str
    firing: int = Field(ge=0)
    resolved: int = Field(ge=0)
    fingerprints: list[str] = Field(default_factory=list)
    outcome: Literal["success", "failed", "retrying", "dropped"]
    attempt: int = Field(ge=1)
    error: str | None = None
    duration_seconds: float = Field(ge=0)
    at: UtcDateTime
