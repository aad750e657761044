"""deploy/grafana: the JSON dashboards are generated from web/dashboards and stay in step;
every dashboard query parses as PromQL once its variables are expanded."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.promql.parse import parse
from web import ui

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"


@pytest.fixture(scope="module")
def generator() -> dict[str, Any]:
    return runpy.run_path(str(GRAFANA / "generate.py"))


def test_grafana_json_is_generated_from_the_yaml(generator: dict[str, Any]) -> None:
    assert generator["main"](["--check"]) == 0, "run deploy/grafana/generate.py"


def test_grafana_dashboards_use_the_provisioned_data_source() -> None:
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/vigil.yaml").read_text())
    uid = source["datasources"][0]["uid"]
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    titles = set()
    for f in files:
        d = json.loads(f.read_text())
        titles.add(d["title"])
        for p in d["panels"]:
            assert p["datasource"]["uid"] == uid
            assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
            assert p["targets"]
        for v in d["templating"]["list"]:
            assert v["query"]["query"].startswith("label_values(")
    assert {"System overview", "Application health", "Resource utilization"} <= titles
    assert {"Performance metrics", "Error rates"} <= titles


def expanded(expr: str) -> str:
    for name, value in (("$__rate_interval", "1m"), ("$__interval", "15s")):
        expr = expr.replace(name, value)
    for name in ("host", "job", "device"):
        expr = expr.replace(f"${name}", ".*")
    return expr


@pytest.mark.parametrize("path", sorted(ui.BUILTIN_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_dashboard_query_parses(path: Path) -> None:
    d = ui.read_dashboard(path)
    for p in d.panels:
        for t in p.targets:
            text = expanded(t.expr)
            assert "$" not in text, f"{p.title}: unknown variable in {t.expr}"
            parse(text)
