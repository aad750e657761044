"""Interpreter of parsed templates, and the function map (Prometheus' plus Go's built-ins).

Data is what Prometheus gives an alert template: dot is
``{Labels, ExternalLabels, ExternalURL, Value}`` and ``$labels``,
``$externalLabels``, ``$externalURL``, ``$value`` are predefined. Maps answer a
missing key with ``""`` (Prometheus sets ``missingkey=zero``).

Deliberate difference: comparisons (``eq``, ``lt``, ``gt`` ...) between an integer
and a float compare numerically, where Go fails with "incompatible types for
comparison"; ``gt $value 80`` therefore works here and not in Prometheus.
Functions that query the database (``query``, ``first``, ``label``, ``value``,
``sortByLabel``, ``strvalue``) are not provided: a template using them fails the
rule check.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote_plus

from alerter.errors import TemplateExecError
from alerter.template import gofmt
from alerter.template.parse import (
    Action,
    Branch,
    Command,
    FieldRef,
    FuncRef,
    Literal,
    LoopControl,
    Node,
    Pipeline,
    Text,
    VarRef,
)
from shared.duration import parse_duration

Func = Callable[..., Any]


def truthy(value: object) -> bool:
    """Go template truth: false, 0, nil and empty strings, maps and lists are false."""
    if value is None:
        return False
    if isinstance(value, bool | int | float | str | dict | list | tuple):
        return bool(value)
    return True


def _compare_key(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def _eq(a: object, *others: object) -> bool:
    if not others:
        raise TemplateExecError("missing argument for comparison")
    return any(_compare_key(a) == _compare_key(b) for b in others)


def _ordered(op: Callable[[Any, Any], bool]) -> Func:
    def fn(a: object, b: object) -> bool:
        ka, kb = _compare_key(a), _compare_key(b)
        if type(ka) is not type(kb) or isinstance(ka, bool) or ka is None:
            raise TemplateExecError(
                f"incompatible types for comparison: {gofmt.go_type(a)} and {gofmt.go_type(b)}"
            )
        return op(ka, kb)

    return fn


def _index(item: object, *keys: object) -> object:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, "")
        elif isinstance(item, list | tuple | str) and isinstance(key, int):
            if not 0 <= key < len(item):
                raise TemplateExecError(f"error calling index: index out of range: {key}")
            item = item[key]
        else:
            raise TemplateExecError(f"can't index item of type {gofmt.go_type(item)}")
    return item


def _len(item: object) -> int:
    if isinstance(item, str | dict | list | tuple):
        return len(item)
    raise TemplateExecError(f"error calling len: len of type {gofmt.go_type(item)}")


def _go_replacement(repl: str) -> Callable[[re.Match[str]], str]:
    """Go's ``Regexp.Expand`` template: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    token = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")

    def expand(m: re.Match[str]) -> str:
        def group(t: re.Match[str]) -> str:
            if t.group() == "$$":
                return "$"
            name = t.group(1) or t.group(2)
            try:
                got = m.group(int(name)) if name.isdigit() else m.group(name)
            except (IndexError, re.error):
                return ""
            return got or ""

        return token.sub(group, repl)

    return expand


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TemplateExecError(f"error parsing regexp: {exc}: `{pattern}`") from exc


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    return _regex(pattern).sub(_go_replacement(repl), text)


def _match(pattern: str, text: str) -> bool:
    return _regex(pattern).search(text) is not None


def _title(text: str) -> str:
    """Go's deprecated ``strings.Title``: upper-case the first letter of every word."""
    out: list[str] = []
    prev = " "
    for c in text:
        sep = (c2 := prev).isspace() or (c2.isascii() and not (c2.isalnum() or c2 == "_"))
        out.append(c.upper() if sep else c)
        prev = c
    return "".join(out)


def _split_host_port(host_port: str) -> tuple[str, str] | None:
    if host_port.startswith("["):
        end = host_port.find("]")
        if end < 0 or host_port[end + 1 : end + 2] != ":":
            return None
        return host_port[1:end], host_port[end + 2 :]
    host, sep, port = host_port.rpartition(":")
    if not sep or ":" in host:
        return None
    return host, port


def _strip_port(host_port: str) -> str:
    split = _split_host_port(host_port)
    return host_port if split is None else split[0]


def _strip_domain(host_port: str) -> str:
    split = _split_host_port(host_port)
    host, port = (host_port, "") if split is None else split
    if re.fullmatch(r"[\d.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*", host):
        return host_port
    host = host.split(".", 1)[0]
    if split is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _args(*values: object) -> dict[str, object]:
    return {f"arg{i}": v for i, v in enumerate(values)}


