"""Host name <-> subject token: a bijection onto subject- and KV-safe printable ASCII."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import hosttoken
from shared.errors import DecodeError

# What a NATS KV key may contain; a token must also avoid '.', '*', '>' and whitespace.
KV_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+")
FORBIDDEN_IN_SUBJECT_TOKEN = set(".*> \t\r\n")

hosts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
# Mostly the characters real host names use, plus the escape machinery.
hostish = st.text(st.sampled_from("ab-_.Z09=/ ü*~"), min_size=1, max_size=20)


@pytest.mark.parametrize(
    ("host", "token"),
    [
        ("web-1.example.com", "web-1/example/com"),
        ("db_2", "db_2"),
        ("Web-1", "Web-1"),
        ("localhost.", "localhost/"),
        ("10.0.0.1", "10/0/0/1"),
        ("host with space", "host=20with=20space"),
        ("a=b", "a=3Db"),
        ("a/b", "a=2Fb"),
        ("*", "=2A"),
        (">", "=3E"),
        ("~", "=7E"),
        ("ü", "=C3=BC"),
        ("::1", "=3A=3A1"),
    ],
)
def test_encode_gives_readable_tokens_for_common_names(host: str, token: str) -> None:
    assert hosttoken.encode(host) == token
    assert hosttoken.decode(token) == host


@settings(max_examples=300, deadline=None)
@given(st.one_of(hosts, hostish))
def test_decode_inverts_encode_for_every_host(host: str) -> None:
    assert hosttoken.decode(hosttoken.encode(host)) == host


@settings(max_examples=300, deadline=None)
@given(st.one_of(hosts, hostish))
def test_tokens_are_subject_and_kv_safe_printable_ascii(host: str) -> None:
    token = hosttoken.encode(host)
    assert token
    assert all("!" <= c <= "~" for c in token)
    assert not FORBIDDEN_IN_SUBJECT_TOKEN & set(token)
    assert KV_KEY.fullmatch(token)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("aZ9_-/=.*> 0123456789ABCDEFcdü"), max_size=12))
def test_decode_accepts_only_canonical_tokens(token: str) -> None:
    try:
        host = hosttoken.decode(token)
    except DecodeError as exc:
        reason = exc.reason
        assert reason == "subject"
    else:
        assert hosttoken.encode(host) == token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a b",
        "*",
        ">",
        "a*",
        "ü",
        "=",
        "=4",
        "=ZZ",
        "=3d",  # lower-case hex: a second spelling of "="
        "=41",  # "A" needs no escape
        "=2E",  # "." is spelled "/"
        "=C3",  # half a UTF-8 sequence
        "=FF",
    ],
)
def test_decode_rejects_what_encode_cannot_produce(token: str) -> None:
    with pytest.raises(DecodeError) as info:
        hosttoken.decode(token)
    assert info.value.reason == "subject"
    assert "cannot decode host token" in str(info.value)


@pytest.mark.parametrize("host", ["", "a\ud800b"])
def test_encode_rejects_empty_or_unencodable_names_with_value_error(host: str) -> None:
    with pytest.raises(ValueError, match="cannot encode host name"):
        hosttoken.encode(host)
