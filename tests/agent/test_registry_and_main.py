"""Collector kinds resolve to factories; --check-config builds each collector."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.__main__ import main
from agent.collectors.base import Registry
from agent.collectors.registry import Unavailable, build, default_registry, kind_of
from agent.collectors.static import StaticCollector
from agent.errors import CollectorBuildError
from shared.config.models import CollectorConfig


def cc(type_: str, **kw: object) -> CollectorConfig:
    return CollectorConfig.model_validate({"type": type_, **kw})


def test_kinds_default_per_type_and_options_kind_selects_one() -> None:
    assert kind_of(cc("system")) == "system"
    assert kind_of(cc("application")) == "application.scrape"
    assert kind_of(cc("application", options={"kind": "process"})) == "application.process"
    assert kind_of(cc("custom")) == "custom.exec"
    assert kind_of(cc("custom", options={"kind": "static"})) == "custom.static"
    with pytest.raises(CollectorBuildError, match=r"options\.kind 'nope' is not one of"):
        kind_of(cc("custom", options={"kind": "nope"}))


def test_every_kind_has_a_factory_in_the_default_registry() -> None:
    assert set(default_registry().factories) >= {
        "system",
        "application.scrape",
        "application.process",
        "network",
        "custom.exec",
        "custom.statsd",
        "custom.push",
        "custom.static",
    }


def test_static_collector_builds_and_bad_options_name_the_field() -> None:
    reg = default_registry()
    got = build(
        reg, cc("custom", options={"kind": "static", "samples": [{"name": "x", "value": 1}]})
    )
    assert isinstance(got, StaticCollector)
    with pytest.raises(CollectorBuildError, match=r"options.samples.0.value"):
        build(reg, cc("custom", options={"kind": "static", "samples": [{"name": "x"}]}))


def test_a_kind_without_factory_is_reported_unavailable() -> None:
    with pytest.raises(Unavailable, match="no factory registered"):
        build(Registry(), cc("system"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_config_builds_collectors_and_fails_on_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(
        tmp_path,
        "collectors:\n  - {type: custom, options: {kind: static, samples: [{name: x, value: 1}]}}\n",
    )
    assert main(["--config", str(good), "--check-config"]) == 0
    assert "SUCCESS" in capsys.readouterr().out
    bad = write(tmp_path, "collectors:\n  - {type: custom, options: {kind: static, color: red}}\n")
    assert main(["--config", str(bad), "--check-config"]) == 1
    err = capsys.readouterr().err
    assert "collectors[0]" in err
    assert "options.color" in err
