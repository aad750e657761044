"""The web UI: the built single-page app, its assets, and dashboards as data.

Routes, beside the Prometheus API on the same port:

- ``/`` — the app's ``index.html`` (pages are hash routes: ``/#/explore``).
  When the build output is missing it answers 503 with a page that says to
  run ``deploy/local/build-ui.sh``, never a 500.
- ``/assets/<file>`` — the bundle Vite wrote; names carry a content hash,
  so they are cached for a year.
- ``/api/vigil/dashboards`` — ``{"settings", "dashboards", "errors"}``: the
  built-in dashboards (``web/dashboards/*.yaml``) followed by the files the
  ``visualization.dashboards`` globs match (YAML or JSON, relative globs
  taken from the config file's folder). A user dashboard with a built-in's
  ``id`` replaces it. A file that does not parse or validate is left out and
  named in ``errors`` with the reason; the others are still served. Files are
  read on every request, so an edited dashboard shows on the next page load;
  a file whose text is the same as last time is not parsed again (the UI's
  first request waits for this answer, and parsing every file each time
  cost tens of milliseconds).

The build output is ``web/ui/dist`` (``deploy/local/build-ui.sh`` writes it,
git ignores it), or the folder in ``VIGIL_UI_DIR``.

Exceptions: none escape; a dashboard file's failure is data (``errors``).
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from fastapi import APIRouter, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.config.loader import LoadedConfig

BUILTIN_DIR = Path(__file__).parent / "dashboards"
DEFAULT_UI_DIR = Path(__file__).parent / "ui" / "dist"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vigil: UI not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em}
code{background:#eee;padding:.1em .3em;border-radius:3px}</style></head>
<body><h1>The Vigil UI is not built</h1>
<p>This server answers the Prometheus API (try <a href="/api/v1/labels">/api/v1/labels</a>),
but the web UI's files are missing from <code>{where}</code>.</p>
<p>Build them once (Node.js 20 and npm needed), then reload this page:</p>
<pre><code>deploy/local/build-ui.sh</code></pre>
</body></html>
"""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variable(_Model):
    """A drop-down filled by ``/api/v1/label/<values_of>/values?match[]=...``."""

    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", description="Used as $name in PromQL.")
    label: str | None = Field(default=None, description="Shown beside the drop-down.")
    values_of: str = Field(description="The label whose values are offered.")
    match: list[str] = Field(default_factory=list, description="Series selectors (match[]).")
    include_all: bool = Field(default=False, description="Offer All (the regex .*).")
    default: str | None = Field(default=None, description="Chosen when the URL names none.")


class Target(_Model):
    expr: str = Field(min_length=1, description="PromQL; $variables and $__rate_interval expand.")
    legend: str | None = Field(default=None, description='Series name template, "{{host}}".')


class Thresholds(_Model):
    warn: float | None = None
    crit: float | None = None


class Panel(_Model):
    title: str
    type: Literal["timeseries", "stat", "table"] = "timeseries"
    unit: str = Field(default="short", description="percent, percentunit, bytes, Bps, s, ...")
    width: int = Field(default=6, ge=1, le=12, description="Columns of 12.")
    description: str | None = None
    min: float | None = None
    max: float | None = None
    thresholds: Thresholds | None = None
    targets: list[Target] = Field(min_length=1)


class Dashboard(_Model):
    id: str = Field(pattern=r"^[a-zA-Z0-9_-]+$", description="The URL's /d/<id>.")
    title: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    variables: list[Variable] = Field(default_factory=list)
    panels: list[Panel] = Field(min_length=1)


def ui_dir() -> Path:
    env = os.environ.get("VIGIL_UI_DIR")
    return Path(env) if env else DEFAULT_UI_DIR


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it: the same documents, ten times faster."""


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader


def read_dashboard(path: Path) -> Dashboard:
    """One definition file; raises ``ValueError`` saying what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc
    return parse_dashboard(text, json_doc=path.suffix == ".json")


def parse_dashboard(text: str, *, json_doc: bool) -> Dashboard:
    """A definition's text, JSON or YAML; raises ``ValueError`` saying what is wrong."""
    try:
        doc = json.loads(text) if json_doc else _load_yaml(text)
        return Dashboard.model_validate(doc)
    except (ValueError, yaml.YAMLError) as exc:
        reason = str(exc).replace("\n", "; ") if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(reason) from exc


_parsed: dict[Path, tuple[str, Dashboard | None, str]] = {}
"""path -> (the text last parsed, its dashboard or None, why it failed)."""


def read_dashboard_cached(path: Path) -> Dashboard:
    """:func:`read_dashboard`, parsing again only when the file's text changed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc
    hit = _parsed.get(path)
    if hit is None or hit[0] != text:
        try:
            hit = (text, parse_dashboard(text, json_doc=path.suffix == ".json"), "")
        except ValueError as exc:
            hit = (text, None, str(exc))
        _parsed[path] = hit
    if hit[1] is None:
        raise ValueError(hit[2])
    return hit[1]


def user_files(loaded: LoadedConfig) -> list[Path]:
    found: list[Path] = []
    for pattern in loaded.config.visualization.dashboards:
        full = loaded.resolve(pattern)
        # Path.glob refuses absolute patterns, and config globs may well be absolute.
        found.extend(Path(p) for p in sorted(glob.glob(str(full), recursive=True)))  # noqa: PTH207
    return [p for p in dict.fromkeys(found) if p.is_file()]


def load_dashboards(loaded: LoadedConfig) -> dict[str, Any]:
    """The body of ``/api/vigil/dashboards``."""
    by_id: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, str]] = []
    sources = [(p, "built-in") for p in sorted(BUILTIN_DIR.glob("*.yaml"))]
    sources += [(p, str(p)) for p in user_files(loaded)]
    for path, source in sources:
        try:
            dash = read_dashboard_cached(path)
        except ValueError as exc:
            errors.append({"source": str(path), "error": str(exc)})
            continue
        by_id[dash.id] = {**dash.model_dump(exclude_none=True), "source": source}
    v = loaded.config.visualization
    return {
        "settings": {"refresh_interval": v.refresh_interval, "default_range": v.default_range},
        "dashboards": list(by_id.values()),
        "errors": errors,
    }


def build_router(config: Callable[[], LoadedConfig]) -> APIRouter:
    """``config`` returns the current configuration (it changes on reload)."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def index() -> Response:
        index = ui_dir() / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT.replace("{where}", str(ui_dir())), status_code=503)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    @router.get("/assets/{name:path}", include_in_schema=False)
    async def asset(name: str) -> Response:
        root = (ui_dir() / "assets").resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return Response("not found\n", status_code=404, media_type="text/plain")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    @router.get("/api/vigil/dashboards")
    async def dashboards() -> Response:
        body = await asyncio.to_thread(load_dashboards, config())
        return Response(json.dumps(body), media_type="application/json")

    return router
