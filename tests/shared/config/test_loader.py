"""Loading: defaults, environment overrides, secrets from files, paths of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import load_config
from shared.config.models import DEFAULT_INTERVALS, CollectorConfig
from shared.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    return dict(info.value.problems)


def test_defaults_monitor_this_host_with_no_file() -> None:
    cfg = load_config(None, {}).config
    assert [c.type for c in cfg.collectors] == ["system"]
    assert cfg.nats.servers == ["nats://127.0.0.1:4222"]
    assert cfg.storage.retention.raw == 15 * 86400
    assert cfg.storage.retention.rollup_1m == 90 * 86400
    assert cfg.storage.retention.rollup_1h == 3 * 365 * 86400


@pytest.mark.parametrize(("kind", "seconds"), sorted(DEFAULT_INTERVALS.items()))
def test_collector_interval_defaults_by_type(kind: str, seconds: float) -> None:
    assert CollectorConfig(type=kind).effective_interval == seconds  # type: ignore[arg-type]


def test_interval_accepts_prometheus_durations_and_seconds(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "collectors:\n - {type: system, interval: 1m}\n - {type: network, interval: 5}\n",
        ),
        {},
    ).config
    assert [c.effective_interval for c in cfg.collectors] == [60.0, 5.0]


def test_environment_overrides_file_values(tmp_path: Path) -> None:
    path = write(
        tmp_path, "nats: {prefix: fromfile}\nlog: {level: info}\ncollectors: [{type: system}]\n"
    )
    env = {
        "VIGIL_NATS__PREFIX": "fromenv",
        "VIGIL_NATS__SERVERS": '["nats://10.1.1.1:4222", "nats://10.1.1.2:4222"]',
        "VIGIL_LOG__LEVEL": "debug",
        "VIGIL_COLLECTORS__0__INTERVAL": "7",
        "VIGIL_DATABASE_URL": "postgresql://u@127.0.0.1/db",
        "VIGIL_UNRELATED": "ignored",
    }
    cfg = load_config(path, env).config
    assert cfg.nats.prefix == "fromenv"
    assert cfg.nats.servers == ["nats://10.1.1.1:4222", "nats://10.1.1.2:4222"]
    assert cfg.log.level == "debug"
    assert cfg.collectors[0].interval == 7
    assert cfg.storage.database_url is not None
    assert cfg.storage.database_url.get_secret_value() == "postgresql://u@127.0.0.1/db"


def test_bad_environment_override_names_the_field(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, ""), {"VIGIL_NATS__PREFIX": "a.b"})
    assert "nats.prefix" in problems


def test_secret_from_file_relative_to_config_and_hidden_in_repr(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2\n", encoding="utf-8")
    cfg = load_config(write(tmp_path, "nats: {user: u, password_file: pw}\n"), {}).config
    assert cfg.nats.password is not None
    assert cfg.nats.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(cfg)
    assert "hunter2" not in cfg.model_dump_json()


def test_secret_and_secret_file_together_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="either password or password_file"):
        load_config(write(tmp_path, "nats: {user: u, password: y, password_file: pw}\n"), {})


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    problems = problems_of(
        write(
            tmp_path,
            "collectors: [{type: system, interval: 0}]\nnats: {prefix: 'a b'}\nlog: {level: loud}\n",
        )
    )
    assert {"collectors[0].interval", "nats.prefix", "log.level"} <= set(problems)


def test_unknown_keys_are_rejected_by_path(tmp_path: Path) -> None:
    problems = problems_of(
        write(tmp_path, "storage: {retention: {raw: 1d, rollup_1m: 2d, rolup_1h: 3d}}\n")
    )
    assert "storage.retention.rolup_1h" in problems


def test_duplicate_collector_names_rejected(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, "collectors: [{type: network}, {type: network}]\n"))
    assert "collectors" in problems
    assert "named 'network'" in problems["collectors"]


def test_alertmanager_config_inline_or_path(tmp_path: Path) -> None:
    inline = load_config(
        write(tmp_path, "alerting: {alertmanager_config: {route: {receiver: x}}}\n"), {}
    )
    assert isinstance(inline.config.alerting.alertmanager_config, dict)
    path = load_config(write(tmp_path, "alerting: {alertmanager_config: am.yml}\n"), {})
    assert path.resolve(str(path.config.alerting.alertmanager_config)) == tmp_path / "am.yml"


def test_yaml_error_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 3"):
        load_config(write(tmp_path, "log:\n  level: [unclosed\nnats: {}\n"), {})


def test_config_is_immutable() -> None:
    cfg = load_config(None, {}).config
    with pytest.raises(ValueError, match="frozen"):
        cfg.log.level = "debug"  # type: ignore[misc]
