"""The msgpack codec: bit-exact round trips, hostile input, typed limits, messages."""

from __future__ import annotations

import contextlib
import struct
from array import array
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.codec import (
    MAX_AGENT_ID_LENGTH,
    decode_batch,
    decode_message,
    encode_batch,
    encode_message,
    validate_batch,
)
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
    STALE_NAN,
    AlertEvent,
    AlertStatus,
    BatchBuilder,
    DecodeLimits,
    Matcher,
    MetricBatch,
    NotificationResult,
    SeriesDesc,
    Silence,
    SilenceEvent,
    WireMessage,
)

NOW = 1_714_564_800_000  # 2024-05-01T12:00:00Z in ms
DEFAULT = DecodeLimits()


def examples(n: int) -> settings:
    """Hypothesis settings for ``n`` examples, more if the profile asks for more (``thorough``).

    Never timed, whatever the profile: no deadline and no too_slow health
    check, so a slow, loaded machine cannot fail these tests.
    """
    return settings(
        max_examples=max(n, settings().max_examples),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


FAST = examples(150)


def from_bits(b: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", b))[0])


def make_batch(series: list[SeriesDesc], samples: list[tuple[int, int, float]]) -> MetricBatch:
    batch = MetricBatch("agent-0123", 42, series)
    for idx, ts, value in samples:
        batch.series_index.append(idx)
        batch.timestamps_ms.append(ts)
        batch.values.append(value)
    return batch


def small_batch() -> MetricBatch:
    b = BatchBuilder()
    b.add("node_cpu_seconds_total", {"cpu": "0", "mode": "idle"}, NOW, 1.5, type="counter")
    b.add("node_load1", {}, NOW - 1000, STALE_NAN, type="gauge", help="1m load.", unit="")
    return b.build("agent-0123", 7)


def decode(data: bytes, limits: DecodeLimits = DEFAULT) -> MetricBatch:
    return decode_batch(data, limits=limits, now_ms=NOW)


def assert_same(a: MetricBatch, b: MetricBatch) -> None:
    assert (a.agent_id, a.seq, a.series) == (b.agent_id, b.seq, b.series)
    assert a.series_index == b.series_index
    assert a.timestamps_ms == b.timestamps_ms
    assert a.values.tobytes() == b.values.tobytes()  # bit patterns, not ==


def doc_of(batch: MetricBatch) -> dict[str, Any]:
    doc: dict[str, Any] = msgpack.unpackb(encode_batch(batch))
    return doc


def pack(doc: object) -> bytes:
    data: bytes = msgpack.packb(doc, use_bin_type=True)
    return data


# ------------------------------------------------------------------------ round trip

LETTERS = "abcxyzABCXYZ"
metric_names = st.builds(
    str.__add__,
    st.sampled_from(LETTERS + "_:"),
    st.text(st.sampled_from(LETTERS + "0129_:"), max_size=24),
)
# Any valid label name: a letter, or "_" and a non-"_" (names starting "__" are reserved).
label_names = st.builds(
    str.__add__,
    st.sampled_from(LETTERS) | st.sampled_from(LETTERS + "09").map("_".__add__),
    st.text(st.sampled_from(LETTERS + "09_"), max_size=16),
)
label_values = st.text(st.characters(codec="utf-8"), min_size=1, max_size=24)
label_sets = st.dictionaries(label_names, label_values, max_size=6)
any_float = st.integers(0, 2**64 - 1).map(from_bits)
special_float = st.sampled_from(
    [STALE_NAN, float("nan"), -float("nan"), float("inf"), -float("inf"), -0.0, 5e-324]
)
series_descs = st.builds(
    SeriesDesc,
    metric_names,
    label_sets,
    st.sampled_from([None, "counter", "gauge", "histogram", "summary", "unknown"]),
    st.none() | st.text(max_size=40),
    st.none() | st.sampled_from(["seconds", "bytes", ""]),
)


@st.composite
def batches(draw: st.DrawFn) -> MetricBatch:
    series = draw(st.lists(series_descs, min_size=1, max_size=8))
    samples = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(series) - 1),
                st.integers(NOW - 7 * 86400 * 1000, NOW + 600 * 1000),
                any_float | special_float,
            ),
            max_size=40,
        )
    )
    batch = make_batch(series, samples)
    batch.agent_id = draw(st.text(min_size=1, max_size=MAX_AGENT_ID_LENGTH))
    batch.seq = draw(st.integers(0, 2**63 - 1))
    return batch


