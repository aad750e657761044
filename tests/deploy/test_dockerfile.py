"""deploy/Dockerfile, read as text: no engine here to build it, so its promises are pinned.

Multi-stage (a wheel, then venvs), non-root, a health check, every package copied in.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def stages() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = match.group(1)
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def test_build_stage_makes_a_wheel_and_installs_the_server_extra() -> None:
    build = " ".join(stages()["build"])
    assert "pip wheel" in build
    assert "[server]" in build


def test_every_package_of_the_distribution_is_copied_into_the_build() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    build = stages()["build"]
    for package in packages:
        assert f"COPY {package} ./{package}" in build, package


def test_runtime_stages_run_as_non_root_with_a_health_check() -> None:
    for name in ("server", "agent"):
        lines = stages()[name]
        user = [line for line in lines if line.startswith("USER ")]
        assert user, name
        assert not user[-1].split()[1].startswith(("root", "0")), name
        assert any(line.startswith("HEALTHCHECK") for line in lines), name
        assert any(line.startswith("COPY --from=build") for line in lines), name
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "/healthz" in text
    assert text.rstrip().splitlines()[-1].startswith("CMD")  # the server stage is the default
