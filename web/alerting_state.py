"""The alerter's KV documents as Prometheus' ``/api/v1/rules``, ``/alerts`` and ``/targets``.

Pure functions over already-read documents (``web.alerting`` reads them):

- ``alert_state`` (key: group key as a host token) holds, per group,
  ``{"group", "rules": {"<pos>:<name>": {"rule", "alerts": [...]}}, "eval_ms",
  "statuses"}``, written by the alerter when the group's state changes. An
  alert has ``labels``, ``annotations``, ``state`` (pending|firing), ``value``
  (a string: NaN and ±Inf survive JSON), ``active_at_ms`` and
  ``keep_firing_since_ms``.
- ``alert_state`` also holds, under ``rules.<group key as a host token>``, each
  group's status document (``alerter.status``): its rules (type, query, ``for``,
  labels, annotations ...) with their ``health``, ``last_error``,
  ``last_evaluation_ms`` and ``evaluation_time_s``, and the group's own times.
  ``/api/v1/rules`` is made of these, with each alerting rule's alerts taken
  from the alert-state document under the same rule key.
- ``agents`` (key: host token) holds ``{"host", "first_seen_ms",
  "last_seen_ms"}``, written at most every ``alerter.agents_write_interval``.

Values are formatted as Prometheus' Go JSON writes them: times in RFC 3339 with
the fraction's trailing zeros dropped (``time.Time``), durations in seconds as
JSON numbers (``go_json``), empty ``lastError`` left out. Targets have no scrape
duration (0) nor URL (empty): agents push.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from web import render

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero ``time.Time``, as Prometheus shows a rule never evaluated."""
AGENT_JOB = "vigil-agent"
"""The ``job`` of the alerter's synthetic ``up`` series for agents."""


