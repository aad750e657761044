"""``SeriesCollector``: the samples of the selected series, gathered from batches, sorted."""

from __future__ import annotations

from alerter.replay import SeriesCollector
from alerter.window import selectors_of
from shared.wire import BatchBuilder, MetricBatch


def _batch(t_ms: int, value: float) -> MetricBatch:
    b = BatchBuilder()
    b.add("hum", {"room": "a"}, t_ms, value)
    b.add("hum", {"room": "b"}, t_ms, value + 100)
    b.add("temp", {"room": "a"}, t_ms, value)
    return b.build("agent", t_ms)


def test_collects_only_selected_series_sorted_by_time() -> None:
    collector = SeriesCollector(selectors_of('hum{room="a", host="web1"}'))
    for t, v in ((3000, 3.0), (1000, 1.0), (2000, 2.0)):  # a replay may interleave
        collector.add("web1", _batch(t, v))
    collector.add("web2", _batch(4000, 4.0))  # another host: not selected
    (series,) = collector.series()
    assert series.labels == {"__name__": "hum", "room": "a", "host": "web1"}
    assert series.timestamps_ms.tolist() == [1000, 2000, 3000]
    assert series.values.tolist() == [1.0, 2.0, 3.0]
    assert collector.samples == 3


def test_nothing_selected_gives_no_series() -> None:
    collector = SeriesCollector(selectors_of("absent_over_time(rare[1h])"))
    collector.add("web1", _batch(1000, 1.0))
    assert collector.series() == []
    assert collector.samples == 0
