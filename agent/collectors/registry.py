"""The default collector registry: which factory builds each configured collector.

A collector config's ``type`` names a family; families with several kinds
choose one with ``options.kind``::

    type         kinds (default first)        module
    system       -                            agent.collectors.system
    application  scrape | process             agent.collectors.scrape / .process
    network      -                            agent.collectors.network
    custom       exec | statsd | push | static  agent.collectors.exec / .statsd / .push / .static

Each module exposes ``create(config: CollectorConfig) -> Collector`` and is
imported only when a collector of its kind is built, so a host pays only for
the collectors it runs, and a kind whose module is not in this build yet is
reported as unavailable instead of breaking the import of the agent.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from agent.collectors.base import Collector, CollectorFactory, Registry
from agent.errors import CollectorBuildError
from shared.config.models import CollectorConfig

KINDS: dict[str, tuple[str, ...]] = {
    "system": (),
    "application": ("scrape", "process"),
    "network": (),
    "custom": ("exec", "statsd", "push", "static"),
}
"""Kinds per type; the first is the default when ``options.kind`` is absent."""

MODULES: dict[str, str] = {
    "system": "agent.collectors.system",
    "application.scrape": "agent.collectors.scrape",
    "application.process": "agent.collectors.process",
    "network": "agent.collectors.network",
    "custom.exec": "agent.collectors.exec",
    "custom.statsd": "agent.collectors.statsd",
    "custom.push": "agent.collectors.push",
    "custom.static": "agent.collectors.static",
}


class Unavailable(CollectorBuildError):
    """The kind is known but its module is not part of this build."""


def kind_of(config: CollectorConfig) -> str:
    """The registry key of ``config``: ``type`` or ``type.kind``."""
    kinds = KINDS[config.type]
    if not kinds:
        return config.type
    kind = config.options.get("kind", kinds[0])
    if kind not in kinds:
        raise CollectorBuildError(
            config.effective_name,
            f"cannot build collector {config.effective_name}: options.kind {kind!r} is not one of "
            f"{', '.join(kinds)}",
        )
    return f"{config.type}.{kind}"


def _lazy(kind: str, module: str) -> CollectorFactory:
    def factory(config: CollectorConfig) -> Collector:
        try:
            mod: Any = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise  # the module exists but something it imports does not: a real error
            raise Unavailable(
                config.effective_name,
                f"cannot build collector {config.effective_name}: kind {kind} is not available "
                f"in this build (no module {module})",
            ) from exc
        return cast(Collector, mod.create(config))

    return factory


def default_registry() -> Registry:
    registry = Registry()
    for kind, module in MODULES.items():
        registry.register(kind, _lazy(kind, module))
    return registry


def build(registry: Registry, config: CollectorConfig) -> Collector:
    """Build one collector; ``CollectorBuildError`` naming it if that fails."""
    kind = kind_of(config)
    factory = registry.factories.get(kind)
    if factory is None:
        raise Unavailable(
            config.effective_name,
            f"cannot build collector {config.effective_name}: no factory registered for {kind}",
        )
    try:
        return factory(config)
    except CollectorBuildError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise CollectorBuildError(
            config.effective_name, f"cannot build collector {config.effective_name}: {exc}"
        ) from exc
