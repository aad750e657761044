"""Meta-test: every receiver module is registered, documented and has a sample config."""

from __future__ import annotations

import importlib
from pathlib import Path

import notifier.receivers
from notifier.config.receivers import DELIVERABLE, INTEGRATION_TYPES
from notifier.receivers.registry import REGISTRY

INFRA = {"__init__", "base", "http", "registry"}
SAMPLES = Path(__file__).parent.parent / "testdata" / "alertmanager" / "good"


def _modules() -> set[str]:
    folder = Path(notifier.receivers.__file__).parent
    return {p.stem for p in folder.glob("*.py")} - INFRA


def test_every_receiver_module_is_registered_and_deliverable() -> None:
    assert _modules() == set(REGISTRY) == set(DELIVERABLE)
    for kind in REGISTRY:
        assert f"{kind}_configs" in INTEGRATION_TYPES


def test_every_receiver_module_is_documented_and_has_a_sample_config() -> None:
    samples = "".join(p.read_text() for p in SAMPLES.glob("*.yml"))
    for name in _modules():
        module = importlib.import_module(f"notifier.receivers.{name}")
        assert len(module.__doc__ or "") > 80, name
        assert f"{name}_configs:" in samples, name
