"""``custom`` collector of kind ``static``: fixed samples, inline or from a file re-read each cycle.

For tests, demos and hand-kept facts (a host's rack, a maintenance flag).
The file, when given, is YAML: a list of samples in the same shape as the
inline ones, read again every cycle, so editing it adds, changes and removes
series (removed ones get staleness markers like any other). A missing or
malformed file fails the cycle (logged once, counted) and leaves the series
alone. Sample config::

    collectors:
      - type: custom
        name: facts
        interval: 30
        options:
          kind: static
          samples:
            - {name: site_info, labels: {rack: r12}, value: 1}
          file: /etc/vigil/facts.yaml
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agent.collectors.base import Sample
from shared.config.models import CollectorConfig
from shared.wire import MetricType


class StaticSample(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Metric name.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of the series.")
    value: float = Field(description="The value sent every cycle.")
    type: MetricType = Field(default="gauge", description="Metric type.")
    help: str | None = Field(default=None, description="Help text.")


class StaticOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["static"] = "static"
    samples: list[StaticSample] = Field(default_factory=list, description="Inline samples.")
    file: Path | None = Field(default=None, description="YAML list of samples, read each cycle.")


_FILE = TypeAdapter(list[StaticSample])


class StaticCollector:
    def __init__(self, options: StaticOptions) -> None:
        self.options = options

    async def collect(self) -> list[Sample]:
        items = list(self.options.samples)
        if self.options.file is not None:
            items += await asyncio.to_thread(_read, self.options.file)
        return [Sample(s.name, s.labels, s.value, type=s.type, help=s.help) for s in items]

    async def close(self) -> None:
        return None


def _read(path: Path) -> list[StaticSample]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        return _FILE.validate_python(data)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from exc


def create(config: CollectorConfig) -> StaticCollector:
    try:
        options = StaticOptions.model_validate(config.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"options.{where}: {first['msg']}") from exc
    return StaticCollector(options)
