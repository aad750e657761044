"""Go templates from ``alertmanager.yml`` translated to Jinja2, so an unmodified file works.

Receivers' text fields in a typical Alertmanager configuration are Go
templates (``{{ .CommonLabels.alertname }}``,
``{{ template "slack.default.title" . }}``). Vigil renders Jinja2 only;
``translate`` turns the common subset into Jinja2 source once, when a
receiver is built, and ``notifier.template`` renders the result in its
sandbox. The subset:

- data: ``.`` and field chains (``.Status``, ``.CommonLabels.team``,
  ``.Alerts.Firing``, ``.Labels.SortedPairs``, ``$.ExternalURL``), string and
  number literals, variables (``$x := ...``, ``range $i, $a := ...``);
- actions: ``if``/``else if``/``else``, ``range`` (``else`` too), ``with``,
  ``end``, ``{{/* comments */}}``, trim markers ``{{-``/``-}}``;
- ``template "name" .`` for Alertmanager's default templates
  (``DEFAULT_TEMPLATES``), which become Vigil's defaults;
- functions (see ``notifier.template.FUNCTIONS``): ``eq ne lt le gt ge and or
  not len index printf toUpper toLower title join trimSpace safeHtml
  reReplaceAll match urlquery``, called or piped (``.Values | join " "``).

Anything else (``define``, ``block``, unknown functions or template names)
raises ``TemplateError`` naming it, so a configuration check reports it
rather than a chat receiving half a message. Whitespace differs from Go in one
way: a newline right after a block action is dropped (Jinja's ``trim_blocks``).

``is_go`` decides which language a string is in: ``{%``/``{#`` mean Jinja;
an action starting with ``.``, ``$``, ``/*``, a Go keyword or a name followed by
a space and an argument (``len .Alerts``) means Go.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from notifier.errors import NotifierError


class TemplateError(NotifierError):
    """A template cannot be translated, compiled or rendered."""


DEFAULT_TEMPLATES: dict[str, str] = {
    # Alertmanager's default.tmpl names -> Vigil's default templates
    "__subject": "title.j2",
    "__description": "title.j2",
    "__alertmanagerURL": "vigil_url.j2",
    "__text_alert_list": "markdown.j2",
    "slack.default.title": "title.j2",
    "slack.default.fallback": "title.j2",
    "slack.default.text": "slack.mrkdwn.j2",
    "slack.default.pretext": "empty.j2",
    "slack.default.titlelink": "vigil_url.j2",
    "slack.default.footer": "empty.j2",
    "slack.default.username": "username.j2",
    "slack.default.iconemoji": "empty.j2",
    "slack.default.iconurl": "empty.j2",
    "slack.default.callbackid": "empty.j2",
    "mattermost.default.title": "title.j2",
    "mattermost.default.text": "markdown.j2",
    "discord.default.title": "title.j2",
    "discord.default.message": "markdown.j2",
    "discord.default.content": "empty.j2",
    "msteams.default.title": "title.j2",
    "msteams.default.summary": "title.j2",
    "msteams.default.text": "markdown.j2",
    "msteamsv2.default.title": "title.j2",
    "msteamsv2.default.text": "markdown.j2",
    "telegram.default.message": "telegram.html.j2",
    "pagerduty.default.description": "title.j2",
    "pagerduty.default.client": "username.j2",
    "pagerduty.default.clientURL": "vigil_url.j2",
    "pagerduty.default.instances": "markdown.j2",
    "opsgenie.default.message": "title.j2",
    "opsgenie.default.description": "markdown.j2",
    "opsgenie.default.source": "vigil_url.j2",
    "email.default.subject": "title.j2",
    "email.default.html": "email.html.j2",
    "email.default.text": "email.text.j2",
}

_GO_KEYWORDS = ("template", "range", "if", "end", "else", "with", "define", "block", "printf")
_ACTION_START = re.compile(
    r"\{\{-?\s*(\.|\$|/\*|(?:" + "|".join(_GO_KEYWORDS) + r")\b"
    r"|[a-zA-Z]+\s+[.$\"`(])"  # a function called Go's way: ``len .Alerts``, ``index $x "k"``
)
MAP_FIELDS = frozenset(
    {"GroupLabels", "CommonLabels", "CommonAnnotations", "Labels", "Annotations"}
)
MAP_METHODS = frozenset({"SortedPairs", "Names", "Values", "Remove"})
METHODS = MAP_METHODS | {"Firing", "Resolved"}
FUNCTION_NAMES = frozenset(
    {
        "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "len", "index", "printf",
        "toUpper", "toLower", "title", "join", "trimSpace", "safeHtml", "reReplaceAll",
        "match", "urlquery",
    }
)  # fmt: skip
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<decl>:=|=)
    | (?P<punct>[()|,])
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    )""",
    re.VERBOSE,
)


