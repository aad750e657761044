"""The package boundaries: shared/ is a leaf, services never import each other.

NATS is the only link between services. The agent goes on every host, so it
never imports a server-side dependency either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SERVICES = ("agent", "ingest", "alerter", "notifier", "web")
SERVER_ONLY_DEPS = {
    "asyncpg",
    "numpy",
    "fastapi",
    "uvicorn",
    "starlette",
    "promql_parser",
    "jinja2",
}


def imports_of(package: str) -> dict[str, set[str]]:
    """Top-level module names imported by each file of ``package``."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_shared_imports_no_service() -> None:
    bad = {
        f: names & set(SERVICES)
        for f, names in imports_of("shared").items()
        if names & set(SERVICES)
    }
    assert not bad, f"shared/ must not import services: {bad}"


@pytest.mark.parametrize("service", SERVICES)
def test_service_imports_no_other_service(service: str) -> None:
    others = set(SERVICES) - {service}
    bad = {f: names & others for f, names in imports_of(service).items() if names & others}
    assert not bad, f"{service}/ imports another service (talk over NATS instead): {bad}"


@pytest.mark.parametrize("package", ["agent", "shared"])
def test_agent_side_code_imports_no_server_dependency_at_module_level(package: str) -> None:
    """shared/ and agent/ run on every host; server-only libraries may be imported lazily only."""
    bad: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] in {("shared", "promql")}:
            continue  # the query engine is used by server-side services only
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top.add(node.module.split(".")[0])
        if top & SERVER_ONLY_DEPS:
            bad[str(rel)] = top & SERVER_ONLY_DEPS
    assert not bad, f"server-only dependencies imported at module level: {bad}"
