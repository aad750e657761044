"""Label matchers as Alertmanager has them: ``=``, ``!=``, ``=~``, ``!~``.

Semantics (``labels.Matcher`` of Alertmanager):

- a label that is absent has the value ``""``, so ``foo=""`` matches alerts
  without ``foo`` and ``foo!=""`` those that have it;
- regular expressions are anchored at both ends (``^(?:re)$``), as in
  Prometheus; Python's ``re`` stands in for Go's RE2 (RE2's syntax is a
  subset for everything Alertmanager configs use, except that RE2 rejects
  back-references and look-arounds, which we accept);
- ``parse_matchers`` reads the classic text form (Alertmanager's
  ``labels.ParseMatchers``): an optional ``{...}``, comma-separated
  matchers, values quoted or not, ``\\"``, ``\\\\`` and ``\\n`` unescaped
  inside values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from shared.alertmanager.errors import MatcherError

MatchType = Literal["=", "!=", "=~", "!~"]

_MATCHER_RE: Final = re.compile(
    r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL
)
LABEL_NAME_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """One matcher; ``pattern`` is the compiled, anchored regex of ``=~``/``!~`` matchers."""

    name: str
    op: MatchType
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False, hash=False, repr=False)

    @classmethod
    def make(cls, name: str, op: MatchType, value: str) -> LabelMatcher:
        """Build a matcher, compiling regexes; ``MatcherError`` if the regex is invalid."""
        pattern = None
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(f"^(?:{value})$", re.DOTALL)
            except re.error as exc:
                raise MatcherError(
                    f"cannot compile regex {value!r} of matcher {name}{op}: {exc}"
                ) from exc
        return cls(name, op, value, pattern)

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` when absent) satisfies this matcher."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self.pattern is not None  # noqa: S101 - make() always compiles regex matchers
        found = self.pattern.match(value) is not None
        return found if self.op == "=~" else not found

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return self.matches(labels.get(self.name, ""))

    def __str__(self) -> str:
        """Alertmanager's ``Matcher.String()``: ``name=~"value"`` with Go quoting."""
        return f"{self.name}{self.op}{go_quote(self.value)}"

    def sort_key(self) -> tuple[str, str, int]:
        """Alertmanager sorts a route's matchers by name, value, then type."""
        return (self.name, self.value, ("=", "!=", "=~", "!~").index(self.op))


def matches_all(
    matchers: tuple[LabelMatcher, ...] | list[LabelMatcher], labels: Mapping[str, str]
) -> bool:
    return all(m.matches_labels(labels) for m in matchers)


def matchers_string(matchers: tuple[LabelMatcher, ...] | list[LabelMatcher]) -> str:
    """``labels.Matchers.String()``: ``{a="b",c=~"d"}``."""
    return "{" + ",".join(str(m) for m in matchers) + "}"


def go_quote(text: str) -> str:
    """Go's ``%q`` / ``strconv.Quote`` for the characters label values hold."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def split_matchers(text: str) -> list[str]:
    """Split on commas outside double quotes, as ``labels.ParseMatchers`` does."""
    text = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    inside = escaped = False
    for ch in text:
        if ch == "," and not inside:
            tokens.append("".join(token))
            token = []
            continue
        if ch == '"':
            if not escaped:
                inside = not inside
            else:
                escaped = False
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(ch)
    last = "".join(token).strip()
    if last:
        tokens.append(last)
    return tokens


def parse_matcher(text: str) -> LabelMatcher:
    """Parse one ``name<op>value`` matcher (``labels.ParseMatcher``)."""
    m = _MATCHER_RE.match(text)
    if m is None:
        raise MatcherError(f"cannot parse matcher {text.strip()!r}: bad matcher format")
    name, op, raw = m.group(1), m.group(2), m.group(3)
    value = _unescape(raw)
    if value is None:
        raise MatcherError(
            f"cannot parse matcher {text.strip()!r}: value contains an unescaped double quote"
        )
    return LabelMatcher.make(name, op, value)  # type: ignore[arg-type]


def _unescape(raw: str) -> str | None:
    """A matcher's value with quotes and escapes resolved; ``None`` for a stray quote."""
    expect_quote = raw.startswith('"')
    if expect_quote:
        raw = raw[1:]
    value: list[str] = []
    escaped = False
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            # \n, \" and \\ are escapes; any other backslash is literal
            value.append(_ESCAPES.get(ch, "\\" + ch))
        elif ch == "\\" and i < len(raw) - 1:
            escaped = True
        elif ch == '"':
            if not expect_quote or i < len(raw) - 1:
                return None
            expect_quote = False
        else:
            value.append(ch)
    return None if expect_quote else "".join(value)


_ESCAPES: Final = {"n": "\n", '"': '"', "\\": "\\"}


def parse_matchers(text: str) -> list[LabelMatcher]:
    """Parse ``{a="b", c=~"d|e"}`` or ``a=b,c!=d`` (``labels.ParseMatchers``)."""
    return [parse_matcher(token) for token in split_matchers(text)]