def edge_batch() -> MetricBatch:
    """Extremes random generation seldom reaches, all at once, checked on every run.

    The same series twice, NUL and astral characters, the longest label
    values and agent id, NaN payloads and other special floats, both ends of
    the default skew window and the largest sequence number.
    """
    labels = {"a": "\x00", "_9": "\U0010ffff" * 24, "Zz": "東京 é"}
    series = [
        SeriesDesc("m", labels, "counter", "", ""),
        SeriesDesc("m", dict(labels)),
        SeriesDesc(":_" + "Z" * 23, {}, "unknown", "\U0001f525" * 40, "seconds"),
    ]
    floats = [
        STALE_NAN,
        from_bits(0x7FF8000000000001),
        from_bits(0xFFF4000000000123),
        from_bits(2**64 - 1),
        -0.0,
        float("inf"),
        -float("inf"),
        5e-324,
    ]
    edges = (
        NOW - 1000 * DEFAULT.max_past_skew_seconds,
        NOW + 1000 * DEFAULT.max_future_skew_seconds,
    )
    batch = make_batch(series, [(k % 3, edges[k % 2], x) for k, x in enumerate(floats)])
    batch.agent_id = "\U0010ffff" * MAX_AGENT_ID_LENGTH
    batch.seq = 2**63 - 1
    return batch


@FAST
@given(batches())
@example(edge_batch())
def test_round_trip_keeps_every_field_and_float_bit_pattern(batch: MetricBatch) -> None:
    assert_same(decode(encode_batch(batch)), batch)


def test_special_floats_survive_bit_for_bit() -> None:
    patterns = [
        0x7FF0000000000002,  # staleness marker (signalling NaN)
        0x7FF8000000000000,
        0xFFF8000000000000,
        0x7FF8000000000001,
        0x7FF4000000000123,
        0x7FF0000000000000,  # +Inf
        0xFFF0000000000000,  # -Inf
        0x8000000000000000,  # -0.0
        0x0000000000000001,  # smallest subnormal
    ]
    batch = make_batch([SeriesDesc("m", {})], [(0, NOW, from_bits(p)) for p in patterns])
    out = decode(encode_batch(batch))
    assert list(struct.unpack(f"<{len(patterns)}Q", out.values.tobytes())) == patterns


def test_columns_are_little_endian_bytes_on_the_wire() -> None:
    doc = doc_of(make_batch([SeriesDesc("m", {})], [(0, NOW, 1.5)]))
    assert doc["v"] == 1
    assert doc["i"] == struct.pack("<I", 0)
    assert doc["t"] == struct.pack("<q", NOW)
    assert doc["x"] == struct.pack("<d", 1.5)
    assert doc["s"] == [["m", {}, None, None, None]]


def test_empty_label_values_are_dropped_on_decode() -> None:
    batch = make_batch([SeriesDesc("m", {"a": "1", "b": ""})], [(0, NOW, 1.0)])
    assert decode(encode_batch(batch)).series[0].labels == {"a": "1"}


def test_duplicate_series_in_the_table_are_allowed() -> None:
    batch = make_batch([SeriesDesc("m", {"a": "1"}), SeriesDesc("m", {"a": "1"})], [(1, NOW, 1.0)])
    assert_same(decode(encode_batch(batch)), batch)


def test_unicode_label_values_round_trip() -> None:
    labels = {"city": "Zürich", "emoji": "\U0001f525", "cjk": "東京", "nul": "a\x00b"}
    batch = make_batch([SeriesDesc("m", labels)], [(0, NOW, 1.0)])
    assert decode(encode_batch(batch)).series[0].labels == labels


# ---------------------------------------------------------------- hostile input


@examples(400)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


def mangled(encoded: bytes, data: st.DataObject) -> bytes:
    """``encoded`` with one to four bit flips, insertions or deletions drawn from ``data``."""
    raw = bytearray(encoded)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        match data.draw(st.sampled_from(["flip", "insert", "delete"])):
            case "flip":
                raw[pos] ^= 1 << data.draw(st.integers(0, 7))
            case "insert":
                raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
            case _:
                del raw[pos]
    return bytes(raw)


def test_every_truncation_raises_decode_error() -> None:
    data = encode_batch(small_batch())
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode(data[:cut])


@FAST
@given(st.data())
def test_bit_flips_and_splices_raise_only_decode_error(data: st.DataObject) -> None:
    raw = mangled(encode_batch(small_batch()), data)
    with contextlib.suppress(DecodeError):
        decode(raw)


WRONG_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    2**64 - 1,
    1.5,
    "",
    "x",
    b"x",
    b"\x00" * 3,
    [],
    [1],
    {},
    {"a": 1},
    [None] * 5,
    ["m", {}, None, None, None],
]


@pytest.mark.parametrize("key", ["v", "a", "q", "s", "i", "t", "x"])
@pytest.mark.parametrize("value", WRONG_VALUES, ids=repr)
def test_wrong_types_in_top_level_fields_raise_only_decode_error(key: str, value: object) -> None:
    doc = doc_of(small_batch())
    doc[key] = value
    with contextlib.suppress(DecodeError):
        decode(pack(doc))


@pytest.mark.parametrize("slot", range(5))
@pytest.mark.parametrize("value", WRONG_VALUES, ids=repr)
def test_wrong_types_in_series_entries_raise_only_decode_error(slot: int, value: object) -> None:
    doc = doc_of(small_batch())
    doc["s"][0][slot] = value
    with contextlib.suppress(DecodeError):
        decode(pack(doc))


@pytest.mark.parametrize("value", [v for v in WRONG_VALUES if type(v) is not str], ids=repr)
def test_wrong_types_as_label_values_or_entries_raise_decode_error(value: object) -> None:
    doc = doc_of(small_batch())
    doc["s"][0][1]["cpu"] = value
    with pytest.raises(DecodeError):
        decode(pack(doc))
    if value != ["m", {}, None, None, None]:  # that one is a valid entry
        doc = doc_of(small_batch())
        doc["s"][1] = value
        with pytest.raises(DecodeError):
            decode(pack(doc))


@pytest.mark.parametrize("key", ["v", "a", "q", "s", "i", "t", "x"])
def test_missing_field_is_named(key: str) -> None:
    doc = doc_of(small_batch())
    del doc[key]
    with pytest.raises(DecodeError, match=f"field {key} ") as info:
        decode(pack(doc))
    assert info.value.reason == "malformed"


def test_other_version_is_unsupported_and_non_integer_version_is_malformed() -> None:
    doc = doc_of(small_batch())
    doc["v"] = 2
    with pytest.raises(UnsupportedVersion, match="version 2"):
        decode(pack(doc))
    doc["v"] = True  # == 1 in Python, still not the integer 1
    with pytest.raises(DecodeError, match="field v"):
        decode(pack(doc))


def test_not_a_map_and_extension_types_and_trailing_bytes_are_malformed() -> None:
    for data in (pack([1, 2]), pack(msgpack.ExtType(5, b"x")), encode_batch(small_batch()) + b"\0"):
        with pytest.raises(DecodeError) as info:
            decode(data)
        assert info.value.reason == "malformed"


def test_invalid_utf8_is_malformed() -> None:
    batch = make_batch([SeriesDesc("m", {"a": "\u00ff\u00fe"})], [(0, NOW, 1.0)])
    data = encode_batch(batch).replace("\u00ff\u00fe".encode(), b"\xff\xff\xfe\xfe")
    with pytest.raises(DecodeError, match="UnicodeDecodeError"):
        decode(data)


