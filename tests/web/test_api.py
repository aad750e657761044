"""The HTTP API over real HTTP (uvicorn on port 0) and a real TimescaleDB.

The PromQL engine is a stand-in here (``FakeEngine``: canned results and
errors by query text), so these tests pin the HTTP layer alone: parameters,
validation messages, envelopes, status codes and rendering. End-to-end
answers through the real engine are in ``test_e2e_engine.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.conftest import FakeEngine, Server, web_config
from web.app import App

pytestmark = pytest.mark.timescale

T0 = 1_700_000_000_000


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


def err(r: httpx.Response, status: int, error_type: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error"
    assert body["errorType"] == error_type
    assert set(body) == {"status", "errorType", "error"}
    message: str = body["error"]
    return message


# -- query ----------------------------------------------------------------------------


async def test_instant_vector_shape(server: Server) -> None:
    data = ok(
        await server.client.get("/api/v1/query", params={"query": "vector", "time": "1700000000.5"})
    )
    assert data == {
        "resultType": "vector",
        "result": [
            {"metric": {"__name__": "up", "host": "a"}, "value": [1700000000.5, "1"]},
            {"metric": {"host": "b"}, "value": [1700000000.5, "NaN"]},
        ],
    }
    assert server.engine.calls[-1] == ("instant", "vector", 1_700_000_000_500)


async def test_instant_time_as_rfc3339_and_default_now(server: Server) -> None:
    ok(
        await server.client.get(
            "/api/v1/query", params={"query": "vector", "time": "2023-11-14T22:13:20.25Z"}
        )
    )
    assert server.engine.calls[-1][2] == 1_700_000_000_250
    ok(
        await server.client.get(
            "/api/v1/query", params={"query": "vector", "time": "2023-11-15T00:13:20+02:00"}
        )
    )
    assert server.engine.calls[-1][2] == 1_700_000_000_000
    ok(await server.client.get("/api/v1/query", params={"query": "vector"}))
    assert server.engine.calls[-1][2] > 1_700_000_000_000  # now


async def test_scalar_and_string_shapes(server: Server) -> None:
    data = ok(await server.client.get("/api/v1/query", params={"query": "scalar", "time": "100"}))
    assert data == {"resultType": "scalar", "result": [100, "2.5"]}
    data = ok(await server.client.get("/api/v1/query", params={"query": "string", "time": "100"}))
    assert data == {"resultType": "string", "result": [100, 'he said "hi"']}


async def test_warnings_ride_in_the_envelope(server: Server) -> None:
    r = await server.client.get("/api/v1/query", params={"query": "warn", "time": "1"})
    assert r.json() == {
        "status": "success",
        "data": {"resultType": "vector", "result": []},
        "warnings": ["something odd"],
    }
    r = await server.client.get("/api/v1/query", params={"query": "vector", "time": "1"})
    assert "warnings" not in r.json()


async def test_query_post_form(server: Server) -> None:
    r = await server.client.post("/api/v1/query", data={"query": "scalar", "time": "5"})
    assert ok(r)["result"] == [5, "2.5"]


@pytest.mark.parametrize(
    ("query", "status", "error_type"),
    [
        ("nonsense(", 400, "bad_data"),
        ("exec", 422, "execution"),
        ("toomany", 422, "execution"),
        ("timeout", 503, "timeout"),
        ("boom", 500, "internal"),
    ],
)
async def test_engine_errors_map_to_prometheus_types(
    server: Server, query: str, status: int, error_type: str
) -> None:
    message = err(
        await server.client.get("/api/v1/query", params={"query": query}), status, error_type
    )
    assert message


async def test_missing_query_is_bad_data(server: Server) -> None:
    message = err(await server.client.get("/api/v1/query"), 400, "bad_data")
    assert message == 'invalid parameter "query": 1:1: parse error: no expression found in input'


async def test_bad_time_is_bad_data(server: Server) -> None:
    message = err(
        await server.client.get("/api/v1/query", params={"query": "vector", "time": "yesterday"}),
        400,
        "bad_data",
    )
    assert message == 'invalid parameter "time": cannot parse "yesterday" to a valid timestamp'


async def test_timeout_parameter_shortens_the_query(server: Server) -> None:
    r = await server.client.get("/api/v1/query", params={"query": "slow", "timeout": "50ms"})
    assert err(r, 503, "timeout") == "query timed out in expression evaluation"
    r = await server.client.get("/api/v1/query", params={"query": "vector", "timeout": "soon"})
    assert (
        err(r, 400, "bad_data")
        == 'invalid parameter "timeout": cannot parse "soon" to a valid duration'
    )


# -- query_range ----------------------------------------------------------------------------


async def test_range_matrix_values_render_like_go(server: Server) -> None:
    data = ok(
        await server.client.get(
            "/api/v1/query_range",
            params={"query": "matrix", "start": "1700000000", "end": "1700000105", "step": "15s"},
        )
    )
    assert data["resultType"] == "matrix"
    (series,) = data["result"]
    assert series["metric"] == {"__name__": "m", "a": "b"}
    assert series["values"] == [
        [1700000000, "NaN"],
        [1700000015, "+Inf"],
        [1700000030, "-Inf"],
        [1700000045, "1000000000000000000000"],
        [1700000060, "0.0000001"],
        [1700000075, "0.1"],
        [1700000090, "-0"],
        [1700000105, "3"],
    ]
    assert server.engine.calls[-1] == (
        "range", "matrix", 1_700_000_000_000, 1_700_000_105_000, 15_000,
    )  # fmt: skip


async def test_big_results_render_off_the_loop_identically(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"query": "matrix", "start": "1700000000", "end": "1700000105", "step": "15s"}
    inline = await server.client.get("/api/v1/query_range", params=params)
    monkeypatch.setattr("web.api.THREAD_RENDER_POINTS", 0)
    threaded = await server.client.get("/api/v1/query_range", params=params)
    assert threaded.content == inline.content


async def test_range_step_as_float_seconds_and_fractional_times(server: Server) -> None:
    r = await server.client.get(
        "/api/v1/query_range",
        params={
            "query": "matrix",
            "start": "1700000000.123",
            "end": "1700000001.123",
            "step": "0.5",
        },
    )
    values = ok(r)["result"][0]["values"]
    # Prometheus writes the milliseconds as three digits.
    assert [v[0] for v in values] == [1700000000.123, 1700000000.623, 1700000001.123]
    assert '1700000000.623,"' in r.text
    assert server.engine.calls[-1][4] == 500


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"start": "10", "end": "5", "step": "1"},
            "end timestamp must not be before start time",
        ),
        (
            {"start": "0", "end": "5", "step": "0"},
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            {"start": "0", "end": "5", "step": "-1s"},
            'invalid parameter "step": cannot parse "-1s" to a valid duration',
        ),
        (
            {"start": "0", "end": "11001", "step": "1"},
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            {"start": "x", "end": "5", "step": "1"},
            'invalid parameter "start": cannot parse "x" to a valid timestamp',
        ),
        (
            {"start": "0", "end": "5", "step": "fast"},
            'invalid parameter "step": cannot parse "fast" to a valid duration',
        ),
    ],
)
async def test_range_validation_messages_are_prometheus(
    server: Server, params: dict[str, str], message: str
) -> None:
    r = await server.client.get("/api/v1/query_range", params={"query": "matrix", **params})
    assert err(r, 400, "bad_data") == message


async def test_range_at_exactly_11000_points_is_accepted(server: Server) -> None:
    r = await server.client.get(
        "/api/v1/query_range", params={"query": "scalar", "start": "0", "end": "11000", "step": "1"}
    )
    ok(r)


# -- metadata endpoints ----------------------------------------------------------------------------


async def test_series_endpoint(server: Server) -> None:
    r = await server.client.get(
        "/api/v1/series",
        params={
            "match[]": 'cpu_seconds_total{mode="idle"}',
            "start": str(T0 // 1000),
            "end": str(T0 // 1000 + 600),
        },
    )
    assert ok(r) == [{"__name__": "cpu_seconds_total", "host": "a", "mode": "idle"}]
    r = await server.client.get(
        "/api/v1/series", params=[("match[]", "up"), ("match[]", '{__name__=~"cpu.*",host="b"}')]
    )
    assert ok(r) == [
        {"__name__": "cpu_seconds_total", "host": "b", "mode": "user"},
        {"__name__": "up", "host": "a", "job": "node"},
    ]
    r = await server.client.get("/api/v1/series")
    assert err(r, 400, "bad_data") == "no match[] parameter provided"
    r = await server.client.get("/api/v1/series", params={"match[]": "rate(up[5m])"})
    err(r, 400, "bad_data")
    r = await server.client.get("/api/v1/series", params={"match[]": '{a=""}'})
    assert "non-empty matcher" in err(r, 400, "bad_data")
    r = await server.client.get("/api/v1/series", params={"match[]": "up{"})
    assert err(r, 400, "bad_data").startswith('invalid parameter "match[]"')


async def test_series_limit_truncates_with_a_warning(server: Server) -> None:
    r = await server.client.get("/api/v1/series", params={"match[]": '{host=~".+"}', "limit": "1"})
    body = r.json()
    assert len(body["data"]) == 1
    assert body["warnings"] == ["results truncated due to limit"]


async def test_labels_and_label_values(server: Server) -> None:
    assert ok(await server.client.get("/api/v1/labels")) == ["__name__", "host", "job", "mode"]
    r = await server.client.get("/api/v1/labels", params={"match[]": "up"})
    assert ok(r) == ["__name__", "host", "job"]
    r = await server.client.get("/api/v1/label/__name__/values")
    assert ok(r) == ["cpu_seconds_total", "up"]
    r = await server.client.get("/api/v1/label/mode/values", params={"match[]": '{host="b"}'})
    assert ok(r) == ["user"]
    r = await server.client.get(
        "/api/v1/label/mode/values", params={"start": "1000", "end": "2000"}
    )
    assert ok(r) == []
    r = await server.client.get("/api/v1/label/no-such/values")
    assert err(r, 400, "bad_data") == 'invalid label name: "no-such"'


async def test_metadata_endpoint(server: Server) -> None:
    data = ok(await server.client.get("/api/v1/metadata"))
    assert data == {
        "cpu_seconds_total": [{"type": "counter", "help": "CPU time.", "unit": "seconds"}],
        "up": [{"type": "gauge", "help": "Up.", "unit": ""}],
    }
    assert list(ok(await server.client.get("/api/v1/metadata", params={"metric": "up"}))) == ["up"]
    assert len(ok(await server.client.get("/api/v1/metadata", params={"limit": "1"}))) == 1


async def test_exemplars_are_empty(server: Server) -> None:
    r = await server.client.get(
        "/api/v1/query_exemplars", params={"query": "up", "start": "0", "end": "10"}
    )
    assert ok(r) == []


async def test_status_endpoints(server: Server) -> None:
    build = ok(await server.client.get("/api/v1/status/buildinfo"))
    assert set(build) >= {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}
    assert build["version"].startswith("2.")
    runtime = ok(await server.client.get("/api/v1/status/runtimeinfo"))
    assert runtime["reloadConfigSuccess"] is True
    flags = ok(await server.client.get("/api/v1/status/flags"))
    assert flags["query.lookback-delta"] == "5m"
    assert flags["query.timeout"] == "2m"


# -- own endpoints ----------------------------------------------------------------------------


async def test_health_ready_metrics_reload(server: Server) -> None:
    c = server.client
    assert (await c.get("/healthz")).status_code == 200
    assert (await c.get("/readyz")).status_code == 200
    await c.get("/api/v1/labels")
    text = (await c.get("/metrics")).text
    assert 'vigil_web_http_requests_total{code="200",handler="/api/v1/labels"}' in text
    assert "vigil_web_http_request_duration_seconds_bucket" in text
    r = await c.post("/-/reload")
    assert r.status_code == 200, r.text
    assert "vigil_config_last_reload_successful 1.0" in (await c.get("/metrics")).text


async def test_reload_with_a_broken_file_keeps_the_old_config(server: Server) -> None:
    path = server.app.loaded.path
    assert path is not None
    path.write_text("visualization: {query_timeout: -1}\n", encoding="utf-8")
    r = await server.client.post("/-/reload")
    assert r.status_code == 500
    assert ok(await server.client.get("/api/v1/status/runtimeinfo"))["reloadConfigSuccess"] is False
    assert ok(await server.client.get("/api/v1/status/flags"))["query.timeout"] == "2m"


async def test_unknown_path_is_404(server: Server) -> None:
    assert (await server.client.get("/api/v1/nope")).status_code == 404


async def test_database_down_answers_503_unavailable(tmp_path: Path) -> None:
    app = App(web_config(tmp_path, "postgresql://nobody@127.0.0.1:1/none"), engine=FakeEngine())
    await app.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.port}", timeout=10) as c:
            r = await c.get("/api/v1/labels")
            assert "cannot list label names" in err(r, 503, "unavailable")
            assert (await c.get("/readyz")).status_code == 503
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await app.stop()
