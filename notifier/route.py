"""The routing tree: which routes (and so receivers and grouping) an alert goes to.

Built from the configuration's ``route`` with Alertmanager's inheritance:
``receiver``, ``group_by``, ``group_wait``, ``group_interval`` and
``repeat_interval`` come from the parent when a route leaves them out (root
defaults 30s, 5m, 4h, no grouping labels); ``mute_time_intervals`` and
``active_time_intervals`` are never inherited. ``Route.match`` walks the tree
depth-first: a route whose matchers fail is skipped with its subtree; of the
matching children the first wins unless it has ``continue: true``; a route
with no matching child matches itself. Keys follow Alertmanager's
``Route.Key()``/``ID()`` (``{}/{severity="critical"}``) and group keys are
``<route key>:<group labels>`` (``{}:{alertname="X"}``), so a webhook's
``groupKey`` equals Alertmanager's for the same configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from notifier.config.models import (
    DEFAULT_GROUP_INTERVAL,
    DEFAULT_GROUP_WAIT,
    DEFAULT_REPEAT_INTERVAL,
    RouteConfig,
)
from shared.alertmanager.matchers import LabelMatcher, go_quote, matchers_string, matches_all


@dataclass(frozen=True, slots=True)
class RouteOpts:
    """A route's effective options, inheritance applied. ``group_by_all`` is ``['...']``."""

    receiver: str
    group_by: tuple[str, ...] = ()
    group_by_all: bool = False
    group_wait: float = DEFAULT_GROUP_WAIT
    group_interval: float = DEFAULT_GROUP_INTERVAL
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels an alert is grouped by (absent ones left out, as Alertmanager does)."""
        if self.group_by_all:
            return dict(labels)
        return {n: labels[n] for n in self.group_by if n in labels}


@dataclass(eq=False, slots=True)
class Route:
    opts: RouteOpts
    matchers: tuple[LabelMatcher, ...] = ()
    continue_: bool = False
    routes: list[Route] = field(default_factory=list)
    key: str = "{}"
    id: str = "{}"

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """Routes the alert goes to, in tree order; empty when this route does not match."""
        if not matches_all(self.matchers, labels):
            return []
        out: list[Route] = []
        for child in self.routes:
            found = child.match(labels)
            out += found
            if found and not child.continue_:
                break
        return out or [self]

    def walk(self) -> list[Route]:
        out = [self]
        for child in self.routes:
            out += child.walk()
        return out


def build(cfg: RouteConfig, parent: Route | None = None, index: int = 0) -> Route:
    """The tree for a configuration's root route (receiver names are already checked)."""
    p = parent.opts if parent is not None else RouteOpts(receiver="")
    if cfg.group_by is None:
        group_by, group_all = p.group_by, p.group_by_all
    elif cfg.group_by == ["..."]:
        group_by, group_all = (), True
    else:
        group_by, group_all = tuple(cfg.group_by), False
    opts = RouteOpts(
        receiver=cfg.receiver if cfg.receiver is not None else p.receiver,
        group_by=group_by,
        group_by_all=group_all,
        group_wait=cfg.group_wait if cfg.group_wait is not None else p.group_wait,
        group_interval=cfg.group_interval if cfg.group_interval is not None else p.group_interval,
        repeat_interval=(
            cfg.repeat_interval if cfg.repeat_interval is not None else p.repeat_interval
        ),
        mute_time_intervals=tuple(cfg.mute_time_intervals),
        active_time_intervals=tuple(cfg.active_time_intervals),
    )
    matchers = tuple(sorted(cfg.all_matchers(), key=LabelMatcher.sort_key))
    text = matchers_string(matchers)
    if parent is None:
        key = ident = text
    else:
        key = f"{parent.key}/{text}"
        ident = f"{parent.id}/{text}/{index}"
    route = Route(opts, matchers, cfg.continue_, [], key, ident)
    route.routes = [build(child, route, i) for i, child in enumerate(cfg.routes)]
    return route


def labelset_string(labels: Mapping[str, str]) -> str:
    """Prometheus' ``LabelSet.String()``: ``{a="1", b="2"}``, sorted."""
    return "{" + ", ".join(sorted(f"{k}={go_quote(v)}" for k, v in labels.items())) + "}"


def group_key(route: Route, group_labels: Mapping[str, str]) -> str:
    """Alertmanager's aggregation group key: ``<route key>:<group labels>``."""
    return f"{route.key}:{labelset_string(group_labels)}"