def is_go(source: str) -> bool:
    """True when ``source`` reads as a Go template (see the module docstring)."""
    if "{%" in source or "{#" in source:
        return False
    return _ACTION_START.search(source) is not None


@dataclass
class _Block:
    kind: str  # "if", "for", "with"
    dot: str  # what "." means inside
    closing: str


@dataclass
class _Translator:
    source: str
    out: list[str] = field(default_factory=list)
    stack: list[_Block] = field(default_factory=list)
    counter: int = 0

    def dot(self) -> str:
        for block in reversed(self.stack):
            if block.dot:
                return block.dot
        return ""  # the root: its fields are the context's names

    def fail(self, reason: str) -> TemplateError:
        return TemplateError(f"cannot translate Go template {self.source[:60]!r}: {reason}")

    # -- expressions -------------------------------------------------------

    def chain(self, base: str, parts: list[str]) -> str:
        expr = base
        in_map = False  # the previous part was a label or annotation map
        for i, part in enumerate(parts):
            method = part in MAP_METHODS if in_map else part in METHODS
            if method:
                expr = f"{expr}.{part}" if expr else part
                if not (part == "Remove" and i == len(parts) - 1):
                    expr += "()"
                in_map = False
            elif in_map:
                expr = f"{expr}[{part!r}]"
                in_map = False
            else:
                expr = f"{expr}.{part}" if expr else part
                in_map = part in MAP_FIELDS
        return expr or "_root"

    def operand(self, kind: str, text: str) -> str:
        if kind == "str":
            value = text[1:-1] if text.startswith("`") else json.loads(text)
            return repr(value)
        if kind == "num":
            return text
        if kind == "field":
            parts = [p for p in text.split(".") if p]
            return self.chain(self.dot(), parts)
        if kind == "var":
            name, *parts = text.split(".")
            base = "" if name == "$" else f"v_{name[1:]}"
            return self.chain(base, parts)
        if kind == "ident":
            if text in ("true", "false"):
                return text.capitalize()
            if text == "nil":
                return "None"
            raise self.fail(f"unsupported identifier {text!r}")
        raise self.fail(f"unexpected {text!r}")

    def tokens(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise self.fail(f"cannot read {text[pos : pos + 20]!r}")
            kind = m.lastgroup or ""
            out.append((kind, m.group(kind)))
            pos = m.end()
        return out

    def pipeline(self, toks: list[tuple[str, str]]) -> str:
        commands: list[list[tuple[str, str]]] = [[]]
        depth = 0
        for tok in toks:
            if tok == ("punct", "("):
                depth += 1
            elif tok == ("punct", ")"):
                depth -= 1
            if tok == ("punct", "|") and depth == 0:
                commands.append([])
            else:
                commands[-1].append(tok)
        expr: str | None = None
        for cmd in commands:
            expr = self.command(cmd, expr)
        if expr is None:
            raise self.fail("empty pipeline")
        return expr

    def args(self, toks: list[tuple[str, str]]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(toks):
            kind, text = toks[i]
            if (kind, text) == ("punct", "("):
                depth, j = 1, i + 1
                while j < len(toks) and depth:
                    depth += {"(": 1, ")": -1}.get(toks[j][1], 0) if toks[j][0] == "punct" else 0
                    j += 1
                out.append(f"({self.pipeline(toks[i + 1 : j - 1])})")
                i = j
                continue
            out.append(self.operand(kind, text))
            i += 1
        return out

    def command(self, toks: list[tuple[str, str]], piped: str | None) -> str:
        if not toks:
            raise self.fail("empty command")
        kind, text = toks[0]
        if kind == "ident" and text not in ("true", "false", "nil"):
            if text not in FUNCTION_NAMES:
                raise self.fail(f"unsupported function {text!r}")
            args = self.args(toks[1:])
            if piped is not None:
                args.append(piped)
            return f"{text}({', '.join(args)})"
        args = self.args(toks)
        if len(args) > 1 and args[0].endswith(".Remove"):
            return f"{args[0]}({', '.join(args[1:])})"
        if piped is not None or len(args) != 1:
            raise self.fail(f"cannot call {text!r} with arguments")
        return args[0]

    # -- actions -----------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"_{prefix}{self.counter}"

    def action(self, body: str, lt: str, rt: str) -> None:  # noqa: PLR0912 - one branch per Go action
        def tag(text: str) -> str:
            return f"{{%{lt} {text} {rt}%}}"

        word = body.split(None, 1)[0] if body.split() else ""
        rest = body[len(word) :].strip()
        if body.startswith("/*"):
            self.out.append(f"{{#{lt} {rt}#}}")
        elif word == "end":
            if not self.stack:
                raise self.fail("unexpected {{ end }}")
            self.out.append(tag(self.stack.pop().closing.replace(" %}{% ", f" {rt}%}}{{%{lt} ")))
        elif word == "else":
            if not self.stack:
                raise self.fail("unexpected {{ else }}")
            top = self.stack[-1]
            if rest.startswith("if "):
                if top.kind != "if":
                    raise self.fail("else if outside if")
                self.out.append(tag(f"elif {self.pipeline(self.tokens(rest[3:]))}"))
            elif rest:
                raise self.fail(f"unsupported else {rest!r}")
            else:
                if top.kind == "with":
                    top.dot = ""
                self.out.append(tag("else"))
        elif word == "if":
            self.stack.append(_Block("if", "", "endif"))
            self.out.append(tag(f"if {self.pipeline(self.tokens(rest))}"))
        elif word == "with":
            name = self.fresh("w")
            value = self.pipeline(self.tokens(rest))
            self.out.append(tag(f"with {name} = {value}") + tag(f"if {name}"))
            self.stack.append(_Block("with", name, "endif %}{% endwith"))
        elif word == "range":
            self.range(rest, tag)
        elif word == "template":
            toks = self.tokens(rest)
            if not toks or toks[0][0] != "str":
                raise self.fail("template needs a quoted name")
            name = json.loads(toks[0][1]) if toks[0][1].startswith('"') else toks[0][1][1:-1]
            if name not in DEFAULT_TEMPLATES:
                raise self.fail(
                    f"unknown template {name!r}: only Alertmanager's default templates are "
                    "translated (write the text in Jinja2 instead)"
                )
            self.out.append(tag(f"include {DEFAULT_TEMPLATES[name]!r}"))
        elif word in ("define", "block"):
            raise self.fail(f"{{{{ {word} }}}} is not supported: write the template in Jinja2")
        elif re.match(r"\$[A-Za-z0-9_]+\s*:?=", body):
            name, value = re.split(r"\s*:?=\s*", body, maxsplit=1)
            self.out.append(tag(f"set v_{name[1:]} = {self.pipeline(self.tokens(value))}"))
        else:
            self.out.append(f"{{{{{lt} {self.pipeline(self.tokens(body))} {rt}}}}}")

    def range(self, rest: str, tag: object) -> None:
        assert callable(tag)  # noqa: S101 - a local helper's type
        m = re.match(r"(\$\w+)\s*(?:,\s*(\$\w+))?\s*:=\s*(.*)", rest, re.DOTALL)
        if m:
            first, second, value = m.group(1), m.group(2), m.group(3)
            expr = self.pipeline(self.tokens(value))
            if second:
                head = f"for v_{first[1:]}, v_{second[1:]} in _range2({expr})"
                dot = f"v_{second[1:]}"
            else:
                head = f"for v_{first[1:]} in _range1({expr})"
                dot = f"v_{first[1:]}"
        else:
            dot = self.fresh("d")
            head = f"for {dot} in _range1({self.pipeline(self.tokens(rest))})"
        self.out.append(tag(head))
        self.stack.append(_Block("for", dot, "endfor"))

    def literal(self, text: str) -> None:
        if not text:
            return
        if "{%" in text or "{#" in text or "{{" in text or "%}" in text or "#}" in text:
            self.out.append("{% raw %}" + text + "{% endraw %}")
        else:
            self.out.append(text)

    def run(self) -> str:
        pos = 0
        src = self.source
        while True:
            start = src.find("{{", pos)
            if start < 0:
                self.literal(src[pos:])
                break
            self.literal(src[pos:start])
            end = _action_end(src, start + 2)
            if end < 0:
                raise self.fail("unclosed action")
            body = src[start + 2 : end]
            lt = "-" if body.startswith("-") and body[1:2].isspace() else ""
            rt = "-" if body.endswith("-") and body[-2:-1].isspace() else ""
            body = body[1 if lt else 0 : len(body) - (1 if rt else 0)].strip()
            self.action(body, lt, rt)
            pos = end + 2
        if self.stack:
            raise self.fail(f"missing {{{{ end }}}} for {self.stack[-1].kind}")
        return "".join(self.out)


def _action_end(src: str, pos: int) -> int:
    quote = ""
    i = pos
    while i < len(src):
        c = src[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in '"`':
            quote = c
        elif src.startswith("}}", i):
            return i
        i += 1
    return -1


def translate(source: str) -> str:
    """Jinja2 source doing what the Go template ``source`` does; ``TemplateError`` if unsupported."""
    return _Translator(source).run()
