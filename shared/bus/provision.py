"""Create or update every stream and KV bucket of the NATS contract, idempotently.

Names come from the configured prefix (``shared.wire.Names``); limits and
discard policy from ``nats.streams``. Run by every service at start-up, so
whichever starts first sets the bus up and the rest find it ready:

=================  ==================================  =======================
stream / bucket    subjects                            limits
=================  ==================================  =======================
``<P>_METRICS``    ``<p>.metrics.*``                   nats.streams.metrics
``<P>_ALERTS``     ``<p>.alerts.*``                    nats.streams.alerts
``<P>_NOTIF...``   ``<p>.notifications.*``             nats.streams.notifications
``<P>_SILENCES``   ``<p>.silences``                    nats.streams.silences
KV silences        current silences                    history nats.kv_history
KV alert_state     alerter state per rule/fingerprint  history nats.kv_history
KV agents          first/last seen per host            history nats.kv_history
KV nflog           notification log per group          TTL 120 h (Alertmanager's)
=================  ==================================  =======================

All streams use limits retention and file storage. A stream that exists
with other limits is updated in place; one whose storage type differs
cannot be and fails with ProvisionError.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType
from nats.js.api import StreamConfig as JsStreamConfig
from nats.js.errors import NotFoundError

from shared.config.models import NatsConfig, StreamConfig
from shared.errors import ProvisionError
from shared.log import get_logger
from shared.wire import Names

log = get_logger(__name__)

NFLOG_TTL_S = 120 * 3600.0
_COMPARED = (
    "subjects",
    "max_age",
    "max_bytes",
    "discard",
    "num_replicas",
    "duplicate_window",
    "max_msgs_per_subject",
    "retention",
)


@dataclass(frozen=True, slots=True)
class BucketSpec:
    name: str
    history: int
    ttl: float | None = None


@dataclass(slots=True)
class ProvisionReport:
    """What ``provision`` did, by name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _stream(name: str, subjects: list[str], limits: StreamConfig) -> JsStreamConfig:
    return JsStreamConfig(
        name=name,
        subjects=subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=limits.max_age,
        max_bytes=limits.max_bytes,
        discard=DiscardPolicy.OLD if limits.discard == "old" else DiscardPolicy.NEW,
        num_replicas=limits.replicas,
        duplicate_window=limits.duplicate_window,
    )


def contract_streams(cfg: NatsConfig) -> list[JsStreamConfig]:
    """The four streams of the contract, as JetStream configurations."""
    names = Names(cfg.prefix)
    s = cfg.streams
    return [
        _stream(names.stream_metrics, [names.metrics_wildcard], s.metrics),
        _stream(names.stream_alerts, [names.alerts_wildcard], s.alerts),
        _stream(names.stream_notifications, [names.notifications_wildcard], s.notifications),
        _stream(names.stream_silences, [names.silences], s.silences),
    ]


def contract_buckets(cfg: NatsConfig) -> list[BucketSpec]:
    """The four KV buckets of the contract."""
    names = Names(cfg.prefix)
    return [
        BucketSpec(names.kv_silences, cfg.kv_history),
        BucketSpec(names.kv_alert_state, cfg.kv_history),
        BucketSpec(names.kv_agents, cfg.kv_history),
        BucketSpec(names.kv_nflog, cfg.kv_history, ttl=NFLOG_TTL_S),
    ]


def _differs(have: JsStreamConfig, want: JsStreamConfig) -> list[str]:
    out = []
    for attr in _COMPARED:
        a, b = getattr(have, attr), getattr(want, attr)
        if b is None:
            continue
        if isinstance(b, float) and a is not None and abs(float(a) - b) < 1e-6:
            continue
        if attr == "subjects" and sorted(a or []) == sorted(b):
            continue
        if a != b:
            out.append(attr)
    return out


async def _ensure_stream(
    js: JetStreamContext, want: JsStreamConfig, report: ProvisionReport
) -> None:
    if want.name is None:
        raise ProvisionError("BUG: a contract stream has no name")
    try:
        info = await js.stream_info(want.name)
    except NotFoundError:
        await js.add_stream(want)
        report.created.append(want.name)
        log.info("created stream", stream=want.name, subjects=want.subjects)
        return
    have = info.config
    if have.storage is not None and want.storage is not None and have.storage != want.storage:
        raise ProvisionError(
            f"cannot update stream {want.name}: it uses {have.storage.value} storage, "
            f"the contract needs {want.storage.value}; migrate or delete it"
        )
    changed = _differs(have, want)
    if not changed:
        report.unchanged.append(want.name)
        return
    merged = JsStreamConfig.from_response(have.as_dict())
    for attr in changed:
        setattr(merged, attr, getattr(want, attr))
    await js.update_stream(merged)
    report.updated.append(want.name)
    log.info("updated stream", stream=want.name, fields=changed)


async def _ensure_bucket(js: JetStreamContext, spec: BucketSpec, report: ProvisionReport) -> None:
    stream = f"KV_{spec.name}"
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        await js.create_key_value(
            KeyValueConfig(
                bucket=spec.name, history=spec.history, ttl=spec.ttl, storage=StorageType.FILE
            )
        )
        report.created.append(spec.name)
        log.info("created KV bucket", bucket=spec.name)
        return
    want = JsStreamConfig.from_response(info.config.as_dict())
    want.max_msgs_per_subject = spec.history
    want.max_age = spec.ttl or 0.0
    changed = [
        a
        for a, have, new in (
            ("history", info.config.max_msgs_per_subject, spec.history),
            ("ttl", info.config.max_age or 0.0, spec.ttl or 0.0),
        )
        if abs(float(have or 0) - float(new)) > 1e-6
    ]
    if not changed:
        report.unchanged.append(spec.name)
        return
    await js.update_stream(want)
    report.updated.append(spec.name)
    log.info("updated KV bucket", bucket=spec.name, fields=changed)


async def provision(js: JetStreamContext, cfg: NatsConfig) -> ProvisionReport:
    """Make every stream and bucket of the contract exist with the configured limits."""
    report = ProvisionReport()
    try:
        for stream in contract_streams(cfg):
            await _ensure_stream(js, stream, report)
        for bucket in contract_buckets(cfg):
            await _ensure_bucket(js, bucket, report)
    except ProvisionError:
        raise
    except Exception as exc:
        raise ProvisionError(
            f"cannot provision NATS streams and buckets: {exc or type(exc).__name__}"
        ) from exc
    return report
