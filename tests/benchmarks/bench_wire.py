"""Cost per sample of encoding and decoding metric batches, columnar v1 against a naive peer.

Run: ``.venv/bin/python tests/benchmarks/bench_wire.py [--rounds N]``.

Cases (1,000 samples each):
- ``node``: node_exporter-like, ~1,000 distinct series with 3-6 labels, one
  sample each (what an agent's system collector sends every interval);
- ``dense``: 20 series with 50 samples each (a spool replay, a fast collector).

``columnar`` is ``shared.codec`` (decode includes every check with default
``DecodeLimits``); ``naive`` is one msgpack map per sample
(``{"name", "labels", "t", "v"}``), decoded with the same name, label and
timestamp checks written the obvious way, and once with ``msgpack.unpackb``
alone (a floor no real consumer gets below). ``decode, table cached`` is
``shared.codec.BatchDecoder`` decoding a batch whose series table it has
validated before (what ingest sees from an agent after its first batch):
the same checks on the header and columns, none on the table. The columnar batch also carries
type and help once per metric name; the naive peer carries no metadata at
all, so its byte count flatters it a little. Figures are the median over
rounds of the mean over many repetitions. The last line is machine-read:
``RESULT encode_us_per_sample=<x> decode_us_per_sample=<y> decode_cached_us_per_sample=<z>``
for ``node``.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgpack

from shared.codec import BatchDecoder, decode_batch, encode_batch
from shared.wire import STALE_NAN, BatchBuilder, DecodeLimits, MetricBatch, MetricType

LIMITS = DecodeLimits()
NOW_MS = 1_714_564_800_000
SAMPLES = 1000
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def node_batch(rng: random.Random) -> MetricBatch:
    """~1,000 node_exporter-like series with 3-6 labels each, one sample per series."""
    base = {"job": "node", "instance": "web-17.eu-west.example.com:9100"}
    b = BatchBuilder()
    ts = NOW_MS - 250

    def add(name: str, extra: dict[str, str], mtype: MetricType = "gauge") -> None:
        value = rng.choice([rng.random() * 1e9, float(rng.randrange(1 << 40)), STALE_NAN])
        b.add(name, {**base, **extra}, ts, value, type=mtype, help=f"{name} from node_exporter.")

    modes = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]
    for cpu in range(32):
        for mode in modes:
            add("node_cpu_seconds_total", {"cpu": str(cpu), "mode": mode}, "counter")
        add("node_cpu_scaling_frequency_hertz", {"cpu": str(cpu)})
    mounts = [(f"/dev/nvme0n1p{k}", "ext4", f"/srv/data{k}") for k in range(12)]
    for device, fstype, mountpoint in mounts:
        for metric in (
            "avail_bytes",
            "free_bytes",
            "size_bytes",
            "files",
            "files_free",
            "readonly",
            "device_error",
        ):
            labels = {"device": device, "fstype": fstype, "mountpoint": mountpoint}
            add(f"node_filesystem_{metric}", labels)
    for k in range(16):
        device = f"eth{k}" if k < 8 else f"veth{k:04x}"
        for metric in (
            "receive_bytes_total",
            "transmit_bytes_total",
            "receive_packets_total",
            "transmit_packets_total",
            "receive_errs_total",
            "transmit_errs_total",
            "receive_drop_total",
            "transmit_drop_total",
        ):
            add(f"node_network_{metric}", {"device": device}, "counter")
    for k in range(8):
        for metric in (
            "read_bytes_total",
            "written_bytes_total",
            "reads_completed_total",
            "writes_completed_total",
            "io_time_seconds_total",
            "read_time_seconds_total",
            "write_time_seconds_total",
        ):
            add(f"node_disk_{metric}", {"device": f"nvme{k}n1", "major": "259"}, "counter")
    k = 0
    while len(b) < SAMPLES:
        add(
            "node_hwmon_temp_celsius",
            {"chip": f"platform_coretemp_{k // 40}", "sensor": f"temp{k % 40}", "kind": "core"},
        )
        k += 1
    batch = b.build("5f0c2d1e9a8b4c7d", 123456)
    assert len(batch) == SAMPLES, len(batch)
    return batch


def dense_batch(rng: random.Random) -> MetricBatch:
    """20 series, 50 samples each, 1 s apart."""
    b = BatchBuilder()
    for t in range(50):
        for s in range(20):
            b.add(
                "app_requests_total",
                {"job": "api", "instance": "api-3:8080", "route": f"/v1/r{s}", "code": "200"},
                NOW_MS - 60_000 + t * 1000,
                float(rng.randrange(1 << 30)),
                type="counter",
            )
    return b.build("5f0c2d1e9a8b4c7d", 7)


# ---------------------------------------------------------------------- naive peer


def to_naive(batch: MetricBatch) -> list[dict[str, Any]]:
    return [{"name": s.name, "labels": s.labels, "t": t, "v": v} for s, t, v in batch.samples()]


def naive_encode(samples: list[dict[str, Any]]) -> bytes:
    data: bytes = msgpack.packb(samples, use_bin_type=True)
    return data


def naive_unpack(data: bytes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = msgpack.unpackb(data, raw=False, strict_map_key=True)
    return out


def naive_decode(data: bytes) -> list[dict[str, Any]]:
    """The per-sample shape with the checks a consumer needs, written plainly."""
    samples = naive_unpack(data)
    low = NOW_MS - 1000 * LIMITS.max_past_skew_seconds
    high = NOW_MS + 1000 * LIMITS.max_future_skew_seconds
    for sample in samples:
        name, labels, ts, value = sample["name"], sample["labels"], sample["t"], sample["v"]
        if type(name) is not str or not METRIC_NAME.fullmatch(name):
            raise ValueError(name)
        if type(labels) is not dict or len(labels) > LIMITS.max_labels_per_series:
            raise ValueError(labels)
        for key, val in labels.items():
            if not LABEL_NAME.fullmatch(key) or key.startswith("__") or type(val) is not str:
                raise ValueError(key)
            if len(key) > LIMITS.max_label_name_length or len(val) > LIMITS.max_label_value_length:
                raise ValueError(key)
        if type(ts) is not int or not low <= ts <= high or type(value) is not float:
            raise ValueError(ts)
    return samples


# ----------------------------------------------------------------------- timing


def per_sample_us(fn: Callable[[], object], samples: int, rounds: int) -> float:
    """Median over rounds of the mean cost per sample, in microseconds."""
    reps = 1
    while True:  # calibrate: one round should take ~0.1 s
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        if time.perf_counter() - start > 0.1:
            break
        reps *= 2
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        results.append((time.perf_counter() - start) / reps / samples * 1e6)
    return statistics.median(results)


def run_case(name: str, batch: MetricBatch, rounds: int) -> tuple[float, float, float]:
    n = len(batch)
    data = encode_batch(batch)
    naive = to_naive(batch)
    naive_data = naive_encode(naive)
    assert len(decode_batch(data, limits=LIMITS, now_ms=NOW_MS)) == n
    assert len(naive_decode(naive_data)) == n

    def rebuild() -> None:
        b = BatchBuilder()
        for s, t, v in batch.samples():
            b.add(s.name, s.labels, t, v, type=s.type, help=s.help, unit=s.unit)

    build = per_sample_us(rebuild, n, rounds)
    enc = per_sample_us(lambda: encode_batch(batch), n, rounds)
    dec = per_sample_us(lambda: decode_batch(data, limits=LIMITS, now_ms=NOW_MS), n, rounds)
    decoder = BatchDecoder(LIMITS, max_series=len(batch.series))
    assert len(decoder.decode(data, now_ms=NOW_MS)) == n
    cached = per_sample_us(lambda: decoder.decode(data, now_ms=NOW_MS), n, rounds)
    assert decoder.misses == 1
    n_enc = per_sample_us(lambda: naive_encode(naive), n, rounds)
    n_dec = per_sample_us(lambda: naive_decode(naive_data), n, rounds)
    n_unpack = per_sample_us(lambda: naive_unpack(naive_data), n, rounds)

    print(f"\n== {name}: {n} samples, {len(batch.series)} series ==")
    print(f"{'':26}{'columnar':>12}{'naive':>12}{'naive/col':>11}")
    print(
        f"{'bytes per sample':26}{len(data) / n:12.1f}{len(naive_data) / n:12.1f}"
        f"{len(naive_data) / len(data):10.2f}x"
    )
    print(f"{'encode us/sample':26}{enc:12.3f}{n_enc:12.3f}{n_enc / enc:10.2f}x")
    print(f"{'decode+check us/sample':26}{dec:12.3f}{n_dec:12.3f}{n_dec / dec:10.2f}x")
    print(f"{'decode, table cached':26}{cached:12.3f}")
    print(f"{'naive unpack only':26}{'':12}{n_unpack:12.3f}")
    print(f"{'BatchBuilder.add us/sample':26}{build:12.3f}")
    return enc, dec, cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds per figure (median)")
    args = parser.parse_args()
    rng = random.Random(1)
    node = run_case("node (node_exporter-like)", node_batch(rng), args.rounds)
    run_case("dense (few series, many samples)", dense_batch(rng), args.rounds)
    print(
        f"RESULT encode_us_per_sample={node[0]:.3f} decode_us_per_sample={node[1]:.3f} "
        f"decode_cached_us_per_sample={node[2]:.3f}"
    )


if __name__ == "__main__":
    main()
