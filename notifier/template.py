"""Receivers' texts: Jinja2 templates in a sandbox, Vigil's defaults under ``notifier/templates/``.

Every receiver builds its texts (title, message, email subject and bodies)
from one ``Notification`` through ``Templates``:

- ``Templates.text(source, default)`` compiles a receiver's configured field
  (``slack_configs[].title``) or, when it is unset, the default template file
  ``default`` (``title.j2``); Go templates from an ``alertmanager.yml`` are
  translated first (``notifier.template_go``);
- ``Templates.html(...)`` does the same with HTML autoescaping (email bodies,
  Telegram's HTML messages): label values cannot inject markup;
- ``context(notification)`` is the data, named as Alertmanager names it
  (``Status``, ``Receiver``, ``Alerts`` with ``.Firing()``/``.Resolved()``,
  ``GroupLabels``, ``CommonLabels``, ``CommonAnnotations``, ``ExternalURL``,
  ``GroupKey``; each alert ``Status``, ``Labels``, ``Annotations``,
  ``StartsAt``, ``EndsAt``, ``GeneratorURL``, ``Fingerprint``) plus Vigil's
  ready-made values: ``title`` (``[FIRING:2] HighCPU (web-1 critical)``, as
  Alertmanager's default subject), ``severity``, ``summary``, ``description``,
  ``runbook_url``, ``firing_count``, ``resolved_count`` and ``vigil_url`` (the
  group in Vigil's UI: ``<external URL>/alerts?filter=...``).

The environment is Jinja2's ``SandboxedEnvironment`` (no attribute starting
with ``_``, no unsafe callables), and a missing label renders as the empty
string (``ChainableUndefined``), as a missing map key does in Alertmanager.
Label maps are dicts: write ``CommonLabels["values"]`` for a label whose name
is also a dict method. Compiled templates are cached per source. A template
that fails to compile or render raises ``TemplateError``; receivers turn that
into a ``PermanentError`` (another attempt renders the same).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from notifier.receivers.base import Notification
from notifier.template_go import TemplateError, is_go, translate

__all__ = ["TemplateError", "Templates", "Text", "context", "templates"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
SEVERITY_ORDER = ("critical", "error", "warning", "info")


class KV(dict[str, str]):
    """A label or annotation map with Alertmanager's methods (``SortedPairs``, ``Remove``...)."""

    def SortedPairs(self) -> Pairs:  # noqa: N802 - Alertmanager's name
        return Pairs(Pair(k, self[k]) for k in sorted(self))

    def Names(self) -> list[str]:  # noqa: N802
        return sorted(self)

    def Values(self) -> list[str]:  # noqa: N802
        return [self[k] for k in sorted(self)]

    def Remove(self, names: list[str]) -> KV:  # noqa: N802
        return KV({k: v for k, v in self.items() if k not in names})


@dataclass(frozen=True, slots=True)
class Pair:
    Name: str
    Value: str


@dataclass(frozen=True, slots=True)
class Alert:
    Status: str
    Labels: KV
    Annotations: KV
    StartsAt: datetime
    EndsAt: datetime
    GeneratorURL: str
    Fingerprint: str


class Pairs(list[Pair]):
    def Names(self) -> list[str]:  # noqa: N802
        return [p.Name for p in self]

    def Values(self) -> list[str]:  # noqa: N802
        return [p.Value for p in self]


class Alerts(list[Alert]):
    def Firing(self) -> Alerts:  # noqa: N802
        return Alerts(a for a in self if a.Status == "firing")

    def Resolved(self) -> Alerts:  # noqa: N802
        return Alerts(a for a in self if a.Status == "resolved")


def _cmp(op: str) -> Any:
    def f(a: Any, b: Any) -> bool:
        return bool({"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op])

    return f


def _and(*args: Any) -> Any:
    for a in args:
        if not a:
            return a
    return args[-1] if args else None


def _or(*args: Any) -> Any:
    for a in args:
        if a:
            return a
    return args[-1] if args else None


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return ""
    return value


def _printf(fmt: str, *args: Any) -> str:
    fmt = re.sub(r"%v|%q", lambda m: "%r" if m.group() == "%q" else "%s", fmt)
    try:
        return fmt % args
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"cannot render printf {fmt!r}: {exc}") from exc


def _range1(value: Any) -> Any:
    return list(value.values()) if isinstance(value, dict) else value or []


def _range2(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted(value.items())
    return enumerate(value or [])


FUNCTIONS: dict[str, Any] = {
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "lt": _cmp("lt"),
    "le": _cmp("le"),
    "gt": _cmp("gt"),
    "ge": _cmp("ge"),
    "and": _and,
    "or": _or,
    "not": lambda a: not a,
    "len": lambda a: len(a) if a is not None else 0,
    "index": _index,
    "printf": _printf,
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(),
    "join": lambda sep, items: str(sep).join(str(i) for i in items),
    "trimSpace": lambda s: str(s).strip(),
    "safeHtml": Markup,  # Alertmanager's safeHtml: the template's author opts out of escaping
    "reReplaceAll": lambda pat, repl, s: re.sub(pat, re.sub(r"\$(\d+)", r"\\\1", repl), s),
    "match": lambda pat, s: re.search(pat, s) is not None,
    "urlquery": lambda *a: quote("".join(str(x) for x in a), safe=""),
    "_range1": _range1,
    "_range2": _range2,
}
"""Globals every template sees: Alertmanager's Go functions (see ``notifier.template_go``)."""


def _title(n: Notification, firing: int) -> str:
    status = n.status.upper() + (f":{firing}" if n.status == "firing" else "")
    group = " ".join(n.group_labels[k] for k in sorted(n.group_labels))
    extra = {k: v for k, v in n.common_labels.items() if k not in n.group_labels}
    tail = f" ({' '.join(extra[k] for k in sorted(extra))})" if extra else ""
    return f"[{status}] {group}{tail}".rstrip()


def _severity(n: Notification) -> str:
    common = n.common_labels.get("severity")
    if common:
        return common
    seen = [a.labels.get("severity", "") for a in n.firing or n.alerts]
    for level in SEVERITY_ORDER:
        if level in seen:
            return level
    return next((s for s in seen if s), "")


def vigil_url(n: Notification) -> str:
    """The group in Vigil's UI: ``<external URL>/alerts?filter={a="b",...}&receiver=...``."""
    if not n.external_url:
        return ""
    matchers = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(n.group_labels.items())
    )
    query = urlencode({"filter": "{" + matchers + "}", "receiver": n.receiver})
    return f"{n.external_url.rstrip('/')}/alerts?{query}"


def context(n: Notification) -> dict[str, Any]:
    """The data templates see (names as in the module docstring)."""
    alerts = Alerts(
        Alert(
            n.alert_status(a),
            KV(a.labels),
            KV(a.annotations),
            a.starts_at,
            a.ends_at,
            a.generator_url,
            a.fingerprint,
        )
        for a in n.alerts
    )
    common_annotations = KV(n.common_annotations)
    first = n.alerts[0].annotations if n.alerts else {}
    data: dict[str, Any] = {
        "Receiver": n.receiver,
        "Status": n.status,
        "Alerts": alerts,
        "GroupLabels": KV(n.group_labels),
        "CommonLabels": KV(n.common_labels),
        "CommonAnnotations": common_annotations,
        "ExternalURL": n.external_url,
        "GroupKey": n.group_key,
        "TruncatedAlerts": 0,
        "firing_count": len(n.firing),
        "resolved_count": len(n.resolved),
        "title": _title(n, len(n.firing)),
        "severity": _severity(n),
        "summary": common_annotations.get("summary") or first.get("summary", ""),
        "description": common_annotations.get("description") or first.get("description", ""),
        "runbook_url": common_annotations.get("runbook_url", ""),
        "vigil_url": vigil_url(n),
    }
    data["_root"] = dict(data)
    return data


class Text:
    """One compiled template; ``render`` raises ``TemplateError``."""

    def __init__(self, template: jinja2.Template | None, error: str | None, source: str) -> None:
        self._template = template
        self._error = error
        self.source = source

    @property
    def error(self) -> str | None:
        """Why the template cannot be used (translation or compilation), or None."""
        return self._error

    def render(self, data: dict[str, Any]) -> str:
        if self._template is None:
            raise TemplateError(self._error or "BUG: template without error")
        try:
            return self._template.render(data).strip()
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(
                f"cannot render template {self.source[:60]!r}: {type(exc).__name__}: {exc}"
            ) from exc


class Templates:
    """The two sandboxed environments (plain text and HTML) and the compiled-template cache."""

    def __init__(self, folder: Path = TEMPLATE_DIR) -> None:
        loader = jinja2.FileSystemLoader(str(folder))
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.ChainableUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self._plain = SandboxedEnvironment(autoescape=False, **common)
        self._html = SandboxedEnvironment(autoescape=True, **common)
        for env in (self._plain, self._html):
            env.globals.update(FUNCTIONS)

    def text(self, source: str | None, default: str) -> Text:
        """A configured field (Jinja2 or Go), or the default template file when unset."""
        return self._compile(source, default, html=False)

    def html(self, source: str | None, default: str) -> Text:
        """As ``text``, with HTML autoescaping."""
        return self._compile(source, default, html=True)

    def _compile(self, source: str | None, default: str, *, html: bool) -> Text:
        env = self._html if html else self._plain
        try:
            if source is None:
                return Text(env.get_template(default), None, default)
            jinja_source = translate(source) if is_go(source) else source
            return Text(env.from_string(jinja_source), None, source)
        except TemplateError as exc:
            return Text(None, str(exc), source or default)
        except jinja2.TemplateError as exc:
            return Text(
                None,
                f"cannot compile template {(source or default)[:60]!r}: {exc}",
                source or default,
            )


@lru_cache(maxsize=1)
def templates() -> Templates:
    """The process-wide ``Templates`` (environments are thread-safe once built)."""
    return Templates()
