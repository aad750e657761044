"""Which configured group a process belongs to: the target syntax of the ``process`` collector.

A target is ``[GROUP=]MATCHER``; the first target that matches a process
takes it (a process is counted in one group only, as in process-exporter):

=======================  ====================================================
``nginx``                process name equals ``nginx`` (psutil's ``name()``:
                         the kernel's ``comm``, completed from the command
                         line when the kernel truncated it at 15 characters)
``name:nginx``           the same, explicitly (for names with ``:`` or ``=``)
``re:^php-fpm``          regular expression *searched* in the process name
``cmdline:celery.*worker``
                         regular expression searched in the command line
                         (arguments joined by single spaces)
``exe:/usr/sbin/sshd``   executable path equals (absolute), or its base name
                         equals (``exe:sshd``)
``web=cmdline:gunicorn`` any of the above, with the group named ``web``
=======================  ====================================================

The group name (label ``groupname``) defaults to the name for a plain or
``name:`` target and to the whole target text otherwise. ``GROUP=`` is only
recognised when the text before the first ``=`` is a plain identifier
(letters, digits, ``_``, ``-``, ``.``), so ``cmdline:--port=80`` is a
``cmdline:`` matcher, not a group named ``cmdline:--port``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Field = Literal["name", "re", "cmdline", "exe"]
_GROUP = re.compile(r"([A-Za-z0-9_.\-]+)=(.+)", re.DOTALL)
_PREFIXES: tuple[Field, ...] = ("name", "re", "cmdline", "exe")


@dataclass(frozen=True, slots=True)
class Matcher:
    """One parsed target. ``matches`` takes the process' fields, read lazily by the caller."""

    group: str
    field: Field
    text: str
    regex: re.Pattern[str] | None = None

    @property
    def needs_cmdline(self) -> bool:
        return self.field == "cmdline"

    @property
    def needs_exe(self) -> bool:
        return self.field == "exe"

    def matches(self, name: str, cmdline: list[str] | None, exe: str | None) -> bool:
        """Whether a process with these fields is in the group (``None``: not read or unreadable)."""
        if self.field == "name":
            return name == self.text
        if self.field == "re":
            return self.regex is not None and self.regex.search(name) is not None
        if self.field == "cmdline":
            return (
                cmdline is not None
                and self.regex is not None
                and self.regex.search(" ".join(cmdline)) is not None
            )
        if not exe:
            return False
        return (
            exe == self.text if self.text.startswith("/") else exe.rpartition("/")[2] == self.text
        )


def parse_target(target: str) -> Matcher:
    """One ``[GROUP=]MATCHER``; ``ValueError`` says what is wrong with it."""
    text = target.strip()
    if not text:
        raise ValueError("cannot use an empty process target")
    group: str | None = None
    m = _GROUP.fullmatch(text)
    if m is not None:
        group, text = m.group(1), m.group(2)
    field: Field = "name"
    value = text
    prefix, sep, rest = text.partition(":")
    if sep and prefix in _PREFIXES:
        field, value = prefix, rest
    if not value:
        raise ValueError(f"cannot use process target {target!r}: nothing to match after {field}:")
    regex: re.Pattern[str] | None = None
    if field in ("re", "cmdline"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"cannot use process target {target!r}: invalid regular expression: {exc}"
            ) from exc
    if group is None:
        group = value if field == "name" else text
    return Matcher(group, field, value, regex)


def parse_targets(targets: list[str]) -> list[Matcher]:
    """All targets, in order; ``ValueError`` on a bad one or a group name used twice."""
    matchers = [parse_target(t) for t in targets]
    groups = [m.group for m in matchers]
    for g in groups:
        if groups.count(g) > 1:
            raise ValueError(f"cannot use process targets: group {g!r} is named twice")
    return matchers
