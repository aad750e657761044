"""Properties of the template interpreter: Go float printing round-trips; no input crashes it."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from alerter.errors import TemplateError
from alerter.template import compile_template
from alerter.template.gofmt import go_float, humanize, humanize1024, humanize_duration

PIECES = st.sampled_from(
    [
        "{{", "}}", "{{-", "-}}", " ", "$labels", ".Labels", ".x", "$value", "$", "|", "(", ")",
        "if", "else", "end", "range", "with", "humanize", "printf", '"%d"', '"a"', "1", "2.5",
        ":=", "=", "$x", "eq", "gt", "and", "or", "not", "len", "index", "/*", "*/", "text", ",",
        "break", "toUpper", "reReplaceAll", "\"(a\"", "true", "nil", "\"%c\"", "toTime", "1e300",
        "99999999999", "humanizeTimestamp", "-1", "title", "match",
    ]
)  # fmt: skip


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_go_float_round_trips_and_uses_exponent_like_go(v: float) -> None:
    text = go_float(v)
    assert float(text) == v
    if v != 0:
        exp = math.floor(math.log10(abs(v)))
        # log10 can be off by one at exact powers of ten: only check clear cases.
        if -4 <= exp < 6 and abs(v) not in (10.0**exp, 10.0 ** (exp + 1)):
            assert "e" not in text
        elif exp < -5 or exp > 6:
            assert "e" in text


@given(st.floats())
def test_humanize_functions_always_return_text(v: float) -> None:
    for fn in (humanize, humanize1024, humanize_duration):
        assert isinstance(fn(v), str)


@given(st.lists(PIECES, max_size=25).map("".join), st.floats())
def test_any_template_text_fails_only_with_template_errors(text: str, value: float) -> None:
    try:
        tpl = compile_template(text)
        tpl.render(labels={"x": "1"}, value=value)
    except TemplateError:
        pass
