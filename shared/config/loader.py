"""Load the YAML file, apply environment overrides, validate.

Environment overrides, applied after the file and before validation:

- ``VIGIL_<SECTION>__<FIELD>[__<SUBFIELD>...]=value`` sets that field, e.g.
  ``VIGIL_NATS__SERVERS='["nats://10.0.0.5:4222"]'`` or
  ``VIGIL_LOG__LEVEL=debug``; a list element is addressed by its index
  (``VIGIL_COLLECTORS__0__INTERVAL=5``). The value is read as YAML, so
  numbers, lists and mappings work; anything else stays a string.
- ``VIGIL_DATABASE_URL`` sets ``storage.database_url``.

Every problem is reported at once with the dotted path of the bad field
(``collectors[1].interval``), so ``vigil check-config`` can list them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shared.config.models import VigilConfig
from shared.errors import ConfigError

ENV_PREFIX = "VIGIL_"
ENV_ALIASES: dict[str, tuple[str, ...]] = {"VIGIL_DATABASE_URL": ("storage", "database_url")}


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated configuration and where it came from."""

    config: VigilConfig
    path: Path | None
    base_dir: Path

    def resolve(self, relative: str | Path) -> Path:
        """A path named in the config, taken from the config file's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def format_loc(loc: tuple[int | str, ...]) -> str:
    """``("collectors", 1, "interval")`` -> ``collectors[1].interval``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _env_overrides(env: Mapping[str, str]) -> list[tuple[tuple[str, ...], Any, str]]:
    found: list[tuple[tuple[str, ...], Any, str]] = []
    for key in sorted(env):
        if key in ENV_ALIASES:
            found.append((ENV_ALIASES[key], env[key], key))
        elif key.startswith(ENV_PREFIX) and "__" in key:
            parts = tuple(p.lower() for p in key[len(ENV_PREFIX) :].split("__"))
            if all(parts):
                found.append((parts, _yaml_scalar(env[key]), key))
    return found


def _yaml_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any, var: str) -> None:
    node: Any = data
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"cannot apply {var}: no list element {part!r}", [(var, "no such element")]
                )
            idx = int(part)
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict | list):
                    node[part] = {}
                node = node[part]
        else:
            raise ConfigError(
                f"cannot apply {var}: {'.'.join(path[:i])} is not a section",
                [(var, "not a section")],
            )


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse the file's text; a YAML error names the line and column."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = (
            f"line {mark.line + 1} column {mark.column + 1}"
            if mark is not None
            else "unknown position"
        )
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"cannot parse {source}: {where}: {problem}", [(where, str(problem))]
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"cannot load {source}: the top level must be a mapping of sections, got {type(data).__name__}",
            [("(top level)", "must be a mapping")],
        )
    return data


def _message(msg: str) -> str:
    # pydantic prefixes errors raised in validators; the path already says where.
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def validate(data: dict[str, Any], *, base_dir: Path, source: str) -> VigilConfig:
    """Validate a raw mapping; every problem is collected into one ConfigError."""
    try:
        return VigilConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = [
            (format_loc(tuple(e["loc"])), _message(e["msg"])) for e in exc.errors(include_url=False)
        ]
        lines = "\n".join(f"  {p}: {m}" for p, m in problems)
        raise ConfigError(
            f"cannot load {source}: {len(problems)} invalid field(s):\n{lines}", problems
        ) from exc


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read ``path`` (None: defaults only), apply the environment, validate.

    Raises ConfigError with every problem found; never anything else for bad input.
    """
    env = os.environ if env is None else env
    if path is None:
        data: dict[str, Any] = {}
        base_dir = Path.cwd()
        source = "the default configuration"
    else:
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            reason = f"cannot read {path}: {exc.strerror or exc}"
            raise ConfigError(reason, [(str(path), reason)]) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"cannot read {path}: not UTF-8 text", [(str(path), "cannot read: not UTF-8 text")]
            ) from exc
        data = parse_yaml(text, source)
        base_dir = path.resolve().parent
    for field_path, value, var in _env_overrides(env):
        _set_path(data, field_path, value, var)
    return LoadedConfig(
        validate(data, base_dir=base_dir, source=source),
        path if path is None else Path(path),
        base_dir,
    )
