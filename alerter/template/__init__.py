"""Prometheus alert templates rendered without Go: a safe interpreter of a Go-template subset.

Usage::

    tpl = compile_template("{{ $labels.instance }} at {{ $value | humanizePercentage }}")
    text = tpl.render(labels={"instance": "a:9100"}, value=0.93)

``compile_template`` raises ``TemplateSyntaxError`` for anything outside the
subset (see ``alerter.template.parse``); ``render`` raises ``TemplateExecError``;
``expand`` renders like Prometheus does for an alert, turning an execution error
into ``<error expanding template: ...>`` rather than losing the alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerter.errors import TemplateExecError, TemplateSyntaxError
from alerter.template.parse import Node, Text, parse
from alerter.template.render import KNOWN_FUNCTIONS, Interpreter, base_functions

__all__ = ["Template", "TemplateExecError", "TemplateSyntaxError", "compile_template"]


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    nodes: tuple[Node, ...]

    @property
    def is_static(self) -> bool:
        """True when rendering cannot change the text (no actions)."""
        return all(isinstance(n, Text) for n in self.nodes)

    def render(
        self,
        *,
        labels: Mapping[str, str],
        value: float,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
    ) -> str:
        if self.is_static:
            return "".join(n.text for n in self.nodes if isinstance(n, Text))
        ext = dict(external_labels or {})
        lab = dict(labels)
        dot = {"Labels": lab, "ExternalLabels": ext, "ExternalURL": external_url, "Value": value}
        variables: dict[str, object] = {
            "$labels": lab,
            "$externalLabels": ext,
            "$externalURL": external_url,
            "$value": value,
        }
        try:
            return Interpreter(base_functions(external_url), dot, variables).run(list(self.nodes))
        except RecursionError as exc:
            raise TemplateExecError("template nests too deeply") from exc

    def expand(self, name: str, **kwargs: object) -> str:
        """``render`` or Prometheus' ``<error expanding template: ...>`` text on failure."""
        try:
            return self.render(**kwargs)  # type: ignore[arg-type]
        except TemplateExecError as exc:
            return f"<error expanding template: error executing template {name}: {exc}>"


def compile_template(source: str) -> Template:
    """Parse ``source``; raise ``TemplateSyntaxError`` naming the problem."""
    try:
        nodes = parse(source, KNOWN_FUNCTIONS.__contains__)
    except RecursionError as exc:
        raise TemplateSyntaxError("template nests too deeply") from exc
    return Template(source, tuple(nodes))