def rfc3339(t_ms: int | None) -> str:
    """Go's ``time.Time`` in JSON (RFC 3339, fraction without trailing zeros), UTC."""
    if not t_ms:
        return ZERO_TIME
    seconds, millis = divmod(t_ms, 1000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{millis:03d}".rstrip("0") if millis else ""
    return f"{text}{fraction}Z"


def _go_number(value: float) -> str:
    """Go's ``encoding/json`` float64: plain decimal from 1e-6 to 1e21, else exponent."""
    if not math.isfinite(value):
        return "0"  # Go refuses to write them; no field of these documents holds one
    if value == 0 or 1e-6 <= abs(value) < 1e21:
        return render.format_value(value)
    mantissa, _, exp = repr(value).partition("e")
    e = int(exp)
    return f"{mantissa}e-{-e}" if e < 0 else f"{mantissa}e+{e:02d}"


def _go_string(text: str) -> str:
    """A JSON string as Go writes it: ``<``, ``>``, ``&``, U+2028/9 escaped."""
    out = json.dumps(text, ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        out = out.replace(raw, escaped)
    return out


def go_json(data: object) -> str:
    """Compact JSON of dicts, lists, strings, numbers, bools and ``None``, as Go writes it.

    ``json.dumps`` writes ``3600.0`` and ``6.5e-05`` where Prometheus writes ``3600``
    and ``0.000065``; the values are the same, the text is not.
    """
    if data is None or isinstance(data, bool):
        return json.dumps(data)
    if isinstance(data, int):
        return str(data)
    if isinstance(data, float):
        return _go_number(data)
    if isinstance(data, str):
        return _go_string(data)
    if isinstance(data, Mapping):
        return "{" + ",".join(f"{_go_string(str(k))}:{go_json(v)}" for k, v in data.items()) + "}"
    if isinstance(data, list | tuple):
        return "[" + ",".join(go_json(v) for v in data) + "]"
    raise TypeError(f"BUG: cannot write {type(data).__name__} as JSON")


def format_value(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'e', -1, 64)``: what Prometheus puts in ``value``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    for digits in range(17):
        text = f"{value:.{digits}e}"
        if float(text) == value:
            return text
    return f"{value:.16e}"


def _value(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


def alert_json(alert: Mapping[str, Any]) -> dict[str, Any]:
    """One alert as Prometheus shows it (``rules`` and ``alerts`` endpoints)."""
    out: dict[str, Any] = {
        "labels": _text_map(alert.get("labels")),
        "annotations": _text_map(alert.get("annotations")),
        "state": str(alert.get("state", "")),
        "activeAt": rfc3339(int(alert.get("active_at_ms") or 0)),
        "value": format_value(_value(alert.get("value"))),
    }
    if alert.get("keep_firing_since_ms"):
        out["keepFiringSince"] = rfc3339(int(alert["keep_firing_since_ms"]))
    return out


def _active(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [a for a in alerts if a.get("state") in ("pending", "firing")]


def _rule_state(alerts: list[Mapping[str, Any]]) -> str:
    states = {a.get("state") for a in alerts}
    return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"


def _text_map(raw: Any) -> dict[str, str]:
    """Labels or annotations, sorted by name as Prometheus writes them."""
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): str(v) for k, v in sorted(raw.items(), key=lambda kv: str(kv[0]))}


def _number(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return 0.0


def _seconds(raw: Any) -> int | float:
    """A duration as Prometheus writes a float64 of seconds: ``60``, not ``60.0``."""
    value = _number(raw)
    return int(value) if value.is_integer() else value


def _run(saved: Mapping[str, Any]) -> dict[str, Any]:
    """``health`` to ``lastEvaluation`` of a rule, in Prometheus' order."""
    health = str(saved.get("health") or "unknown")
    out: dict[str, Any] = {"health": health if health in ("ok", "err") else "unknown"}
    if saved.get("last_error"):
        out["lastError"] = str(saved["last_error"])
    out["evaluationTime"] = _number(saved.get("evaluation_time_s"))
    out["lastEvaluation"] = rfc3339(int(_number(saved.get("last_evaluation_ms"))))
    return out


def _rule_json(rule: Mapping[str, Any], state: Mapping[str, Any] | None) -> dict[str, Any]:
    """One rule of ``/api/v1/rules`` from its status entry and its alert state."""
    name, query = str(rule.get("name", "")), str(rule.get("query", ""))
    labels = _text_map(rule.get("labels"))
    if rule.get("type") == "recording":
        out: dict[str, Any] = {"name": name, "query": query}
        if labels:  # Prometheus leaves a recording rule's empty labels out (omitempty)
            out["labels"] = labels
        return {**out, **_run(rule), "type": "recording"}
    alerts = _active((state or {}).get("alerts") or [])
    return {
        "state": _rule_state(alerts),
        "name": name,
        "query": query,
        "duration": _seconds(rule.get("duration")),
        "keepFiringFor": _seconds(rule.get("keep_firing_for")),
        "labels": labels,
        "annotations": _text_map(rule.get("annotations")),
        "alerts": [alert_json(a) for a in alerts],
        **_run(rule),
        "type": "alerting",
    }


def _group_order(doc: Mapping[str, Any]) -> tuple[str, float, str]:
    return str(doc.get("file", "")), _number(doc.get("position")), str(doc.get("name", ""))


def rule_groups(
    statuses: Iterable[Mapping[str, Any]],
    states: Mapping[str, Mapping[str, Any]],
    *,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """``data.groups`` of ``/api/v1/rules`` (values for ``go_json``).

    ``statuses``: the groups' status documents; ``states``: group key -> alert-state document. ``kind`` is the
    ``type`` filter (``alert`` or ``record``); groups left with no rule are dropped, as
    Prometheus does. Groups are ordered by file, then as the alerter loaded them.
    """
    wanted = {"alert": "alerting", "record": "recording"}.get(kind or "")
    groups: list[dict[str, Any]] = []
    for doc in sorted(statuses, key=_group_order):
        state = states.get(str(doc.get("group", ""))) or {}
        saved: Mapping[str, Any] = state.get("rules") or {}
        raw_rules = doc.get("rules")
        rules = [
            _rule_json(r, saved.get(str(r.get("key", ""))))
            for r in (raw_rules if isinstance(raw_rules, list) else [])
            if isinstance(r, Mapping) and (wanted is None or r.get("type") == wanted)
        ]
        if wanted is not None and not rules:
            continue
        groups.append(
            {
                "name": str(doc.get("name", "")),
                "file": str(doc.get("file", "")),
                "rules": rules,
                "interval": _seconds(doc.get("interval")),
                "limit": int(_number(doc.get("limit"))),
                "evaluationTime": _number(doc.get("evaluation_time_s")),
                "lastEvaluation": rfc3339(int(_number(doc.get("last_evaluation_ms")))),
            }
        )
    return groups


def active_alerts(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``data.alerts`` of ``/api/v1/alerts``: every pending or firing alert of every group."""
    out = []
    for doc in docs:
        for saved in (doc.get("rules") or {}).values():
            out += [alert_json(a) for a in _active(saved.get("alerts") or [])]
    return out


def targets(
    agents: Iterable[Mapping[str, Any]], now_ms: int, *, up_within_ms: int
) -> list[dict[str, Any]]:
    """``data.activeTargets`` of ``/api/v1/targets``: one per known agent, by host.

    ``up_within_ms``: an agent whose last batch is at most this old is ``up`` (the
    alerter's ``up_timeout`` plus how stale the KV may be); older ``down``; no
    last-seen time ``unknown``.
    """
    out = []
    for doc in sorted(agents, key=lambda d: str(d.get("host", ""))):
        host = str(doc.get("host", ""))
        last = int(doc.get("last_seen_ms") or 0)
        health = "unknown" if not last else "up" if now_ms - last <= up_within_ms else "down"
        labels = {"host": host, "instance": host, "job": AGENT_JOB}
        out.append(
            {
                "discoveredLabels": dict(labels),
                "labels": labels,
                "scrapePool": AGENT_JOB,
                "scrapeUrl": "",
                "globalUrl": "",
                "lastError": "",
                "lastScrape": rfc3339(last),
                "lastScrapeDuration": 0,
                "health": health,
            }
        )
    return out
