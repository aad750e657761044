"""deploy/compose/compose.yaml validates with Debian's docker-compose and wires every service.

`docker-compose config` needs no Docker engine; deploy/compose/install-docker-compose.sh
installs it (skipped with the reason when it is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.bus.natsconf import NatsDir, ServerOptions

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
SERVICES = ("ingest", "alerter", "notifier", "web")


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("no docker-compose (deploy/compose/install-docker-compose.sh installs it)")
    env = {**os.environ, "POSTGRES_PASSWORD": "pw-for-test"}
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_compose_config_succeeds_with_every_service(rendered: dict[str, Any]) -> None:
    assert set(rendered["services"]) == {"nats", "timescaledb", *SERVICES}


def test_ingest_runs_two_replicas_and_each_service_has_its_own_nats_creds(
    rendered: dict[str, Any],
) -> None:
    services = rendered["services"]
    assert services["ingest"]["deploy"]["replicas"] == 2
    for name in SERVICES:
        svc = services[name]
        assert svc["command"] == [f"vigil-{name}"]
        assert svc["secrets"] == [{"source": f"{name}_creds", "target": "nats.creds"}]
        assert svc["environment"]["VIGIL_NATS__CREDS_FILE"] == "/run/secrets/nats.creds"
        assert svc["environment"]["VIGIL_DATABASE_URL"].startswith(
            "postgresql://vigil:pw-for-test@"
        )
        assert rendered["secrets"][f"{name}_creds"]["file"].endswith(f"nats/creds/{name}.creds")


def test_timescaledb_is_the_official_timescale_licensed_image(rendered: dict[str, Any]) -> None:
    assert rendered["services"]["timescaledb"]["image"] == "timescale/timescaledb:latest-pg17"


def test_compose_without_the_database_password_fails_saying_so(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("no docker-compose")
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "--env-file", str(empty), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "POSTGRES_PASSWORD" in done.stderr


def test_the_documented_init_matches_what_the_nats_container_mounts(tmp_path: Path) -> None:
    # compose.yaml mounts nats-server.conf and accounts.conf, probes :8222/healthz and
    # keeps JetStream in the /data volume: the README's init line must produce that.
    options = ServerOptions(host="0.0.0.0", port=4222, http_port=8222, store_dir="/data/jetstream")
    setup = NatsDir.init(tmp_path / "nats", options)
    text = setup.server_conf.read_text(encoding="utf-8")
    assert "http_port: 8222" in text
    assert 'store_dir: "/data/jetstream"' in text
    assert "include accounts.conf" in text
    compose = COMPOSE.read_text(encoding="utf-8")
    assert "./nats/nats-server.conf:/etc/nats/nats-server.conf:ro" in compose
    assert "./nats/accounts.conf:/etc/nats/accounts.conf:ro" in compose
    readme = (COMPOSE.parent / "README.md").read_text(encoding="utf-8")
    assert "--listen 0.0.0.0:4222 --http-port 8222 --store-dir /data/jetstream" in readme
