"""Wire schema v1: names, staleness marker, batch builder, fingerprint, message models."""

from __future__ import annotations

import math
import re
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.codec import encode_batch
from shared.errors import DecodeError
from shared.wire import (
    DEFAULT_NAMES,
    STALE_NAN,
    STALE_NAN_BITS,
    WIRE_VERSION,
    AlertEvent,
    AlertStatus,
    BatchBuilder,
    DecodeLimits,
    Matcher,
    MetricBatch,
    Names,
    NotificationResult,
    SeriesDesc,
    SilenceEvent,
    fingerprint,
    is_stale,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def from_bits(b: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", b))[0])


# ----------------------------------------------------------------------------- names


def test_default_names_follow_the_architecture_table() -> None:
    n = Names()
    assert n == DEFAULT_NAMES
    assert n.metrics("web-1.example.com") == "vigil.metrics.web-1/example/com"
    assert n.metrics_wildcard == "vigil.metrics.*"
    assert n.alerts("node") == "vigil.alerts.node"
    assert n.alerts_wildcard == "vigil.alerts.*"
    assert n.alertstatus == "vigil.alertstatus"
    assert n.notifications("team-x pager") == "vigil.notifications.team-x=20pager"
    assert n.notifications_wildcard == "vigil.notifications.*"
    assert n.silences == "vigil.silences"
    assert (n.stream_metrics, n.stream_alerts, n.stream_notifications, n.stream_silences) == (
        "VIGIL_METRICS",
        "VIGIL_ALERTS",
        "VIGIL_NOTIFICATIONS",
        "VIGIL_SILENCES",
    )
    assert (n.kv_silences, n.kv_alert_state, n.kv_agents, n.kv_nflog) == (
        "vigil_silences",
        "vigil_alert_state",
        "vigil_agents",
        "vigil_nflog",
    )


def test_custom_prefix_maps_to_valid_stream_and_bucket_names() -> None:
    n = Names("team-b")
    assert n.metrics("h") == "team-b.metrics.h"
    assert n.stream_metrics == "TEAM_B_METRICS"
    assert n.kv_agents == "team-b_agents"
    odd = Names("a+b~c")
    assert re.fullmatch(r"[A-Z0-9_]+", odd.stream_alerts)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", odd.kv_nflog)


@pytest.mark.parametrize("prefix", ["", "a.b", "a b", "*", "a>", "$SYS", "vigil\n", "é"])
def test_invalid_prefix_is_rejected_with_value_error(prefix: str) -> None:
    with pytest.raises(ValueError, match="cannot use subject prefix"):
        Names(prefix)


@pytest.mark.parametrize("host", ["web-1.example.com", "a b", "ü.example", ".", "x=y/z"])
def test_host_from_metrics_subject_inverts_metrics(host: str) -> None:
    n = Names("t1")
    assert n.host_from_metrics_subject(n.metrics(host)) == host


@pytest.mark.parametrize(
    "subject",
    [
        "vigil.metrics.web-1",  # another prefix's subject
        "t1.alerts.web-1",
        "t1.metrics.",
        "t1.metrics.a.b",
        "t1.metrics.=41",
        "t1.metricsX.a",
    ],
)
def test_host_from_foreign_subject_raises_subject_decode_error(subject: str) -> None:
    with pytest.raises(DecodeError) as info:
        Names("t1").host_from_metrics_subject(subject)
    assert info.value.reason == "subject"


# ------------------------------------------------------------------------- staleness


def test_stale_nan_has_prometheus_bits_and_is_recognised_exactly() -> None:
    assert STALE_NAN_BITS == 0x7FF0000000000002
    assert bits(STALE_NAN) == STALE_NAN_BITS
    assert math.isnan(STALE_NAN)
    assert is_stale(STALE_NAN)
    assert is_stale(from_bits(STALE_NAN_BITS))


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        from_bits(0x7FF8000000000001),
        from_bits(0xFFF0000000000002),
        math.inf,
        0.0,
        1.0,
    ],
)
def test_other_values_are_not_stale(value: float) -> None:
    assert not is_stale(value)


# --------------------------------------------------------------------------- builder


def test_builder_dedups_series_by_name_and_labels_in_any_order() -> None:
    b = BatchBuilder()
    assert b.add("up", {"job": "n", "instance": "a"}, 1, 1.0) == 0
    assert b.add("up", {"instance": "a", "job": "n"}, 2, 0.0) == 0
    assert b.add("up", {"instance": "b", "job": "n"}, 2, 1.0) == 1
    assert b.add("other", {"instance": "a", "job": "n"}, 2, 1.0) == 2
    assert (len(b), b.series_count) == (4, 3)
    batch = b.build("agent", 3)
    assert list(batch.series_index) == [0, 0, 1, 2]
    assert list(batch.timestamps_ms) == [1, 2, 2, 2]
    assert (batch.series_index.typecode, batch.timestamps_ms.typecode) == ("I", "q")
    assert batch.values.typecode == "d"
    assert len(batch) == 4
    assert batch.msg_id == "agent:3"


