"""The alerter decodes batches with ``BatchDecoder``: repeated tables fast, poison skipped alike.

``App.ingest`` is called directly (no NATS needed to decode and store); the
samples stored and the batches skipped must be what plain ``decode_batch``
gives, whether a batch's series table was seen before or not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from alerter.app import App
from shared.codec import encode_batch
from shared.promql.storage import LabelMatcher
from shared.wire import BatchBuilder
from tests.alerter.livehelp import make_app, now_ms, write_config

RULES = """
groups:
  - name: g
    rules:
      - alert: High
        expr: temp > 5
"""

RELOADED = """
groups:
  - name: g
    rules:
      - alert: High
        expr: temp > 5
      - alert: Loaded
        expr: load > 5
"""

SUBJECT = "vigil.metrics.web1"


def _app(tmp_path: Path, *, cache: int | None = None) -> App:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_config(tmp_path, "nats://127.0.0.1:1", RULES)
    if cache is not None:
        doc = yaml.safe_load(path.read_text())
        doc["alerter"]["table_cache_series"] = cache
        path.write_text(yaml.safe_dump(doc))
    return make_app(path)


def _batch(seq: int, t_ms: int, *, value: float = 1.0) -> bytes:
    """One agent's batch: the same table (temp, load, 3 cpus) every time."""
    b = BatchBuilder()
    b.add("temp", {}, t_ms, value)
    b.add("load", {}, t_ms, value)
    for cpu in range(3):
        b.add("cpu", {"cpu": str(cpu)}, t_ms, value)
    return encode_batch(b.build("agent-web1", seq))


async def _held(app: App, name: str) -> list[tuple[int, float]]:
    series = await app.store.select([LabelMatcher("__name__", "=", name)], 0, now_ms() + 60_000)
    return [
        (int(t), float(v)) for s in series for t, v in zip(s.timestamps_ms, s.values, strict=True)
    ]


def _invalid(app: App) -> dict[str, float]:
    return {
        s.labels["reason"]: s.value
        for m in app.metrics.batches_invalid.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


async def test_repeated_tables_are_decoded_once_and_stored_the_same(tmp_path: Path) -> None:
    cached, plain = _app(tmp_path / "a", cache=1000), _app(tmp_path / "b", cache=0)
    assert plain._decoder is None
    t0 = now_ms() - 60_000
    for app in (cached, plain):
        for k in range(5):
            app.ingest(SUBJECT, _batch(k, t0 + k * 10_000, value=float(k)))
    assert cached._decoder is not None
    assert (cached._decoder.misses, cached._decoder.hits) == (1, 4)
    expected = [(t0 + k * 10_000, float(k)) for k in range(5)]
    assert await _held(cached, "temp") == await _held(plain, "temp") == expected
    assert await _held(cached, "load") == []  # no rule selects it
    assert cached.metrics.batches._value.get() == 5
    assert cached._table_routes_series == 5


@pytest.mark.parametrize("cache", [1000, 0])
async def test_poison_is_skipped_and_logged_with_a_cached_table_too(
    tmp_path: Path, cache: int
) -> None:
    app = _app(tmp_path, cache=cache)
    t0 = now_ms() - 60_000
    app.ingest(SUBJECT, _batch(0, t0))  # the table is now known
    future = _batch(1, now_ms() + 86_400_000)  # same table, timestamps a day ahead
    broken: dict[str, Any] = {"truncated": _batch(2, t0 + 1000)[:-3], "skew": future}
    with capture_logs() as logs:
        for data in broken.values():
            app.ingest(SUBJECT, data)
    assert [e["event"] for e in logs] == ["cannot decode batch, skipping it"] * 2
    assert "timestamp" in logs[1]["error"]
    assert _invalid(app) == {"malformed": 1.0, "timestamp_skew": 1.0}
    app.ingest(SUBJECT, _batch(3, t0 + 2000, value=7.0))
    assert await _held(app, "temp") == [(t0, 1.0), (t0 + 2000, 7.0)]
    assert app.metrics.batches._value.get() == 2


async def test_a_reload_reroutes_a_cached_table(tmp_path: Path) -> None:
    app = _app(tmp_path, cache=1000)
    t0 = now_ms() - 60_000
    app.ingest(SUBJECT, _batch(0, t0))
    assert await _held(app, "load") == []
    (tmp_path / "rules.yml").write_text(RELOADED)
    assert (await app.reloader.reload()).ok
    app.ingest(SUBJECT, _batch(1, t0 + 1000, value=2.0))
    assert app._decoder is not None
    assert app._decoder.hits == 1
    assert await _held(app, "load") == [(t0 + 1000, 2.0)]


def test_table_routes_are_bounded_by_the_cache_setting(tmp_path: Path) -> None:
    app = _app(tmp_path, cache=7)  # tables of 5 series: one fits, two do not
    t0 = now_ms() - 60_000
    for k, host in enumerate(["a", "b", "a", "c"]):
        app.ingest(f"vigil.metrics.{host}", _batch(k, t0 + k))
        assert app._table_routes_series <= 7
    assert len(app._table_routes) == 1
