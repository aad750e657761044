"""``vigil check-config`` on the good and bad samples under tests/testdata/config/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parents[2] / "testdata" / "config"
GOOD = sorted((DATA / "good").glob("*.yaml"))
BAD = sorted((DATA / "bad").glob("*.yaml"))


def expected_paths(sample: Path) -> list[str]:
    return re.findall(r"^# expect: (.+)$", sample.read_text(encoding="utf-8"), re.MULTILINE)


def run_check(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "check-config", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_samples_exist() -> None:
    assert len(GOOD) >= 3
    assert len(BAD) >= 5
    for sample in BAD:
        assert expected_paths(sample), f"{sample.name} has no '# expect:' lines"


@pytest.mark.parametrize("sample", GOOD, ids=lambda p: p.name)
def test_good_sample_exits_zero(sample: Path) -> None:
    result = run_check(sample)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("sample", BAD, ids=lambda p: p.name)
def test_bad_sample_exits_non_zero_naming_each_bad_field(sample: Path) -> None:
    result = run_check(sample)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "FAILED" in lines[0]
    problem_lines = [line.strip() for line in lines[1:]]
    for path in expected_paths(sample):
        assert any(line.startswith((f"{path}:", path + " ")) for line in problem_lines), (
            f"{path!r} not named in:\n{result.stdout}"
        )


def test_several_files_fail_if_any_fails() -> None:
    result = run_check(GOOD[0], BAD[0])
    assert result.returncode == 1
    assert "SUCCESS" in result.stdout
    assert "FAILED" in result.stdout


def test_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    result = run_check(tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert "cannot read" in result.stdout
    assert "Traceback" not in result.stderr