@pytest.mark.parametrize(
    ("i", "t", "x", "message"),
    [
        (b"\0" * 4, b"\0" * 8, b"\0" * 16, "column byte lengths"),
        (b"\0" * 3, b"\0" * 8, b"\0" * 8, "column byte lengths"),
        (b"\0" * 4, b"\0" * 7, b"\0" * 8, "column byte lengths"),
        (b"\0" * 4, b"\0" * 8, b"\0" * 9, "column byte lengths"),
        (struct.pack("<I", 2), struct.pack("<q", NOW), b"\0" * 8, "refers to series 2"),
    ],
)
def test_inconsistent_columns_are_malformed(i: bytes, t: bytes, x: bytes, message: str) -> None:
    doc = doc_of(small_batch())
    doc.update(i=i, t=t, x=x)
    with pytest.raises(DecodeError, match=message) as info:
        decode(pack(doc))
    assert info.value.reason == "malformed"


@pytest.mark.parametrize(
    ("agent_id", "seq"),
    [("", 0), ("a" * (MAX_AGENT_ID_LENGTH + 1), 0), ("a", -1), ("a", 2**63), ("a", True)],
)
def test_bad_agent_id_or_sequence_is_malformed(agent_id: str, seq: object) -> None:
    doc = doc_of(small_batch())
    doc.update(a=agent_id, q=seq)
    with pytest.raises(DecodeError):
        decode(pack(doc))


def test_unknown_type_is_rejected() -> None:
    doc = doc_of(small_batch())
    doc["s"][0][2] = "countr"
    with pytest.raises(DecodeError, match='unknown type "countr"'):
        decode(pack(doc))


def test_unknown_top_level_keys_are_ignored() -> None:
    doc = doc_of(small_batch())
    doc["z"] = "from a later v1 writer"
    assert_same(decode(pack(doc)), decode(encode_batch(small_batch())))


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["1abc", "a-b", "", "é", "a b", "a{b}"])
def test_invalid_metric_name_is_named(name: str) -> None:
    batch = make_batch([SeriesDesc("ok", {}), SeriesDesc(name, {})], [(0, NOW, 1.0)])
    with pytest.raises(InvalidName, match=f'series 1 metric name "{name}": invalid name'):
        decode(encode_batch(batch))


@pytest.mark.parametrize(
    ("label", "why"),
    [
        ("fo-o", "invalid label name"),
        ("1a", "invalid label name"),
        ("a:b", "invalid label name"),
        ("é", "invalid label name"),
        ("", "invalid label name"),
        ("__name__", "reserved"),
        ("__meta_x", "reserved"),
    ],
)
def test_invalid_label_name_is_named(label: str, why: str) -> None:
    series = [SeriesDesc("m", {}), SeriesDesc("m", {}), SeriesDesc("m", {}), SeriesDesc("m", {})]
    series[3] = SeriesDesc("node_x", {"ok": "1", label: "v"})
    with pytest.raises(InvalidName, match=f'series 3 \\(node_x\\) label "{label}": .*{why}'):
        decode(encode_batch(make_batch(series, [])))


@pytest.mark.parametrize("name", ["a", "_a", "a:b:c", ":x", "A_9"])
def test_valid_metric_names_pass(name: str) -> None:
    batch = make_batch([SeriesDesc(name, {"_x": "1", "L9": "2"})], [(0, NOW, 1.0)])
    assert decode(encode_batch(batch)).series[0].name == name


# ---------------------------------------------------------------------------- limits

SMALL = DecodeLimits(
    max_series_per_batch=3,
    max_samples_per_batch=4,
    max_labels_per_series=2,
    max_label_name_length=5,
    max_label_value_length=6,
    max_past_skew_seconds=10,
    max_future_skew_seconds=5,
)


def one_series(labels: dict[str, str], name: str = "m") -> bytes:
    return encode_batch(make_batch([SeriesDesc(name, labels)], [(0, NOW, 1.0)]))


def test_batch_bytes_limit_is_checked_before_unpacking() -> None:
    data = encode_batch(small_batch())
    assert decode(data, DecodeLimits(max_batch_bytes=len(data)))
    with pytest.raises(BatchTooLarge, match=f"{len(data)} bytes, limit {len(data) - 1}"):
        decode(data, DecodeLimits(max_batch_bytes=len(data) - 1))
    with pytest.raises(BatchTooLarge):
        decode(b"\xff" * (len(data) + 1), DecodeLimits(max_batch_bytes=len(data)))


@pytest.mark.parametrize("count", [4, 6, 50])
def test_series_limit(count: int) -> None:
    at = make_batch([SeriesDesc(f"m{k}", {}) for k in range(3)], [])
    assert len(decode(encode_batch(at), SMALL).series) == 3
    over = make_batch([SeriesDesc(f"m{k}", {}) for k in range(count)], [])
    with pytest.raises(TooManySeries, match=f"{count} .*limit 3") as info:
        decode(encode_batch(over), SMALL)
    assert info.value.reason == "series_per_batch"


@pytest.mark.parametrize("count", [3, 8, 30])
def test_labels_limit(count: int) -> None:
    assert decode(one_series({"a": "1", "b": "2"}), SMALL)
    with pytest.raises(TooManyLabels, match=f"{count} .*limit 2"):
        decode(one_series({f"l{k}": "v" for k in range(count)}), SMALL)


def test_label_name_length_limit_names_the_label() -> None:
    assert decode(one_series({"abcde": "1"}), SMALL)
    with pytest.raises(LabelTooLong, match='label "abcdef": name of 6 characters, limit 5'):
        decode(one_series({"abcdef": "1"}), SMALL)


def test_label_value_length_limit_counts_characters() -> None:
    assert decode(one_series({"a": "üüüüüü"}), SMALL)  # 6 characters, 12 bytes
    with pytest.raises(LabelTooLong, match='label "a": value of 7 characters, limit 6'):
        decode(one_series({"a": "1234567"}), SMALL)
    with pytest.raises(LabelTooLong, match="string of 100 bytes"):
        decode(one_series({"a": "x" * 100}), SMALL)


def test_metric_name_length_uses_the_label_value_limit() -> None:
    assert decode(one_series({}, name="m23456"), SMALL)
    with pytest.raises(LabelTooLong, match='metric name "m234567": 7 characters'):
        decode(one_series({}, name="m234567"), SMALL)


@pytest.mark.parametrize("count", [5, 40])
def test_samples_limit(count: int) -> None:
    at = make_batch([SeriesDesc("m", {})], [(0, NOW, 1.0)] * 4)
    assert len(decode(encode_batch(at), SMALL)) == 4
    over = make_batch([SeriesDesc("m", {})], [(0, NOW, 1.0)] * count)
    with pytest.raises(BatchTooLarge, match="samples") as info:
        decode(encode_batch(over), SMALL)
    assert info.value.reason == "samples_per_batch"


@pytest.mark.parametrize(
    ("ts", "ok"), [(-10_000, True), (-10_001, False), (5_000, True), (5_001, False)]
)
def test_timestamp_skew_window(ts: int, ok: bool) -> None:
    batch = make_batch([SeriesDesc("m", {})], [(0, NOW, 1.0), (0, NOW + ts, 2.0)])
    if ok:
        assert decode(encode_batch(batch), SMALL)
    else:
        with pytest.raises(TimestampOutOfRange, match=f"sample 1 timestamp {NOW + ts} ms"):
            decode(encode_batch(batch), SMALL)


# ----------------------------------------------------------------- encode, validate


def test_encode_rejects_columns_of_different_lengths_or_types() -> None:
    batch = small_batch()
    batch.values.append(1.0)
    with pytest.raises(EncodeError, match="BUG"):
        encode_batch(batch)
    batch = small_batch()
    batch.timestamps_ms = array("l", batch.timestamps_ms)
    with pytest.raises(EncodeError, match="BUG"):
        encode_batch(batch)


def test_validate_batch_runs_the_decoders_checks_in_memory() -> None:
    validate_batch(small_batch(), limits=DEFAULT, now_ms=NOW)
    b = BatchBuilder()
    b.add("bad-name", {}, NOW, 1.0)
    with pytest.raises(InvalidName):
        validate_batch(b.build("a", 0), limits=DEFAULT, now_ms=NOW)
    b.add("m", {}, NOW + 3_600_000, 1.0)
    with pytest.raises(TimestampOutOfRange):
        validate_batch(b.build("a", 1), limits=DEFAULT, now_ms=NOW)


