"""The base of every config section: strict keys and secrets that may come from files.

A section is a pydantic model that rejects unknown keys (a typo must not be
silently ignored). For every ``SecretStr`` field ``x`` the YAML may give
``x_file`` instead: the loader-independent validator here reads that file
(trailing newline stripped; a relative path is taken from the
config file's folder), so Docker and Kubernetes secrets mount as files.
Giving both ``x`` and ``x_file`` is an error.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(arg) for arg in typing.get_args(annotation))


class Section(BaseModel):
    """Base of config sections: unknown keys rejected, ``*_file`` secrets resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            key = f"{name}_file"
            if key not in out or not _is_secret(field.annotation):
                continue
            path = out.pop(key)
            if name in out and out[name] is not None:
                raise PydanticCustomError(
                    "secret_conflict",
                    "give either {name} or {key}, not both",
                    {"name": name, "key": key},
                )
            try:
                out[name] = resolve_path(path, info).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise PydanticCustomError(
                    "secret_file",
                    "cannot read {key} {path}: {reason}",
                    {"key": key, "path": str(path), "reason": exc.strerror or str(exc)},
                ) from exc
        return out


def resolve_path(value: object, info: ValidationInfo) -> Path:
    """A path from the config, relative to the config file's folder when the loader said where."""
    path = Path(str(value)).expanduser()
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    if base is not None and not path.is_absolute():
        return Path(base) / path
    return path


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    """Validate label names by Prometheus' rules (reserved ``__`` prefix rejected)."""
    for name in labels:
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(
                f"invalid label name {name!r}: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"
            )
    return labels