def test_builder_drops_empty_label_values_so_they_mean_absent() -> None:
    b = BatchBuilder()
    assert b.add("m", {"a": "1", "b": ""}, 1, 1.0) == b.add("m", {"a": "1"}, 2, 1.0)
    assert b.build("x", 0).series[0].labels == {"a": "1"}


def test_builder_keeps_first_metadata_given_per_metric_name() -> None:
    b = BatchBuilder()
    b.add("m", {}, 1, 1.0)
    b.add("m", {}, 2, 1.0, type="counter", help="first help")
    b.add("m", {}, 3, 1.0, type="gauge", help="second help", unit="seconds")
    desc = b.build("x", 0).series[0]
    assert (desc.type, desc.help, desc.unit) == ("counter", "first help", "seconds")


def test_builder_sends_metadata_once_per_metric_name() -> None:
    b = BatchBuilder()
    for cpu in range(3):
        b.add("cpu_seconds_total", {"cpu": str(cpu)}, 1, 1.0, type="counter", help="CPU time.")
    b.add("load1", {}, 1, 0.5, type="gauge")
    b.add("load1", {"x": "y"}, 1, 0.5, unit="ratio")
    meta = [(d.name, d.type, d.help, d.unit) for d in b.build("x", 0).series]
    assert meta == [
        ("cpu_seconds_total", "counter", "CPU time.", None),
        ("cpu_seconds_total", None, None, None),
        ("cpu_seconds_total", None, None, None),
        ("load1", "gauge", None, "ratio"),
        ("load1", None, None, None),
    ]


def test_build_hands_over_the_data_and_leaves_the_builder_empty() -> None:
    b = BatchBuilder()
    b.add("m", {"a": "b"}, 1, 2.0)
    first = b.build("x", 0)
    assert (len(b), b.series_count) == (0, 0)
    b.add("n", {}, 5, 6.0)
    second = b.build("x", 1)
    assert [d.name for d in first.series] == ["m"]
    assert [d.name for d in second.series] == ["n"]
    assert list(second.series_index) == [0]


def test_builder_copies_labels_so_caller_mutation_does_not_leak() -> None:
    labels = {"a": "1"}
    b = BatchBuilder()
    b.add("m", labels, 1, 1.0)
    labels["a"] = "2"
    assert b.build("x", 0).series[0].labels == {"a": "1"}


def test_approx_bytes_bounds_the_encoded_size() -> None:
    b = BatchBuilder()
    for i in range(300):
        b.add(
            f"metric_{i % 7}",
            {"instance": "wéb-1", "cpu": str(i % 13), "mode": "idle"},
            1_700_000_000_000 + i,
            i / 3,
            type="counter" if i % 2 else None,
            help="Seconds the CPUs spent in each mode. ü" if i % 3 else None,
            unit="seconds" if i % 5 else None,
        )
    approx = b.approx_bytes
    agent_id = "0123456789abcdef0123456789abcdef"
    size = len(encode_batch(b.build(agent_id, 2**40)))
    assert size <= approx + len(agent_id)
    assert approx < 2 * size  # and is not uselessly loose


def test_samples_iterates_series_timestamp_value() -> None:
    s0, s1 = SeriesDesc("a", {}), SeriesDesc("b", {"x": "y"})
    batch = MetricBatch("id", 0, [s0, s1])
    batch.series_index.extend([1, 0])
    batch.timestamps_ms.extend([10, 20])
    batch.values.extend([1.5, 2.5])
    assert list(batch.samples()) == [(s1, 10, 1.5), (s0, 20, 2.5)]


# ----------------------------------------------------------------------- fingerprint


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # prometheus/common model/signature_test.go and fingerprinting benchmarks
        ({}, 14695981039346656037),
        ({"name": "garland, briggs", "fear": "love is not enough"}, 5799056148416392346),
        ({"first-label": "first-label-value"}, 5146282821936882169),
        (
            {"first-label": "first-label-value", "second-label": "second-label-value"},
            3195800080984914717,
        ),
        (
            {
                "first-label": "first-label-value",
                "second-label": "second-label-value",
                "third-label": "third-label-value",
            },
            13843036195897128121,
        ),
    ],
)
def test_fingerprint_matches_prometheus_common_vectors(
    labels: dict[str, str], expected: int
) -> None:
    assert fingerprint(labels) == f"{expected:016x}"


def test_fingerprint_is_lower_hex_16_and_order_independent() -> None:
    fp = fingerprint({"b": "ü", "a": "1"})
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    assert fp == fingerprint({"a": "1", "b": "ü"})
    assert fingerprint({"a": "1b"}) != fingerprint({"a1": "b"})  # the separator matters


# -------------------------------------------------------------------------- messages


