"""Every collector kind is registered, documented in docs/collectors.md, and its sample validates."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.collectors.registry import KINDS, MODULES

DOC = Path(__file__).parents[2] / "docs" / "collectors.md"
SAMPLE = re.compile(r"<!-- sample: (\S+) -->\n```yaml\n(.*?)```", re.DOTALL)


def samples() -> dict[str, str]:
    return dict(SAMPLE.findall(DOC.read_text(encoding="utf-8")))


def registry_keys() -> list[str]:
    return sorted(
        t if not kinds else f"{t}.{k}" for t, kinds in KINDS.items() for k in kinds or [t]
    )


def test_every_registered_kind_has_a_module_and_a_documented_sample() -> None:
    keys = registry_keys()
    assert sorted(MODULES) == keys
    missing = [key for key in keys if key not in samples()]
    assert not missing, f"kinds without a sample in docs/collectors.md: {missing}"
    for key, module in MODULES.items():
        __import__(module)  # every kind is built, none is "not in this build"
        assert key


@pytest.mark.parametrize("key", sorted(samples()))
def test_documented_sample_passes_check_config(key: str, tmp_path: Path) -> None:
    path = tmp_path / "vigil.yaml"
    path.write_text(samples()[key], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(path), "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "not available" not in result.stdout + result.stderr
