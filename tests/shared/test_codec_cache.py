"""BatchDecoder: the same answers as decode_batch, with validated series tables remembered."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.codec import BatchDecoder, decode_batch, encode_batch
from shared.errors import (
    BatchTooLarge,
    DecodeError,
    InvalidName,
    TimestampOutOfRange,
    UnsupportedVersion,
)
from shared.wire import BatchBuilder, DecodeLimits, MetricBatch
from tests.shared.test_codec import (
    DEFAULT,
    FAST,
    NOW,
    WRONG_VALUES,
    assert_same,
    doc_of,
    mangled,
    pack,
    small_batch,
)

Outcome = tuple[Any, ...]


def outcome(decode: Any, data: bytes) -> Outcome:
    """What a decode returned or raised, comparable across decoders."""
    try:
        b: MetricBatch = decode(data)
    except DecodeError as exc:
        return (type(exc), str(exc), exc.reason)
    return (
        "ok",
        b.agent_id,
        b.seq,
        b.series,
        b.series_index.tobytes(),
        b.timestamps_ms.tobytes(),
        b.values.tobytes(),
    )


def primed(limits: DecodeLimits = DEFAULT, *, max_series: int = 10_000) -> BatchDecoder:
    """A decoder that has already validated and remembered ``small_batch``'s table."""
    decoder = BatchDecoder(limits, max_series=max_series)
    decoder.decode(encode_batch(small_batch()), now_ms=NOW)
    assert len(decoder) == 1
    return decoder


def assert_agrees(decoder: BatchDecoder, data: bytes) -> Outcome:
    expected = outcome(lambda d: decode_batch(d, limits=DEFAULT, now_ms=NOW), data)
    assert outcome(lambda d: decoder.decode(d, now_ms=NOW), data) == expected
    return expected


def host_batch(host: str, seq: int, ts: int = NOW) -> bytes:
    b = BatchBuilder()
    for cpu in range(3):
        b.add("node_cpu_seconds_total", {"instance": host, "cpu": str(cpu)}, ts, 1.0 + seq)
    return encode_batch(b.build("agent", seq))


# --------------------------------------------------------------------- remembering


def test_a_repeated_table_is_taken_from_the_cache_and_decodes_the_same() -> None:
    decoder = BatchDecoder(DEFAULT, max_series=100)
    first = decoder.decode(host_batch("a", 0), now_ms=NOW)
    second = decoder.decode(host_batch("a", 1, NOW - 10_000), now_ms=NOW)
    other = decoder.decode(host_batch("b", 2), now_ms=NOW)
    assert (decoder.misses, decoder.hits) == (2, 1)
    assert second.series is first.series
    assert first.series_key is not None
    assert second.series_key is first.series_key
    assert other.series_key != first.series_key
    assert_same(second, decode_batch(host_batch("a", 1, NOW - 10_000), limits=DEFAULT, now_ms=NOW))
    assert second.values.tolist() == [2.0, 2.0, 2.0]
    assert second.timestamps_ms.tolist() == [NOW - 10_000] * 3


def test_the_cache_is_bounded_by_series_least_recently_used_first() -> None:
    decoder = BatchDecoder(DEFAULT, max_series=7)  # two tables of 3 series fit, not three
    for host in ("a", "b", "a", "c"):
        decoder.decode(host_batch(host, 0), now_ms=NOW)
    assert len(decoder) == 2
    assert decoder.series_held == 6
    decoder.decode(host_batch("a", 1), now_ms=NOW)
    decoder.decode(host_batch("b", 1), now_ms=NOW)
    assert (decoder.hits, decoder.misses) == (2, 4)  # "a" kept (used), "b" dropped
    with pytest.raises(ValueError, match="series-table cache"):
        BatchDecoder(DEFAULT, max_series=0)


def test_a_table_larger_than_the_cache_is_decoded_but_not_kept() -> None:
    decoder = BatchDecoder(DEFAULT, max_series=2)
    batch = decoder.decode(host_batch("a", 0), now_ms=NOW)
    assert batch.series_key is None
    assert len(decoder) == 0
    assert len(batch) == 3


