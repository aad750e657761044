"""Parser for the subset of Go's ``text/template`` that Prometheus rule templates use.

Supported: text, ``{{ pipeline }}`` with ``|`` chains and parenthesised
sub-pipelines, ``{{- `` / `` -}}`` trim markers, ``{{/* comments */}}``, variables
(``$x := ...``, ``$x = ...``, ``$``, ``$labels.instance``), fields from dot
(``.Labels.job``, ``.``), string, raw-string, number, ``true``/``false``/``nil``
literals, and ``if``/``else if``/``else``/``end``, ``with``/``else``/``end``,
``range`` (with ``$k, $v :=``, ``else``, ``break``, ``continue``). Anything else
(``define``, ``template``, ``block``, unknown functions) is a ``TemplateSyntaxError``
at parse time, so ``vigil rules check`` reports it, never the first evaluation.
Nothing here evaluates code: the tree is interpreted by ``alerter.template.render``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

from alerter.errors import TemplateSyntaxError

# ------------------------------------------------------------------------ tree


@dataclass(frozen=True, slots=True)
class Literal:
    value: object


@dataclass(frozen=True, slots=True)
class FieldRef:
    """``.A.B`` (``chain`` empty for ``.`` itself)."""

    chain: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VarRef:
    """``$name.A.B`` (``name`` is ``$`` for the root)."""

    name: str
    chain: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FuncRef:
    name: str


@dataclass(frozen=True, slots=True)
class Command:
    args: tuple[Arg, ...]


@dataclass(frozen=True, slots=True)
class Pipeline:
    commands: tuple[Command, ...]
    decl: tuple[str, ...] = ()
    assign: bool = False
    """``$x = v`` (assignment to an existing variable) rather than ``$x := v``."""


Arg = Union[Literal, FieldRef, VarRef, FuncRef, Pipeline]  # noqa: UP007 - runtime alias


@dataclass(slots=True)
class Text:
    text: str


@dataclass(slots=True)
class Action:
    pipe: Pipeline


@dataclass(slots=True)
class Branch:
    """``if``, ``with`` or ``range``."""

    kind: str
    pipe: Pipeline
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class LoopControl:
    kind: str  # "break" | "continue"


Node = Union[Text, Action, Branch, LoopControl]  # noqa: UP007 - runtime alias

# ----------------------------------------------------------------------- lexer

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[()|,])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'",
}  # fmt: skip
_KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str


def _unquote(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise TemplateSyntaxError(f"invalid syntax in quoted string: \\{nxt}{digits}")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif nxt in "01234567":
            digits = body[i + 1 : i + 4]
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise TemplateSyntaxError(f"invalid syntax in quoted string: unknown escape \\{nxt}")
    return "".join(out)


def _number(text: str) -> object:
    clean = text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", clean):
            return int(clean, 16)
        if re.fullmatch(r"[+-]?\d+", clean):
            return (
                int(clean, 8)
                if len(clean.lstrip("+-")) > 1 and clean.lstrip("+-")[0] == "0"
                else int(clean)
            )
        return float(clean)
    except ValueError as exc:
        raise TemplateSyntaxError(f"bad number syntax: {text!r}") from exc


def _tokens(src: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise TemplateSyntaxError(f"unexpected {src[pos]!r} in command")
        kind = m.lastgroup or ""
        pos = m.end()
        if kind != "ws":
            out.append(Token(kind, m.group()))
    return out


# ---------------------------------------------------------------------- parser

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


class _Parser:
    def __init__(self, known_funcs: Callable[[str], bool]) -> None:
        self.known = known_funcs
        self.toks: list[Token] = []
        self.i = 0

    # -- expression level ---------------------------------------------------
    def _peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _next(self) -> Token:
        tok = self._peek()
        if tok is None:
            raise TemplateSyntaxError("unexpected end of action")
        self.i += 1
        return tok

    def pipeline(
        self, toks: list[Token], *, allow_decl: bool = True, allow_two: bool = False
    ) -> Pipeline:
        self.toks, self.i = toks, 0
        pipe = self._pipeline(allow_decl=allow_decl, allow_two=allow_two)
        if self._peek() is not None:
            raise TemplateSyntaxError(f"unexpected {self._next().text!r} in command")
        return pipe

    def _pipeline(self, *, allow_decl: bool, allow_two: bool = False) -> Pipeline:
        decl: list[str] = []
        assign = False
        if allow_decl:
            save = self.i
            names: list[str] = []
            while (tok := self._peek()) is not None and tok.kind == "var" and "." not in tok.text:
                names.append(tok.text)
                self.i += 1
                nxt = self._peek()
                if (
                    nxt is not None
                    and nxt.kind == "punct"
                    and nxt.text == ","
                    and allow_two
                    and len(names) == 1
                ):
                    self.i += 1
                    continue
                break
            nxt = self._peek()
            if names and nxt is not None and nxt.kind in ("declare", "assign"):
                self.i += 1
                decl, assign = names, nxt.kind == "assign"
            else:
                self.i = save
        commands: list[Command] = []
        while True:
            commands.append(self._command())
            tok = self._peek()
            if tok is not None and tok.kind == "punct" and tok.text == "|":
                self.i += 1
                continue
            break
        for later in commands[1:]:
            if not isinstance(later.args[0], FuncRef):
                raise TemplateSyntaxError("non executable command in pipeline stage 2")
        return Pipeline(tuple(commands), tuple(decl), assign)

    def _command(self) -> Command:
        args: list[Arg] = []
        while (tok := self._peek()) is not None and not (tok.kind == "punct" and tok.text in "|),"):
            args.append(self._operand())
        if not args:
            raise TemplateSyntaxError("missing value for command")
        return Command(tuple(args))

    def _operand(self) -> Arg:  # noqa: PLR0912 - one branch per token kind
        tok = self._next()
        kind, text = tok.kind, tok.text
        if kind == "str":
            return Literal(_unquote(text[1:-1]))
        if kind == "raw":
            return Literal(text[1:-1])
        if kind == "char":
            return Literal(ord(_unquote(text[1:-1])[0]))
        if kind == "num":
            return Literal(_number(text))
        if kind == "var":
            name, *chain = text.split(".")
            return VarRef(name, tuple(chain))
        if kind == "field":
            return FieldRef(tuple(p for p in text.split(".") if p))
        if kind == "ident":
            if text in ("true", "false"):
                return Literal(text == "true")
            if text == "nil":
                return Literal(None)
            if text in _KEYWORDS:
                raise TemplateSyntaxError(f"unexpected keyword {text!r} in command")
            if not self.known(text):
                raise TemplateSyntaxError(f'function "{text}" not defined')
            return FuncRef(text)
        if kind == "punct" and text == "(":
            inner = self._pipeline(allow_decl=False)
            close = self._next()
            if close.text != ")":
                raise TemplateSyntaxError(f"unexpected {close.text!r} in parenthesized pipeline")
            return inner
        raise TemplateSyntaxError(f"unexpected {text!r} in command")


def parse(text: str, known_funcs: Callable[[str], bool]) -> list[Node]:  # noqa: PLR0912, PLR0915 - one branch per action keyword
    """Parse ``text``; ``known_funcs(name)`` says whether a function exists."""
    parser = _Parser(known_funcs)
    root: list[Node] = []
    # stack of (branch, which list we are filling)
    stack: list[tuple[Branch, list[Node]]] = []
    current = root
    pos = 0
    pending_trim = False
    declared_depth: list[int] = []

    def emit_text(chunk: str) -> None:
        if chunk:
            current.append(Text(chunk))

    while True:
        start = text.find("{{", pos)
        if start < 0:
            tail = text[pos:]
            emit_text(tail.lstrip() if pending_trim else tail)
            break
        m = _ACTION.match(text, start)
        if m is None:
            raise TemplateSyntaxError("unclosed action")
        chunk = text[pos:start]
        if pending_trim:
            chunk = chunk.lstrip()
        if m.group(1):
            chunk = chunk.rstrip()
        emit_text(chunk)
        pending_trim = bool(m.group(3))
        pos = m.end()
        body = m.group(2).strip()
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise TemplateSyntaxError("unclosed comment")
            continue
        if "{{" in body:
            raise TemplateSyntaxError('unexpected "{{" in command')
        toks = _tokens(body)
        if not toks:
            raise TemplateSyntaxError("missing value for command")
        head = toks[0]
        word = head.text if head.kind == "ident" else ""
        if word in ("if", "with", "range"):
            pipe = parser.pipeline(toks[1:], allow_two=word == "range")
            branch = Branch(word, pipe)
            current.append(branch)
            stack.append((branch, current))
            current = branch.body
            declared_depth.append(0)
        elif word == "else":
            if not stack or current is not stack[-1][0].body:
                raise TemplateSyntaxError("unexpected {{else}}")
            branch = stack[-1][0]
            if len(toks) > 1 and toks[1].kind == "ident" and toks[1].text in ("if", "with"):
                # "else if" is an if nested in the else list, closed by the same {{end}}
                inner = Branch(toks[1].text, parser.pipeline(toks[2:]))
                branch.orelse.append(inner)
                stack[-1] = (inner, stack[-1][1])
                # mark the outer as chained: the inner's {{end}} closes both
                current = inner.body
            elif len(toks) > 1:
                raise TemplateSyntaxError("unexpected tokens after {{else}}")
            else:
                current = branch.orelse
        elif word == "end":
            if len(toks) > 1:
                raise TemplateSyntaxError("unexpected tokens after {{end}}")
            if not stack:
                raise TemplateSyntaxError("unexpected {{end}}")
            _branch, parent = stack.pop()
            declared_depth.pop()
            current = parent
        elif word in ("break", "continue"):
            if not any(b.kind == "range" for b, _ in stack):
                raise TemplateSyntaxError(f"{{{{{word}}}}} outside {{{{range}}}}")
            current.append(LoopControl(word))
        elif word in ("define", "template", "block"):
            raise TemplateSyntaxError(f"{{{{{word}}}}} is not supported in Vigil's rule templates")
        else:
            current.append(Action(parser.pipeline(toks)))
    if stack:
        raise TemplateSyntaxError(f"unexpected EOF: unclosed {{{{{stack[-1][0].kind}}}}}")
    _check_vars(root, {"$", "$labels", "$externalLabels", "$externalURL", "$value"})
    return root


def _check_vars(nodes: list[Node], scope: set[str]) -> None:
    """Go rejects undefined variables at parse time; so do we."""
    local = set(scope)

    def check_pipe(pipe: Pipeline, names: set[str]) -> None:
        for cmd in pipe.commands:
            for arg in cmd.args:
                if isinstance(arg, VarRef) and arg.name not in names:
                    raise TemplateSyntaxError(f'undefined variable "{arg.name}"')
                if isinstance(arg, Pipeline):
                    check_pipe(arg, names)
        if pipe.assign:
            for name in pipe.decl:
                if name not in names:
                    raise TemplateSyntaxError(f'undefined variable "{name}"')

    for node in nodes:
        if isinstance(node, Action):
            check_pipe(node.pipe, local)
            if not node.pipe.assign:
                local.update(node.pipe.decl)
        elif isinstance(node, Branch):
            check_pipe(node.pipe, local)
            inner = local | set(node.pipe.decl)
            _check_vars(node.body, inner)
            _check_vars(node.orelse, local)
