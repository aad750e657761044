"""A real Prometheus holding the corpus, shared by the oracle tests of this session."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oracle import corpus
from tests.oracle.prometheus import (
    MISSING_REASON,
    Prometheus,
    available,
    backfill,
    running_prometheus,
)
from tests.oracle.remote_write import push


@pytest.fixture(scope="session")
def prometheus() -> Iterator[Prometheus]:
    """Debian's Prometheus on 127.0.0.1: the corpus backfilled as blocks, the staleness
    series (which backfill cannot write) sent through its remote-write receiver."""
    if not available():
        pytest.skip(MISSING_REASON)
    with tempfile.TemporaryDirectory(prefix="vigil-prometheus-") as tmp:
        data = Path(tmp) / "data.om"
        data.write_text(corpus.openmetrics(corpus.series()))
        tsdb = Path(tmp) / "tsdb"
        backfill(data, tsdb)
        with running_prometheus(tsdb) as prom:
            push(prom.base, corpus.stale_series())
            yield prom
