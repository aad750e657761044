"""Load the notifier's Alertmanager configuration and check what spans the file.

``alerting.alertmanager_config`` in Vigil's file is a path (relative to that
file's folder) or the configuration inline; unset means a root route to a
receiver with no integrations (alerts are grouped, silenced and reported, but
go nowhere). Every problem is reported at once with its path in the
Alertmanager file (``route.routes[1].matchers[0]``); an inline configuration's
paths start with ``alerting.alertmanager_config``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from notifier.config.models import AlertmanagerConfig, RouteConfig
from notifier.config.receivers import DELIVERABLE, OtherIntegrationConfig
from notifier.errors import AlertmanagerConfigError
from shared.config.loader import LoadedConfig, format_loc, parse_yaml
from shared.errors import ConfigError

INLINE = "alerting.alertmanager_config"
DEFAULT_RECEIVER = "vigil-default"


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    """A checked Alertmanager configuration and where relative paths are taken from."""

    am: AlertmanagerConfig
    base_dir: Path
    source: str
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def route(self) -> RouteConfig:
        assert self.am.route is not None  # noqa: S101 - check() rejects a missing root route
        return self.am.route


def _message(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _loc(loc: tuple[int | str, ...]) -> str:
    # pydantic adds the name of the function behind a BeforeValidator to some locations
    parts = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
    return format_loc(parts)


def parse(data: dict[str, Any], *, base_dir: Path, source: str, prefix: str = "") -> NotifierConfig:
    """Validate a raw mapping; raise ``AlertmanagerConfigError`` listing every problem."""

    def where(path: str) -> str:
        return f"{prefix}.{path}" if prefix else path

    try:
        am = AlertmanagerConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            (where(_loc(tuple(e["loc"]))), _message(e["msg"]))
            for e in exc.errors(include_url=False)
        ]
        raise _error(source, problems) from exc
    problems = list(check(am))
    if problems:
        raise _error(source, [(where(p), m) for p, m in problems])
    warnings = [(where(p), m) for p, m in _warnings(am)]
    return NotifierConfig(am, base_dir, source, warnings)


def _error(source: str, problems: list[tuple[str, str]]) -> AlertmanagerConfigError:
    lines = "\n".join(f"  {p}: {m}" for p, m in problems)
    return AlertmanagerConfigError(
        f"cannot load Alertmanager configuration {source}: {len(problems)} problem(s):\n{lines}",
        problems,
    )


def check(am: AlertmanagerConfig) -> Iterator[tuple[str, str]]:
    """Rules that span the file, as Alertmanager's ``config.Load`` has them."""
    names: set[str] = set()
    for i, r in enumerate(am.receivers):
        if r.name in names:
            yield f"receivers[{i}].name", f"notification config name {r.name!r} is not unique"
        names.add(r.name)
        yield from _receiver_globals(am, i)
    intervals: set[str] = set()
    for key, lst in (
        ("mute_time_intervals", am.mute_time_intervals),
        ("time_intervals", am.time_intervals),
    ):
        for i, ti in enumerate(lst):
            if ti.name in intervals:
                yield f"{key}[{i}].name", f"time interval {ti.name!r} is not unique"
            intervals.add(ti.name)
    root = am.route
    if root is None:
        yield "route", "no routes provided"
        return
    if not root.receiver:
        yield "route.receiver", "root route must specify a default receiver"
    if root.all_matchers():
        yield "route", "root route must not have any matchers"
    if root.continue_:
        yield "route.continue", "cannot have continue in root route"
    if root.mute_time_intervals:
        yield "route.mute_time_intervals", "root route must not have any mute time intervals"
    if root.active_time_intervals:
        yield "route.active_time_intervals", "root route must not have any active time intervals"
    yield from _check_route(root, "route", names, intervals)


def _check_route(
    route: RouteConfig, path: str, receivers: set[str], intervals: set[str]
) -> Iterator[tuple[str, str]]:
    if route.receiver is not None and route.receiver not in receivers:
        yield f"{path}.receiver", f"undefined receiver {route.receiver!r} used in route"
    for key in ("mute_time_intervals", "active_time_intervals"):
        for i, name in enumerate(getattr(route, key)):
            if name not in intervals:
                yield f"{path}.{key}[{i}]", f"undefined time interval {name!r} used in route"
    for i, child in enumerate(route.routes):
        yield from _check_route(child, f"{path}.routes[{i}]", receivers, intervals)


