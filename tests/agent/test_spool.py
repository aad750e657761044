"""The disk spool: order, cap with exact drop counts, restart replay, torn tails."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import SpoolError
from agent.spool import MAGIC, Spool


def fill(spool: Spool, n: int, *, start: int = 0, size: int = 100) -> list[tuple[str, int]]:
    """Append n records; record k has msg id "a:k" and k+1 samples."""
    made = []
    for k in range(start, start + n):
        spool.append(f"a:{k}", bytes([k % 256]) * size, k + 1)
        made.append((f"a:{k}", k + 1))
    return made


def drain(spool: Spool, *, commit: bool = True) -> list[tuple[str, int]]:
    out = []
    while (rec := spool.read_next()) is not None:
        out.append((rec.msg_id, rec.samples))
        if commit:
            spool.commit(rec.ticket)
    return out


def test_records_come_back_in_append_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1024)
    made = fill(spool, 40)
    assert len(list(tmp_path.glob("*.seg"))) > 3
    assert drain(spool) == made
    assert spool.empty
    assert spool.pending_bytes == 0
    assert list(tmp_path.glob("*.seg")) == []
    spool.close()


def test_payload_and_msg_id_survive_bit_for_bit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    payload = bytes(range(256)) * 3
    spool.append("0123456789abcdef:42", payload, 7)
    rec = spool.read_next()
    assert rec is not None
    assert (rec.msg_id, rec.payload, rec.samples) == ("0123456789abcdef:42", payload, 7)
    spool.close()


def test_cap_drops_oldest_segments_and_counts_exactly_the_samples_lost(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=4096, segment_bytes=1024)
    made = fill(spool, 100)
    assert spool.pending_bytes <= 4096
    kept = drain(spool)
    # what is left is the newest data, in order, with nothing in between missing
    assert kept == made[len(made) - len(kept) :]
    lost = made[: len(made) - len(kept)]
    assert lost, "the cap must have dropped something"
    assert spool.dropped_samples == sum(s for _id, s in lost)
    spool.close()


def test_records_in_flight_when_their_segment_is_dropped_are_not_counted_lost(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, max_bytes=4096, segment_bytes=1024)
    made = fill(spool, 5)
    handed = [spool.read_next() for _ in range(2)]
    assert all(h is not None for h in handed)
    made += fill(spool, 100, start=5)
    kept = drain(spool)
    not_handed_lost = [m for m in made[2:] if m not in kept]
    assert spool.dropped_samples == sum(s for _id, s in not_handed_lost)
    for h in handed:
        assert h is not None
        spool.commit(h.ticket)  # late acks of a dropped segment are harmless
    assert spool.empty
    spool.close()


def test_a_record_larger_than_the_cap_is_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=4096)
    spool.append("a:0", b"x" * 5000, 12)
    assert spool.dropped_samples == 12
    assert spool.read_next() is None
    spool.close()


def test_restart_replays_unacknowledged_records_under_their_ids(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048)
    made = fill(spool, 30)
    for _ in range(10):
        rec = spool.read_next()
        assert rec is not None
        spool.commit(rec.ticket)
    in_flight = spool.read_next()  # handed out, never acknowledged
    assert in_flight is not None
    spool.close()

    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048)
    assert drain(again) == made[10:]
    again.close()
    third = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048)
    assert third.read_next() is None
    third.close()


def test_torn_tail_is_skipped_counted_and_appends_continue_after_valid_data(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    made = fill(spool, 5)
    spool.close()
    (seg,) = tmp_path.glob("*.seg")
    data = seg.read_bytes()
    seg.write_bytes(data[:-50])  # the last record was half written when the host died

    again = Spool(tmp_path, max_bytes=1 << 20)
    assert again.corrupt_bytes > 0
    made_after = fill(again, 2, start=100)
    assert drain(again) == made[:4] + made_after
    again.close()


def test_damaged_record_in_the_middle_ends_its_segment_only(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=600)
    made = fill(spool, 12)
    spool.close()
    first = sorted(tmp_path.glob("*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[len(MAGIC) + 8 + 20] ^= 0xFF  # flip a byte inside the first record's body
    first.write_bytes(bytes(data))

    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=600)
    got = drain(again)
    assert again.corrupt_bytes > 0
    assert got == made[len(made) - len(got) :]  # later segments intact, in order
    again.close()


def test_a_second_agent_cannot_use_the_same_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(SpoolError, match="another agent"):
        Spool(tmp_path, max_bytes=1 << 20)
    spool.close()
