"""The API's shapes, with the field names of Alertmanager's ``api/v2/openapi.yaml``.

In: ``PostableAlert`` and ``PostableSilence``. Out: plain JSON dicts built by
``gettable_alert``, ``gettable_silence`` and ``alert_group``. Times go out as
Go's ``strfmt.DateTime`` writes them (RFC 3339, milliseconds, ``Z``), which
amtool's generated client parses; times come in as RFC 3339 with any precision
(Prometheus sends nanoseconds), and Go's zero time (year 1, what amtool sends
for "not given") means absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.wire import AlertEvent, AlertStatus, Silence


def fmt_time(value: datetime) -> str:
    """``2026-01-05T12:00:00.000Z``: Go's ``strfmt.DateTime`` format."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _optional_time(value: datetime | None) -> datetime | None:
    if value is None or value.year <= 1:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class ApiModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class PostableAlert(ApiModel):
    """``postableAlert``: what Prometheus servers and ``amtool alert add`` send."""

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = Field(None, alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _zero_is_absent(cls, value: datetime | None) -> datetime | None:
        return _optional_time(value)

    @field_validator("annotations", "labels", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("generator_url", mode="before")
    @classmethod
    def _null_is_blank(cls, value: Any) -> Any:
        return "" if value is None else value


class ApiMatcher(ApiModel):
    """``matcher``: ``isRegex`` is required by the spec, ``isEqual`` defaults to true."""

    name: str
    value: str
    is_regex: bool = Field(alias="isRegex")
    is_equal: bool = Field(True, alias="isEqual")


class PostableSilence(ApiModel):
    """``postableSilence``: a new silence, or a change to the one with ``id``."""

    id: str = ""
    matchers: list[ApiMatcher]
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(alias="endsAt")
    created_by: str = Field(alias="createdBy")
    comment: str

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("id", mode="before")
    @classmethod
    def _null_id(cls, value: Any) -> Any:
        return "" if value is None else value


def gettable_alert(
    alert: AlertEvent, status: AlertStatus, receivers: Iterable[str], updated_at: datetime
) -> dict[str, Any]:
    """``gettableAlert``."""
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "generatorURL": alert.generator_url,
        "startsAt": fmt_time(alert.starts_at),
        "endsAt": fmt_time(alert.ends_at),
        "updatedAt": fmt_time(updated_at),
        "fingerprint": alert.fingerprint,
        "receivers": [{"name": r} for r in receivers],
        "status": {
            "state": status.state,
            "silencedBy": list(status.silenced_by),
            "inhibitedBy": list(status.inhibited_by),
        },
    }


def gettable_silence(silence: Silence, state: str) -> dict[str, Any]:
    """``gettableSilence``."""
    return {
        "id": silence.id,
        "status": {"state": state},
        "updatedAt": fmt_time(silence.updated_at),
        "matchers": [
            {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}
            for m in silence.matchers
        ],
        "startsAt": fmt_time(silence.starts_at),
        "endsAt": fmt_time(silence.ends_at),
        "createdBy": silence.created_by,
        "comment": silence.comment,
    }
