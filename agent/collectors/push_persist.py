"""The push endpoint's groups on disk, so a restart or reload keeps what batch jobs pushed.

Like the Pushgateway's ``--persistence.file``: one JSON file, written whole
to a temporary file in the same folder and renamed over the old one (a crash
leaves the old or the new file, never a torn one). Floats use JSON's
``NaN``/``Infinity`` extensions, as Python's json reads and writes them.
The file keeps each group's Unix push time, so expiry goes on across
restarts. Format (``version`` 1)::

    {"version": 1, "groups": [{"labels": {"job": "backup"}, "pushed_unix": 1.7e9,
      "families": [{"name": "x", "type": "gauge", "help": null,
                    "samples": [["x", {"job": "backup"}, 1.0]]}]}]}

Errors::

    ValueError
     └── PersistError   the file cannot be read, parsed or written (message names it)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.collectors.push_store import SavedFamily, SavedGroup
from shared.wire import MetricType


class PersistError(ValueError):
    """The persistence file cannot be used; the message names it and says why."""


class _Family(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    type: MetricType
    help: str | None
    samples: list[tuple[str, dict[str, str], float]]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: dict[str, str]
    pushed_unix: float
    families: list[_Family]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    groups: list[_Group]


def load(path: Path) -> list[SavedGroup]:
    """The groups saved in ``path``; none if it does not exist; ``PersistError`` if unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise PersistError(f"cannot read push persistence file {path}: {exc}") from exc
    try:
        data = _File.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        reason = str(exc).splitlines()[0]
        raise PersistError(f"cannot parse push persistence file {path}: {reason}") from exc
    return [
        SavedGroup(
            g.labels,
            g.pushed_unix,
            [SavedFamily(f.name, f.type, f.help, f.samples) for f in g.families],
        )
        for g in data.groups
    ]


def save(path: Path, groups: list[SavedGroup]) -> None:
    """Write ``groups`` to ``path`` atomically; ``PersistError`` if that fails."""
    doc = {
        "version": 1,
        "groups": [
            {
                "labels": g.labels,
                "pushed_unix": g.pushed_unix,
                "families": [
                    {"name": f.name, "type": f.type, "help": f.help, "samples": f.samples}
                    for f in g.families
                ],
            }
            for g in groups
        ],
    }
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PersistError(f"cannot write push persistence file {path}: {exc}") from exc