def alert(**overrides: object) -> AlertEvent:
    fields: dict[str, object] = {
        "labels": {"alertname": "HostDown", "instance": "web-1"},
        "annotations": {"summary": "down"},
        "startsAt": T0,
        "endsAt": T0 + timedelta(minutes=4),
        "generatorURL": "http://vigil/graph",
        "status": "firing",
    }
    fields.update(overrides)
    return AlertEvent.model_validate(fields)


def test_alert_event_uses_alertmanager_json_names_and_computes_fingerprint() -> None:
    a = alert()
    assert a.v == WIRE_VERSION
    assert a.fingerprint == fingerprint(a.labels)
    dumped = a.model_dump(mode="json", by_alias=True)
    assert set(dumped) == {
        "v",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
        "status",
    }
    assert dumped["startsAt"] == "2024-05-01T12:00:00Z"


def test_alert_event_accepts_python_field_names_too() -> None:
    a = AlertEvent(
        labels={"alertname": "X"},
        starts_at=T0,
        ends_at=T0,
        generator_url="u",
        status="resolved",
    )
    assert a.generator_url == "u"
    assert a.fingerprint == fingerprint({"alertname": "X"})


def test_alert_event_rejects_a_fingerprint_that_does_not_match_its_labels() -> None:
    assert alert(fingerprint=fingerprint({"alertname": "HostDown", "instance": "web-1"}))
    with pytest.raises(ValidationError, match="does not match"):
        alert(fingerprint="0123456789abcdef")


def test_datetimes_must_be_aware_and_are_normalised_to_utc() -> None:
    with pytest.raises(ValidationError, match="startsAt"):
        alert(startsAt=datetime(2024, 5, 1, 12, 0))  # naive on purpose
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    a = alert(startsAt=local)
    assert a.starts_at == T0
    assert a.starts_at.tzinfo == UTC


def test_alert_status_uses_alertmanager_names_for_silenced_and_inhibited() -> None:
    s = AlertStatus(
        fingerprint="0123456789abcdef",
        state="suppressed",
        silenced_by=["s1"],
        inhibited_by=[],
        at=T0,
    )
    dumped = s.model_dump(mode="json", by_alias=True)
    assert dumped["silencedBy"] == ["s1"]
    assert dumped["inhibitedBy"] == []
    assert dumped["notified_at"] is None
    with pytest.raises(ValidationError, match="fingerprint"):
        AlertStatus(fingerprint="nope", state="active", at=T0)


def test_silence_event_matchers_follow_alertmanager_api_v2() -> None:
    ev = SilenceEvent.model_validate(
        {
            "kind": "created",
            "id": "abc",
            "matchers": [{"name": "job", "value": "node.*", "isRegex": True}],
            "startsAt": "2024-05-01T12:00:00Z",
            "endsAt": "2024-05-01T13:00:00Z",
            "createdBy": "ops",
            "comment": "maintenance",
            "updatedAt": "2024-05-01T12:00:00Z",
        }
    )
    assert ev.matchers == [Matcher(name="job", value="node.*", is_regex=True, is_equal=True)]
    assert ev.model_dump(mode="json", by_alias=True)["matchers"][0] == {
        "name": "job",
        "value": "node.*",
        "isRegex": True,
        "isEqual": True,
    }
    with pytest.raises(ValidationError, match="endsAt is before startsAt"):
        SilenceEvent.model_validate(
            {**ev.model_dump(by_alias=True), "endsAt": "2024-05-01T11:00:00Z"}
        )


def test_notification_result_bounds_its_counts() -> None:
    ok = NotificationResult(
        receiver="team",
        integration="webhook",
        integration_index=0,
        group_key='{}:{alertname="X"}',
        firing=1,
        resolved=0,
        fingerprints=["0123456789abcdef"],
        outcome="success",
        attempt=1,
        duration_seconds=0.12,
        at=T0,
    )
    assert ok.error is None
    with pytest.raises(ValidationError, match="attempt"):
        ok.model_validate({**ok.model_dump(), "attempt": 0})


# ---------------------------------------------------------------------------- limits


def test_decode_limits_defaults_and_every_field_documented() -> None:
    lim = DecodeLimits()
    assert lim.max_batch_bytes == 4 * 1024 * 1024
    assert (lim.max_series_per_batch, lim.max_samples_per_batch) == (20_000, 200_000)
    assert (lim.max_labels_per_series, lim.max_label_name_length) == (64, 256)
    assert lim.max_label_value_length == 4096
    assert (lim.max_past_skew_seconds, lim.max_future_skew_seconds) == (7 * 86400, 600)
    for name, info in DecodeLimits.model_fields.items():
        assert info.description, name


def test_decode_limits_are_frozen_and_reject_unknown_or_bad_fields() -> None:
    lim = DecodeLimits()
    with pytest.raises(ValidationError):
        lim.max_batch_bytes = 1  # type: ignore[misc]
    with pytest.raises(ValidationError, match="max_batch_byte"):
        DecodeLimits.model_validate({"max_batch_byte": 1})
    with pytest.raises(ValidationError, match="max_series_per_batch"):
        DecodeLimits(max_series_per_batch=0)
