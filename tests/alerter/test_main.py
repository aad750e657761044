"""``vigil-alerter --check-config`` checks the rule files too."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerter.__main__ import main


def _config(tmp_path: Path, rules: str) -> str:
    (tmp_path / "rules.yml").write_text(rules)
    path = tmp_path / "vigil.yml"
    path.write_text("alerting:\n  rule_files: [rules.yml]\n")
    return str(path)


def test_check_config_passes_good_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = "groups: [{name: g, rules: [{alert: A, expr: 'up == 0'}]}]\n"
    assert main(["--config", _config(tmp_path, good), "--check-config"]) == 0
    assert "SUCCESS" in capsys.readouterr().out


def test_check_config_fails_on_a_bad_rule_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "groups: [{name: g, rules: [{alert: A, expr: 'sum('}]}]\n"
    assert main(["--config", _config(tmp_path, bad), "--check-config"]) == 1
    assert "rules.yml" in capsys.readouterr().err