def _parse_duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise TemplateExecError(str(exc)) from exc


def _js(text: str) -> str:
    out = []
    for c in gofmt.go_str(text):
        if c in "\\'\"<>&=" or ord(c) < 0x20:
            out.append(f"\\u{ord(c):04X}" if c not in "\\'\"" else "\\" + c)
        else:
            out.append(c)
    return "".join(out)


def _not(value: object) -> bool:
    return not truthy(value)


def _println(*values: object) -> str:
    return " ".join(gofmt.go_str(v) for v in values) + "\n"


def _print(*values: object) -> str:
    # Go adds spaces between operands when neither is a string.
    out = ""
    for i, v in enumerate(values):
        if i and not isinstance(v, str) and not isinstance(values[i - 1], str):
            out += " "
        out += gofmt.go_str(v)
    return out


def _str_arg(fn: Callable[[str], Any]) -> Func:
    def wrapper(value: object) -> Any:
        if not isinstance(value, str):
            raise TemplateExecError(
                f"wrong type for value; expected string; got {gofmt.go_type(value)}"
            )
        return fn(value)

    return wrapper


def base_functions(external_url: str = "") -> dict[str, Func]:
    """The functions templates may call (``and``/``or`` are handled by the interpreter)."""
    from urllib.parse import urlsplit

    path = urlsplit(external_url).path
    return {
        "humanize": gofmt.humanize,
        "humanize1024": gofmt.humanize1024,
        "humanizeDuration": gofmt.humanize_duration,
        "humanizePercentage": gofmt.humanize_percentage,
        "humanizeTimestamp": gofmt.humanize_timestamp,
        "toTime": gofmt.to_time,
        "toUpper": _str_arg(str.upper),
        "toLower": _str_arg(str.lower),
        "title": _str_arg(_title),
        "reReplaceAll": _re_replace_all,
        "match": _match,
        "stripPort": _str_arg(_strip_port),
        "stripDomain": _str_arg(_strip_domain),
        "parseDuration": _str_arg(_parse_duration),
        "graphLink": lambda expr: f"/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=0",
        "tableLink": lambda expr: f"/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=1",
        "externalURL": lambda: external_url,
        "pathPrefix": lambda: path,
        "safeHtml": _str_arg(lambda s: s),
        "args": _args,
        "printf": gofmt.sprintf,
        "print": _print,
        "println": _println,
        "len": _len,
        "index": _index,
        "not": _not,
        "eq": _eq,
        "ne": lambda a, b: not _eq(a, b),
        "lt": _ordered(lambda a, b: a < b),
        "le": _ordered(lambda a, b: a <= b),
        "gt": _ordered(lambda a, b: a > b),
        "ge": _ordered(lambda a, b: a >= b),
        "html": lambda *a: html.escape(_print(*a)),
        "js": lambda *a: _js(_print(*a)),
        "urlquery": lambda *a: quote_plus(_print(*a), safe=""),
    }


KNOWN_FUNCTIONS: frozenset[str] = frozenset(base_functions()) | {"and", "or"}


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


MAX_STEPS = 100_000
"""Statements one rendering may execute: a runaway ``range`` fails instead of stalling."""


