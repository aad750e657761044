"""Targets of a collector: its static ``targets`` plus Prometheus file_sd files.

A collector that takes targets builds one ``TargetSource`` from its config's
``targets`` and ``options.target_files`` (glob patterns) and calls
``refresh()`` once per cycle (it stats files: run it in a thread). The files
are in Prometheus' ``file_sd_configs`` format, YAML (``.yml``/``.yaml``, or
any other name) or JSON (``.json``)::

    - targets: ["/usr/local/bin/check_queue --name jobs"]
      labels: {team: payments}

Contract:

- A file is read again only when its mtime, size or inode changed, so a
  refresh of unchanged files costs one ``stat`` each. Globs are expanded on
  every refresh: a new file adds its targets, a deleted one removes them.
- A file that cannot be read or parsed keeps its last good targets (none if
  it never parsed); that is logged once when it starts failing and once when
  it is good again.
- Order: static targets first, then files by path, groups and targets in file
  order; an identical (target, labels) pair is listed once.
- Relative patterns are relative to the working directory (the agent's
  config model does not carry the config file's folder to collectors): use
  absolute paths.
- Not thread-safe: one refresh at a time (one per collector cycle).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from shared.log import get_logger
from shared.wire import LABEL_NAME_RE

log = get_logger(__name__)

MAX_FILE_BYTES: Final = 4 * 1024 * 1024
"""A target file larger than this is an error (and keeps its last good targets)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One target and the labels its file gave it (empty for static targets)."""

    target: str
    labels: Mapping[str, str]


class TargetGroup(BaseModel):
    """One entry of a file_sd file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: list[str] = Field(description="Targets sharing the labels below.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of those targets.")

    @field_validator("labels")
    @classmethod
    def _legal_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not LABEL_NAME_RE.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"invalid label name {name!r}")
        return v


_GROUPS = TypeAdapter(list[TargetGroup])
_Stamp = tuple[int, int, int]  # (mtime_ns, size, inode)


@dataclass(slots=True)
class _FileState:
    stamp: _Stamp | None
    targets: list[Target]
    failing: bool = False


class TargetSource:
    """Static targets plus those of the files matching ``patterns``; see the module docstring.

    ``owner`` names the collector in log lines.
    """

    def __init__(self, static: Sequence[str], patterns: Sequence[str], *, owner: str) -> None:
        self.owner = owner
        self.patterns = list(patterns)
        self._static = [Target(t, {}) for t in static]
        self._files: dict[str, _FileState] = {}
        self._targets: list[Target] = _dedupe(self._static)

    @property
    def targets(self) -> list[Target]:
        """The targets as of the last ``refresh`` (the static ones before the first)."""
        return self._targets

    def refresh(self) -> list[Target]:
        """Re-check the files (stat, and read the changed ones); return the current targets."""
        if not self.patterns:
            return self._targets
        paths = sorted({p for pattern in self.patterns for p in glob.glob(pattern)})  # noqa: PTH207 - patterns may be absolute; Path.glob takes relative ones only
        files: dict[str, _FileState] = {}
        for path in paths:
            files[path] = self._check(path, self._files.get(path))
        for gone in self._files.keys() - files.keys():
            if self._files[gone].failing:
                log.info("target file is gone", collector=self.owner, file=gone)
        self._files = files
        merged = list(self._static)
        for state in files.values():
            merged += state.targets
        self._targets = _dedupe(merged)
        return self._targets

    def _check(self, path: str, state: _FileState | None) -> _FileState:
        try:
            st = os.stat(path)  # noqa: PTH116 - one syscall per file per cycle, no Path objects
        except OSError as exc:
            return self._failed(path, state, f"cannot stat: {exc.strerror or exc}")
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if state is not None and state.stamp == stamp:
            return state
        try:
            targets = _read(Path(path), st.st_size)
        except ValueError as exc:
            failed = self._failed(path, state, str(exc))
            failed.stamp = stamp  # not read again until it changes
            return failed
        if state is not None and state.failing:
            log.info("target file read again", collector=self.owner, file=path)
        return _FileState(stamp, targets)

    def _failed(self, path: str, state: _FileState | None, reason: str) -> _FileState:
        if state is None or not state.failing:
            log.warning(
                "cannot read target file, keeping its last good targets",
                collector=self.owner,
                file=path,
                reason=reason,
            )
        return _FileState(
            state.stamp if state else None, state.targets if state else [], failing=True
        )


def _read(path: Path, size: int) -> list[Target]:
    if size > MAX_FILE_BYTES:
        raise ValueError(f"file is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read: {exc}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        groups = _GROUPS.validate_python(data if data is not None else [])
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot parse: {str(exc).splitlines()[0]}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"cannot parse: [{where}]: {first['msg']}") from exc
    return [Target(t, g.labels) for g in groups for t in g.targets]


def _dedupe(targets: list[Target]) -> list[Target]:
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    out: list[Target] = []
    for t in targets:
        key = (t.target, frozenset(t.labels.items()))
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out
