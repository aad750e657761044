"""An agent-only install: no database driver, no web framework, no numeric library.

Agents go on every host, so the base distribution must stay light. This
builds Vigil from a copy of the source into a fresh virtualenv with only the
base dependencies, as a host would install it, and checks what came along.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("shared", "agent", "ingest", "alerter", "notifier", "web")


def test_agent_install_pulls_no_server_dependency_and_checks_config(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(src)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    probe = subprocess.run(
        [
            str(py),
            "-c",
            "import importlib.util as u; print(*[m for m in ('asyncpg','numpy','fastapi','uvicorn','promql_parser')"
            " if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip() == "", (
        f"server-side packages installed with the agent: {probe.stdout}"
    )

    sample = ROOT / "tests" / "testdata" / "config" / "good" / "full.yaml"
    check = subprocess.run(
        [str(venv / "bin" / "vigil-agent"), "--config", str(sample), "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout
