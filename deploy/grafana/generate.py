"""Write Grafana dashboards (deploy/grafana/dashboards/*.json) from Vigil's own (web/dashboards/*.yaml).

One source of truth: the YAML the Vigil UI draws. Run after editing a dashboard:

    .venv/bin/python deploy/grafana/generate.py           # rewrite the JSON files
    .venv/bin/python deploy/grafana/generate.py --check   # exit 1 if a file is stale

Mapping: 12 Vigil columns are 24 Grafana ones; a variable's ``values_of`` and
first ``match`` become ``label_values(<match>, <label>)``; All is ``.*`` as in
Vigil; ``$__rate_interval`` is Grafana's own. The data source is the one
``provisioning/datasources/vigil.yaml`` creates (uid ``vigil``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "web" / "dashboards"
TARGET = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "vigil"}
UNITS = {"bool": "bool_on_off"}
HEIGHT = {"timeseries": 8, "table": 8, "stat": 4}


def variable(v: dict[str, Any]) -> dict[str, Any]:
    match = (v.get("match") or [""])[0]
    query = (
        f"label_values({match}, {v['values_of']})" if match else f"label_values({v['values_of']})"
    )
    out: dict[str, Any] = {
        "name": v["name"],
        "label": v.get("label", v["name"]),
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "sort": 1,
        "multi": False,
        "includeAll": bool(v.get("include_all")),
    }
    if v.get("include_all"):
        out["allValue"] = ".*"
        out["current"] = {"text": "All", "value": "$__all"}
    return out


def panel(p: dict[str, Any], pid: int, x: int, y: int) -> dict[str, Any]:
    kind = p.get("type", "timeseries")
    defaults: dict[str, Any] = {"unit": UNITS.get(p.get("unit", "short"), p.get("unit", "short"))}
    for key in ("min", "max"):
        if key in p:
            defaults[key] = p[key]
    if thresholds := p.get("thresholds"):
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        if "warn" in thresholds:
            steps.append({"color": "orange", "value": thresholds["warn"]})
        if "crit" in thresholds:
            steps.append({"color": "red", "value": thresholds["crit"]})
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
    out: dict[str, Any] = {
        "id": pid,
        "type": kind,
        "title": p["title"],
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": 2 * p.get("width", 6), "h": HEIGHT[kind]},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": t["expr"],
                "legendFormat": t.get("legend", "__auto"),
                "range": kind == "timeseries",
                "instant": kind != "timeseries",
            }
            for i, t in enumerate(p["targets"])
        ],
    }
    if p.get("description"):
        out["description"] = p["description"]
    if kind == "table":
        out["transformations"] = [{"id": "reduce", "options": {"reducers": ["lastNotNull"]}}]
    return out


def dashboard(d: dict[str, Any]) -> dict[str, Any]:
    panels, x, y, row_h = [], 0, 0, 0
    for i, p in enumerate(d["panels"], start=1):
        w, h = 2 * p.get("width", 6), HEIGHT[p.get("type", "timeseries")]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        panels.append(panel(p, i, x, y))
        x, row_h = x + w, max(row_h, h)
    return {
        "uid": d["id"],
        "title": d["title"],
        "description": d.get("description", ""),
        "tags": ["vigil", *d.get("tags", [])],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "5s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [variable(v) for v in d.get("variables", [])]},
        "panels": panels,
    }


def render_all() -> dict[Path, str]:
    out = {}
    for src in sorted(SOURCE.glob("*.yaml")):
        doc = yaml.safe_load(src.read_text(encoding="utf-8"))
        out[TARGET / f"{doc['id']}.json"] = json.dumps(dashboard(doc), indent=2) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    wanted = render_all()
    stale = [
        p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text
    ]
    extra = [p for p in TARGET.glob("*.json") if p not in wanted]
    if args.check:
        for p in stale + extra:
            sys.stderr.write(f"stale: {p.relative_to(ROOT)} (run deploy/grafana/generate.py)\n")
        return 1 if stale or extra else 0
    TARGET.mkdir(exist_ok=True)
    for p in stale:
        p.write_text(wanted[p], encoding="utf-8")
    for p in extra:
        p.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