class Interpreter:
    """Executes one parsed template against one alert's data (at most ``MAX_STEPS`` statements)."""

    def __init__(
        self, funcs: Mapping[str, Func], dot: object, variables: dict[str, object]
    ) -> None:
        self.funcs = funcs
        self.out: list[str] = []
        self.scopes: list[dict[str, object]] = [{"$": dot, **variables}]
        self.dot = dot
        self.steps = 0

    def run(self, nodes: list[Node]) -> str:
        self._walk(nodes)
        return "".join(self.out)

    # -- statements ---------------------------------------------------------
    def _walk(self, nodes: list[Node]) -> None:
        for node in nodes:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise TemplateExecError(f"template runs more than {MAX_STEPS} steps")
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self._pipeline(node.pipe)
                if not node.pipe.decl:
                    self.out.append(gofmt.go_str(value))
            elif isinstance(node, Branch):
                self._branch(node)
            elif isinstance(node, LoopControl):
                raise _Break if node.kind == "break" else _Continue

    def _branch(self, node: Branch) -> None:
        self.scopes.append({})
        try:
            value = self._pipeline(node.pipe, bind=node.kind != "range")
            if node.kind == "range":
                self._range(node, value)
                return
            if not truthy(value):
                self.scopes[-1] = {}
                self._walk(node.orelse)
                return
            if node.kind == "with":
                saved, self.dot = self.dot, value
                try:
                    self._walk(node.body)
                finally:
                    self.dot = saved
            else:
                self._walk(node.body)
        finally:
            self.scopes.pop()

    @staticmethod
    def _items(value: object) -> Iterable[tuple[object, object]]:
        if isinstance(value, dict):
            return [(k, value[k]) for k in sorted(value)]
        if isinstance(value, list | tuple):
            return list(enumerate(value))
        if isinstance(value, int) and not isinstance(value, bool):
            return ((i, i) for i in range(value))  # lazily: the step budget bounds it
        if value is None:
            return []
        raise TemplateExecError(f"range can't iterate over {gofmt.go_str(value)}")

    def _range(self, node: Branch, value: object) -> None:
        items = self._items(value)
        if not value:
            self._walk(node.orelse)
            return
        saved = self.dot
        try:
            for key, item in items:
                self.steps += 1
                if self.steps > MAX_STEPS:
                    raise TemplateExecError(f"template runs more than {MAX_STEPS} steps")
                self.dot = item
                scope = self.scopes[-1]
                scope.clear()
                if len(node.pipe.decl) == 1:
                    scope[node.pipe.decl[0]] = item
                elif len(node.pipe.decl) == 2:
                    scope[node.pipe.decl[0]] = key
                    scope[node.pipe.decl[1]] = item
                try:
                    self._walk(node.body)
                except _Continue:
                    continue
                except _Break:
                    break
        finally:
            self.dot = saved

    # -- expressions --------------------------------------------------------
    def _lookup(self, name: str) -> object:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise TemplateExecError(f'undefined variable "{name}"')

    def _set(self, name: str, value: object) -> None:
        for scope in reversed(self.scopes):
            if name in scope:
                scope[name] = value
                return
        raise TemplateExecError(f'undefined variable "{name}"')

    def _pipeline(self, pipe: Pipeline, *, bind: bool = True) -> object:
        value: object = None
        for i, cmd in enumerate(pipe.commands):
            value = self._command(cmd, None if i == 0 else (value,))
        if bind and pipe.decl:
            if pipe.assign:
                self._set(pipe.decl[0], value)
            else:
                self.scopes[-1][pipe.decl[0]] = value
        return value

    def _command(self, cmd: Command, piped: tuple[object, ...] | None) -> object:
        head = cmd.args[0]
        if isinstance(head, FuncRef):
            name = head.name
            if name in ("and", "or"):
                args = [self._arg(a) for a in cmd.args[1:]] + list(piped or ())
                if not args:
                    raise TemplateExecError(
                        f"wrong number of args for {name}: want at least 1 got 0"
                    )
                for a in args[:-1]:
                    if truthy(a) == (name == "or"):
                        return a
                return args[-1]
            fn = self.funcs[name]
            args = [self._arg(a) for a in cmd.args[1:]] + list(piped or ())
            try:
                return fn(*args)
            except TemplateExecError as exc:
                raise TemplateExecError(f"error calling {name}: {exc}") from exc
            except TypeError as exc:
                raise TemplateExecError(f"wrong number or type of args for {name}: {exc}") from exc
            except (ValueError, OverflowError, re.error) as exc:
                raise TemplateExecError(f"error calling {name}: {exc}") from exc
        if len(cmd.args) > 1 or piped is not None:
            raise TemplateExecError(f"can't give argument to non-function {_describe(head)}")
        return self._arg(head)

    def _arg(self, arg: object) -> object:
        if isinstance(arg, Literal):
            return arg.value
        if isinstance(arg, Pipeline):
            return self._pipeline(arg)
        if isinstance(arg, FieldRef):
            return _fields(self.dot, arg.chain)
        if isinstance(arg, VarRef):
            return _fields(self._lookup(arg.name), arg.chain)
        if isinstance(arg, FuncRef):
            return self._command(Command((arg,)), None)
        raise TemplateExecError(f"BUG: unknown template argument {arg!r}")


def _describe(arg: object) -> str:
    if isinstance(arg, Literal):
        return gofmt.go_str(arg.value)
    if isinstance(arg, VarRef):
        return ".".join((arg.name, *arg.chain))
    if isinstance(arg, FieldRef):
        return "." + ".".join(arg.chain)
    return "pipeline"


def _fields(value: object, chain: tuple[str, ...]) -> object:
    for name in chain:
        if isinstance(value, dict):
            value = value.get(name, "")
        elif value is None:
            raise TemplateExecError(f"nil pointer evaluating .{name}")
        else:
            raise TemplateExecError(f"can't evaluate field {name} in type {gofmt.go_type(value)}")
    return value