def _receiver_globals(am: AlertmanagerConfig, index: int) -> Iterator[tuple[str, str]]:
    g, r = am.global_, am.receivers[index]
    base = f"receivers[{index}]"
    for i, s in enumerate(r.slack_configs):
        if (
            s.api_url is None
            and s.api_url_file is None
            and g.slack_api_url is None
            and g.slack_api_url_file is None
        ):
            yield f"{base}.slack_configs[{i}]", "no global Slack API URL set"
    for i, e in enumerate(r.email_configs):
        if e.smarthost is None and g.smtp_smarthost is None:
            yield f"{base}.email_configs[{i}]", "no global SMTP smarthost set"
        if e.from_ is None and g.smtp_from is None:
            yield f"{base}.email_configs[{i}]", "no global mail from address set"
    for i, o in enumerate(r.opsgenie_configs):
        if (
            o.api_key is None
            and o.api_key_file is None
            and g.opsgenie_api_key is None
            and g.opsgenie_api_key_file is None
        ):
            yield f"{base}.opsgenie_configs[{i}]", "no global OpsGenie API Key set"
    for i, t in enumerate(r.telegram_configs):
        if (
            t.bot_token is None
            and t.bot_token_file is None
            and g.telegram_bot_token is None
            and g.telegram_bot_token_file is None
        ):
            yield (
                f"{base}.telegram_configs[{i}]",
                "missing bot_token or bot_token_file on telegram_config",
            )
    for i, m in enumerate(r.mattermost_configs):
        if m.webhook_url is None and m.webhook_url_file is None:
            yield (
                f"{base}.mattermost_configs[{i}]",
                "one of webhook_url or webhook_url_file must be configured",
            )


def _warnings(am: AlertmanagerConfig) -> Iterator[tuple[str, str]]:
    for i, r in enumerate(am.receivers):
        for kind, j, cfg in r.integrations():
            if kind not in DELIVERABLE or isinstance(cfg, OtherIntegrationConfig):
                yield (
                    f"receivers[{i}].{kind}_configs[{j}]",
                    f"{kind} delivery is not implemented in this build: notifications to it are dropped",
                )
    yield from _repeat_warnings(am.route, "route", None, None)


def _repeat_warnings(
    route: RouteConfig | None, path: str, group_interval: float | None, repeat: float | None
) -> Iterator[tuple[str, str]]:
    if route is None:
        return
    gi = route.group_interval if route.group_interval is not None else group_interval
    ri = route.repeat_interval if route.repeat_interval is not None else repeat
    if gi is not None and ri is not None and ri < gi:
        yield (
            path,
            "repeat_interval is less than group_interval: notifications repeat every group_interval",
        )
    for i, child in enumerate(route.routes):
        yield from _repeat_warnings(child, f"{path}.routes[{i}]", gi, ri)


def default_config(base_dir: Path) -> NotifierConfig:
    am = AlertmanagerConfig.model_validate(
        {"route": {"receiver": DEFAULT_RECEIVER}, "receivers": [{"name": DEFAULT_RECEIVER}]}
    )
    return NotifierConfig(am, base_dir, "the default Alertmanager configuration")


def load_file(path: Path) -> NotifierConfig:
    """Read and check an ``alertmanager.yml``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
        raise AlertmanagerConfigError(reason, [(str(path), reason)]) from exc
    try:
        data = parse_yaml(text, str(path))
    except ConfigError as exc:
        raise AlertmanagerConfigError(str(exc), exc.problems) from exc
    return parse(data, base_dir=path.resolve().parent, source=str(path))


def load_from(loaded: LoadedConfig) -> NotifierConfig:
    """The configuration ``alerting.alertmanager_config`` names (a path or inline)."""
    value = loaded.config.alerting.alertmanager_config
    if value is None:
        return default_config(loaded.base_dir)
    if isinstance(value, str):
        return load_file(loaded.resolve(value))
    return parse(dict(value), base_dir=loaded.base_dir, source=INLINE, prefix=INLINE)


def check_loaded(loaded: LoadedConfig) -> list[tuple[str, str]]:
    """``--check-config``'s extra check: every problem of the Alertmanager configuration."""
    try:
        load_from(loaded)
    except AlertmanagerConfigError as exc:
        return exc.problems or [(INLINE, str(exc))]
    return []
