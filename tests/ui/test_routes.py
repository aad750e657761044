"""``web.ui``'s routes: the app, its assets, the not-built page, dashboards as data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI

from shared.config.loader import LoadedConfig, load_config
from web import ui


def config(tmp_path: Path, **visualization: object) -> LoadedConfig:
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({"visualization": visualization}), encoding="utf-8")
    return load_config(path, env={})


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>Vigil</title>", encoding="utf-8")
    (dist / "assets" / "index-abc.js").write_text("console.log(1)", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("no", encoding="utf-8")
    monkeypatch.setenv("VIGIL_UI_DIR", str(dist))
    return dist


async def client_for(loaded: LoadedConfig) -> AsyncIterator[httpx.AsyncClient]:
    api = FastAPI()
    api.include_router(ui.build_router(lambda: loaded))
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as c:
        yield c


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(config(tmp_path)):
        yield c


async def test_index_and_assets_are_served_from_the_build(
    built: Path, client: httpx.AsyncClient
) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    assert "<title>Vigil</title>" in r.text
    r = await client.get("/assets/index-abc.js")
    assert r.status_code == 200
    assert "immutable" in r.headers["cache-control"]


async def test_assets_outside_the_build_folder_are_not_served(
    built: Path, client: httpx.AsyncClient
) -> None:
    for path in ("/assets/../../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/assets/nope.js"):
        r = await client.get(path)
        assert r.status_code == 404, path


async def test_missing_build_answers_a_page_naming_the_build_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("VIGIL_UI_DIR", str(tmp_path / "not-there"))
    r = await client.get("/")
    assert r.status_code == 503
    assert "deploy/local/build-ui.sh" in r.text
    assert (await client.get("/assets/index.js")).status_code == 404


async def test_builtin_dashboards_are_the_five_templates_and_host_detail(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/vigil/dashboards")).json()
    assert body["errors"] == []
    assert body["settings"] == {"refresh_interval": 2.0, "default_range": 3600.0}
    titles = {d["title"] for d in body["dashboards"]}
    assert titles == {
        "System overview",
        "Application health",
        "Resource utilization",
        "Performance metrics",
        "Error rates",
        "Host detail",
    }
    for d in body["dashboards"]:
        assert d["source"] == "built-in"
        assert all(p["targets"] for p in d["panels"])


async def test_user_dashboards_come_from_the_globs_and_bad_files_are_reported(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "queues",
                "title": "Queues",
                "panels": [{"title": "Depth", "targets": [{"expr": "q"}]}],
            }
        ),
        encoding="utf-8",
    )
    (folder / "b.json").write_text(
        json.dumps(
            {
                "id": "host-detail",
                "title": "My host detail",
                "panels": [{"title": "Load", "targets": [{"expr": "node_load1"}]}],
            }
        ),
        encoding="utf-8",
    )
    (folder / "c.yaml").write_text("id: broken\ntitle: Broken\npanels: []\n", encoding="utf-8")
    (folder / "d.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    loaded = config(tmp_path, dashboards=["mine/*.yaml", str(folder / "*.json")])
    async for client in client_for(loaded):
        body = (await client.get("/api/vigil/dashboards")).json()
    by_id = {d["id"]: d for d in body["dashboards"]}
    assert by_id["queues"]["source"] == str(folder / "a.yaml")
    assert by_id["host-detail"]["title"] == "My host detail"
    failed = {Path(e["source"]).name: e["error"] for e in body["errors"]}
    assert set(failed) == {"c.yaml", "d.yaml"}
    assert "panels" in failed["c.yaml"]


def test_every_builtin_dashboard_validates() -> None:
    files = sorted(ui.BUILTIN_DIR.glob("*.yaml"))
    assert len(files) == 6
    ids = [ui.read_dashboard(f).id for f in files]
    assert sorted(ids) == sorted(f.stem for f in files)