# -------------------------------------------------------------------------- messages

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MESSAGES: list[WireMessage] = [
    AlertEvent(
        labels={"alertname": "HostDown", "instance": "wéb-1"},
        annotations={"summary": "down"},
        starts_at=T0,
        ends_at=T0 + timedelta(minutes=4),
        generator_url="http://vigil/graph?g0.expr=up",
        status="firing",
    ),
    AlertStatus(
        fingerprint="0123456789abcdef",
        state="suppressed",
        silenced_by=["s1"],
        notified_at=T0,
        receivers=["team"],
        at=T0,
    ),
    Silence(
        id="s1",
        matchers=[Matcher(name="job", value="node")],
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        created_by="ops",
        comment="maintenance",
        updated_at=T0,
    ),
    SilenceEvent(
        kind="expired",
        id="s1",
        matchers=[Matcher(name="job", value="n.*", is_regex=True, is_equal=False)],
        starts_at=T0,
        ends_at=T0,
        updated_at=T0,
    ),
    NotificationResult(
        receiver="team",
        integration="slack",
        integration_index=1,
        group_key='{}:{alertname="HostDown"}',
        firing=2,
        resolved=1,
        fingerprints=["0123456789abcdef"],
        outcome="retrying",
        attempt=2,
        error="HTTP 503",
        duration_seconds=0.25,
        at=T0,
    ),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_round_trip(message: WireMessage) -> None:
    assert decode_message(encode_message(message), type(message)) == message


@pytest.mark.parametrize(
    ("model", "path", "value", "field"),
    [
        (AlertEvent, ("startsAt",), [5], "startsAt"),
        (AlertEvent, ("endsAt",), "2024-05-01T12:00:00", "endsAt"),  # naive
        (AlertEvent, ("labels",), {"a": 1}, "labels.a"),
        (AlertEvent, ("status",), "burning", "status"),
        (AlertStatus, ("silencedBy",), "s1", "silencedBy"),
        (Silence, ("matchers", 0, "isRegex"), "maybe", "matchers.0.isRegex"),
        (NotificationResult, ("firing",), "x", "firing"),
        (NotificationResult, ("at",), "yesterday", "at"),
    ],
)
def test_wrong_field_types_name_the_field(
    model: type[WireMessage], path: tuple[str | int, ...], value: object, field: str
) -> None:
    original = next(m for m in MESSAGES if type(m) is model)
    doc = msgpack.unpackb(encode_message(original))
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(DecodeError, match=f"cannot decode {model.__name__}: field {field}:"):
        decode_message(pack(doc), model)


def test_message_version_size_and_shape_are_checked() -> None:
    doc = msgpack.unpackb(encode_message(MESSAGES[0]))
    with pytest.raises(UnsupportedVersion):
        decode_message(pack({**doc, "v": 2}), AlertEvent)
    with pytest.raises(DecodeError, match="field v"):
        decode_message(pack({k: v for k, v in doc.items() if k != "v"}), AlertEvent)
    with pytest.raises(DecodeError, match="not a map"):
        decode_message(pack([doc]), AlertEvent)
    with pytest.raises(BatchTooLarge):
        decode_message(pack(doc), AlertEvent, max_bytes=10)
    assert decode_message(pack({**doc, "later": 1}), AlertEvent) == MESSAGES[0]


@examples(300)
@given(st.binary(max_size=200), st.sampled_from([type(m) for m in MESSAGES]))
def test_arbitrary_bytes_as_messages_raise_only_decode_error(
    data: bytes, model: type[WireMessage]
) -> None:
    with contextlib.suppress(DecodeError):
        decode_message(data, model)


def test_big_endian_path_swaps_columns_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a little-endian machine, forcing the swap writes big-endian columns: it
    # shows the swap happens on encode and is undone on decode.
    batch = make_batch([SeriesDesc("m", {})], [(0, NOW, 1.5), (0, NOW - 1, STALE_NAN)])
    monkeypatch.setattr("shared.codec._SWAP", True)
    data = encode_batch(batch)
    doc = msgpack.unpackb(data)
    assert doc["x"][:8] == struct.pack(">d", 1.5)
    assert doc["t"][:8] == struct.pack(">q", NOW)
    assert_same(decode(data), batch)
    assert batch.values[0] == 1.5  # the caller's arrays are left alone
