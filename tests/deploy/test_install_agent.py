"""deploy/install/install-agent.sh: syntax, and a dry run into a temporary prefix.

The dry run writes the files it would write (under the prefix) and prints the commands
that would change the system (venv, pip, systemctl) instead of running them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from shared.config.loader import load_config

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "deploy" / "install" / "install-agent.sh"


def bash() -> str:
    found = shutil.which("bash")
    if found is None:
        pytest.skip("no bash")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [bash(), str(SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_script_parses() -> None:
    done = subprocess.run([bash(), "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_dry_run_installs_config_creds_and_unit_under_the_prefix(tmp_path: Path) -> None:
    creds = tmp_path / "web-1.creds"
    creds.write_text("creds\n", encoding="utf-8")
    root = tmp_path / "root"
    done = run(
        "--prefix", str(root), "--dry-run", "--creds", str(creds),
        "--server", "nats://nats.example.com:4222", "--inbox-prefix", "_INBOX_web-1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"would run: python3 -m venv {root}/opt/vigil-agent" in done.stdout
    assert "would run: systemctl enable --now vigil-agent.service" in done.stdout
    installed = root / "etc" / "vigil" / "agent.creds"
    assert installed.read_text(encoding="utf-8") == "creds\n"
    assert installed.stat().st_mode & 0o777 == 0o600
    unit = (root / "etc/systemd/system/vigil-agent.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/vigil-agent/bin/vigil-agent --config /etc/vigil/agent.yaml" in unit
    dropin = root / "etc/systemd/system/vigil-agent.service.d/credentials.conf"
    assert "LoadCredential=nats.creds:/etc/vigil/agent.creds" in dropin.read_text(encoding="utf-8")
    # the written configuration is valid Vigil configuration
    config = load_config(str(root / "etc" / "vigil" / "agent.yaml")).config
    assert config.nats.servers == ["nats://nats.example.com:4222"]
    assert config.nats.inbox_prefix == "_INBOX_web-1"
    assert str(config.nats.creds_file) == "/run/credentials/vigil-agent.service/nats.creds"


def test_existing_config_is_kept_and_uninstall_keeps_it_unless_purged(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc" / "vigil").mkdir(parents=True)
    (root / "etc" / "vigil" / "agent.yaml").write_text("log: {level: debug}\n", encoding="utf-8")
    assert run("--prefix", str(root), "--dry-run").returncode == 0
    assert (root / "etc/vigil/agent.yaml").read_text(encoding="utf-8") == "log: {level: debug}\n"
    assert (root / "etc/systemd/system/vigil-agent.service").exists()
    done = run("--prefix", str(root), "--dry-run", "--uninstall")
    assert done.returncode == 0, done.stderr
    assert "would run: systemctl disable --now vigil-agent.service" in done.stdout
    assert not (root / "etc/systemd/system/vigil-agent.service").exists()
    assert (root / "etc/vigil/agent.yaml").exists()
    assert run("--prefix", str(root), "--dry-run", "--uninstall", "--purge").returncode == 0
    assert not (root / "etc/vigil").exists()


def test_generated_config_without_options_is_valid(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert run("--prefix", str(root), "--dry-run").returncode == 0
    load_config(str(root / "etc" / "vigil" / "agent.yaml"))


def test_creds_without_inbox_prefix_is_refused(tmp_path: Path) -> None:
    creds = tmp_path / "h.creds"
    creds.write_text("x", encoding="utf-8")
    done = run("--prefix", str(tmp_path / "r"), "--dry-run", "--creds", str(creds))
    assert done.returncode == 1
    assert "--inbox-prefix" in done.stderr