# ------------------------------------------------- every rejection, table cached or not


def test_poison_with_a_cached_table_is_rejected_as_decode_batch_rejects_it() -> None:
    decoder = primed()
    doc = doc_of(small_batch())
    cases: dict[str, tuple[bytes, type[DecodeError]]] = {
        "version": (pack({**doc, "v": 2}), UnsupportedVersion),
        "skew": (pack({**doc, "t": (NOW + 86_400_000).to_bytes(8, "little") * 2}), TimestampOutOfRange),
        "index": (pack({**doc, "i": (9).to_bytes(4, "little") * 2}), DecodeError),
        "columns": (pack({**doc, "x": b"\x00" * 8}), DecodeError),
        "trailing": (encode_batch(small_batch()) + b"\x00", DecodeError),
        "truncated": (encode_batch(small_batch())[:-1], DecodeError),
        "agent": (pack({**doc, "a": ""}), DecodeError),
    }  # fmt: skip
    for name, (data, kind) in cases.items():
        result = assert_agrees(decoder, data)
        assert result[0] is kind, name
    assert decoder.hits >= 4  # the table itself was never the problem
    assert len(decoder) == 1


def test_a_repeated_key_or_an_oversize_batch_takes_the_plain_path() -> None:
    decoder = primed(DecodeLimits(max_batch_bytes=10_000))
    doc = doc_of(small_batch())
    bad_table: list[list[object]] = [["bad-name", {}, None, None, None]]
    # Two "s" keys: msgpack keeps the last one, and so must the decoder.
    body = b"".join(pack(k) + pack(v) for k, v in doc.items()) + pack("s") + pack(bad_table)
    repeated = bytes([0x80 | (len(doc) + 1)]) + body
    result = outcome(lambda d: decoder.decode(d, now_ms=NOW), repeated)
    assert result[0] is InvalidName
    oversize = outcome(lambda d: decoder.decode(d, now_ms=NOW), b"\x00" * 10_001)
    assert oversize[0] is BatchTooLarge


@pytest.mark.parametrize("extra", [0, 1, 2])
def test_a_top_level_map_over_the_map_limit_gets_the_same_answer(extra: int) -> None:
    limits = DecodeLimits(max_labels_per_series=7)  # the batch map has 7 keys
    decoder = primed(limits)
    doc = doc_of(small_batch())
    for k in range(extra):
        doc[f"extra{k}"] = k
    expected = outcome(lambda d: decode_batch(d, limits=limits, now_ms=NOW), pack(doc))
    assert outcome(lambda d: decoder.decode(d, now_ms=NOW), pack(doc)) == expected
    assert (expected[0] == "ok") == (extra == 0)


@pytest.mark.parametrize("key", ["v", "a", "q", "s", "i", "t", "x"])
@pytest.mark.parametrize("value", WRONG_VALUES, ids=repr)
def test_wrong_top_level_fields_get_the_same_answer(key: str, value: object) -> None:
    doc = doc_of(small_batch())
    doc[key] = value
    assert_agrees(primed(), pack(doc))


def test_every_truncation_gets_the_same_answer() -> None:
    decoder = primed()
    data = encode_batch(small_batch())
    for cut in range(len(data)):
        assert assert_agrees(decoder, data[:cut])[0] != "ok"


@FAST
@given(st.data())
def test_bit_flips_and_splices_get_the_same_answer(data: st.DataObject) -> None:
    raw = mangled(encode_batch(small_batch()), data)
    decoder = primed()
    assert_agrees(decoder, raw)
    assert_agrees(decoder, raw)  # and again, now that a good table may be cached


@pytest.mark.parametrize("slot", range(5))
def test_rejected_tables_are_never_cached(slot: int) -> None:
    decoder = primed()
    for value in WRONG_VALUES:
        doc = doc_of(small_batch())
        doc["s"][0][slot] = value
        held = len(decoder)
        first = assert_agrees(decoder, pack(doc))
        assert assert_agrees(decoder, pack(doc)) == first
        if first[0] != "ok":
            assert len(decoder) == held
