"""The Influx line protocol parser: field types, escaping rules, timestamps, errors by line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.lineprotocol import LineProtocolError, Point, parse, parse_line, to_ms


def test_a_full_line_has_tags_typed_fields_and_a_timestamp() -> None:
    p = parse_line(
        'weather,location=us-midwest,season=summer temp=82.5,count=3i,big=7u,ok=t,note="hot" '
        "1465839830100400200"
    )
    assert p == Point(
        "weather",
        {"location": "us-midwest", "season": "summer"},
        {"temp": 82.5, "count": 3, "big": 7, "ok": True, "note": "hot"},
        1465839830100400200,
    )
    assert isinstance(p.fields["temp"], float)
    assert type(p.fields["count"]) is int


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("-1.5", -1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("-12i", -12),
        ("12u", 12),
        ("t", True),
        ("TRUE", True),
        ("True", True),
        ("f", False),
        ("false", False),
        ("FALSE", False),
        ('""', ""),
    ],
)
def test_field_values_of_every_type(text: str, value: object) -> None:
    got = parse_line(f"m v={text}").fields["v"]
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize("bad", ["inf", "nan", "1.2.3", "12x", "-1u", "yes", "1_000"])
def test_invalid_field_values_are_errors(bad: str) -> None:
    with pytest.raises(LineProtocolError, match="invalid field value"):
        parse_line(f"m v={bad}")


def test_escaped_comma_and_space_in_a_measurement() -> None:
    assert parse_line(r"my\,meas\ ure v=1").measurement == "my,meas ure"


def test_escaped_comma_equals_and_space_in_tag_keys_values_and_field_keys() -> None:
    p = parse_line(r"m,t\ k\=1=a\,b\ c\=d f\,k\=\ x=1")
    assert p.tags == {"t k=1": "a,b c=d"}
    assert p.fields == {"f,k= x": 1.0}


def test_string_fields_unescape_quotes_and_backslashes_and_keep_other_characters() -> None:
    p = parse_line(r'm s="say \"hi\", a\\b, c=d e",n=1')
    assert p.fields == {"s": 'say "hi", a\\b, c=d e', "n": 1.0}


def test_a_backslash_before_other_characters_is_literal() -> None:
    p = parse_line(r"m\x,t=a\b v=1")
    assert p.measurement == r"m\x"
    assert p.tags == {"t": r"a\b"}


def test_comments_and_blank_lines_are_skipped_and_errors_name_the_line() -> None:
    text = "# a comment\n\ncpu v=1 10\r\ncpu v=2 20\n"
    assert [p.timestamp for p in parse(text)] == [10, 20]
    with pytest.raises(LineProtocolError, match="line 3: missing fields") as info:
        parse("m v=1\n\nbroken\n")
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("m", "missing fields"),
        ("m ", "empty field key"),
        (",t=a v=1", "missing measurement"),
        ("m,t v=1", "missing '=' after tag key"),
        ("m,t= v=1", "empty value of tag"),
        ("m,t=a,t=b v=1", "duplicate tag key"),
        ("m v", "missing '=' after field key"),
        ("m v=", "empty field value"),
        ('m v="open', "unterminated string"),
        ("m v=1 12.5", "invalid timestamp"),
        ("m v=1 12 13", "invalid timestamp"),
    ],
)
def test_malformed_lines_say_why(line: str, reason: str) -> None:
    with pytest.raises(LineProtocolError, match=reason):
        parse_line(line)


def test_timestamps_convert_from_each_precision_to_milliseconds() -> None:
    assert to_ms(1465839830100400200) == 1465839830100
    assert to_ms(1465839830100400, "us") == 1465839830100
    assert to_ms(1465839830100, "ms") == 1465839830100
    assert to_ms(1465839830, "s") == 1465839830000


_ident = st.text(st.characters(codec="utf-8", exclude_characters="\n\r\\"), min_size=1, max_size=8)


def _escape(text: str, chars: str) -> str:
    return "".join("\\" + c if c in chars else c for c in text)


@given(measurement=_ident, key=_ident, value=_ident, field=_ident, text=st.text(max_size=10))
def test_escaping_round_trips_arbitrary_names(
    measurement: str, key: str, value: str, field: str, text: str
) -> None:
    text = text.replace("\n", "").replace("\r", "")
    line = (
        f"{_escape(measurement, ', ')},{_escape(key, ',= ')}={_escape(value, ',= ')} "
        f'{_escape(field, ",= ")}="{_escape(text, chr(34) + chr(92))}"'
    )
    if measurement.startswith("#") or line.strip(" \t") != line:
        return  # a comment line, or leading/trailing blanks that a line parse strips
    p = parse(line)[0]
    assert (p.measurement, p.tags, p.fields) == (measurement, {key: value}, {field: text})
