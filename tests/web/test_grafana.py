"""Grafana's Prometheus data source, replayed: the requests it sends and the shapes it reads.

The requests are those of Grafana 10/11 with the data source's default HTTP
method (POST): form-encoded ``query``/``query_range``, ``labels`` and
``series`` with ``match[]``, label values for the metric browser,
``buildinfo`` (which decides the features it enables), ``metadata`` (types
and help in the query editor) and ``query_exemplars``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.conftest import T0, Server

pytestmark = pytest.mark.timescale

GRAFANA_HEADERS = {
    "User-Agent": "Grafana/11.1.0",
    "X-Grafana-Org-Id": "1",
    "X-Dashboard-Uid": "abc",
    "X-Panel-Id": "2",
    "Accept": "application/json, text/plain, */*",
}
FORM = {**GRAFANA_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}
START, END = str(T0 // 1000 - 3600), str(T0 // 1000 + 3600)


def data_of(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


async def test_health_check_query(server: Server) -> None:
    """Grafana's "Save & test" runs 1+1 as an instant query and reads a scalar 2."""
    r = await server.client.post("/api/v1/query", content=f"query=1%2B1&time={END}", headers=FORM)
    data = data_of(r)
    assert data["resultType"] == "scalar"
    assert data["result"] == [int(END), "2"]


async def test_buildinfo_version_is_prometheus_2_semver(server: Server) -> None:
    r = await server.client.get("/api/v1/status/buildinfo", headers=GRAFANA_HEADERS)
    version = data_of(r)["version"]
    major, minor, patch = (int(x) for x in version.split("."))
    assert (major, minor) >= (2, 50)
    assert patch >= 0


async def test_range_query_post_form(server: Server) -> None:
    r = await server.client.post(
        "/api/v1/query_range",
        content=f"query=matrix&start={START}&end={END}&step=60",
        headers=FORM,
    )
    data = data_of(r)
    assert data["resultType"] == "matrix"
    for series in data["result"]:
        assert isinstance(series["metric"], dict)
        for t, v in series["values"]:
            assert isinstance(t, int | float)
            assert isinstance(v, str)
    assert server.engine.calls[-1] == (
        "range", "matrix", int(START) * 1000, int(END) * 1000, 60_000,
    )  # fmt: skip


async def test_instant_query_post_form(server: Server) -> None:
    r = await server.client.post("/api/v1/query", content=f"query=vector&time={END}", headers=FORM)
    for sample in data_of(r)["result"]:
        assert set(sample) == {"metric", "value"}
        _t, v = sample["value"]
        assert isinstance(v, str)


async def test_labels_with_match_post_form(server: Server) -> None:
    r = await server.client.post(
        "/api/v1/labels",
        content=f"match%5B%5D=cpu_seconds_total&start={START}&end={END}",
        headers=FORM,
    )
    assert data_of(r) == ["__name__", "host", "mode"]
    r = await server.client.get(
        "/api/v1/labels", params={"start": START, "end": END}, headers=GRAFANA_HEADERS
    )
    assert "__name__" in data_of(r)


async def test_series_with_match_post_form(server: Server) -> None:
    r = await server.client.post(
        "/api/v1/series",
        content=f"match%5B%5D=%7Bhost%3D%22a%22%7D&start={START}&end={END}",
        headers=FORM,
    )
    series = data_of(r)
    assert {s["__name__"] for s in series} == {"cpu_seconds_total", "up"}
    assert all(s["host"] == "a" for s in series)


async def test_metric_browser_label_values(server: Server) -> None:
    r = await server.client.get(
        "/api/v1/label/__name__/values",
        params={"start": START, "end": END},
        headers=GRAFANA_HEADERS,
    )
    assert data_of(r) == ["cpu_seconds_total", "up"]
    r = await server.client.get(
        "/api/v1/label/host/values",
        params={"match[]": 'cpu_seconds_total{mode="user"}', "start": START, "end": END},
        headers=GRAFANA_HEADERS,
    )
    assert data_of(r) == ["b"]


async def test_metadata_shape(server: Server) -> None:
    r = await server.client.get("/api/v1/metadata", headers=GRAFANA_HEADERS)
    meta = data_of(r)
    for name, entries in meta.items():
        assert isinstance(name, str)
        for entry in entries:
            assert set(entry) == {"type", "help", "unit"}


async def test_exemplars_post_form(server: Server) -> None:
    r = await server.client.post(
        "/api/v1/query_exemplars",
        content=f"query=up&start={START}&end={END}",
        headers=FORM,
    )
    assert data_of(r) == []


async def test_errors_carry_the_fields_grafana_shows(server: Server) -> None:
    r = await server.client.post(
        "/api/v1/query_range",
        content=f"query=matrix&start={END}&end={START}&step=60",
        headers=FORM,
    )
    assert r.status_code == 400
    assert r.json() == {
        "status": "error",
        "errorType": "bad_data",
        "error": "end timestamp must not be before start time",
    }
