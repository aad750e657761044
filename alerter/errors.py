"""The exception tree of ``alerter``::

VigilError (shared.errors)
└── AlerterError
    ├── RuleFileError        a rule file cannot be read or is invalid; ``problems`` lists each
    ├── HistoryError         the database cannot give the history of the rules' windows
    ├── ReplayError          the metrics stream cannot be replayed for reloaded rules
    └── TemplateError        a label or annotation template is invalid
        ├── TemplateSyntaxError   cannot parse (or uses a construct Vigil does not render)
        └── TemplateExecError     cannot render with the data given (bad argument, bad regex)
"""

from __future__ import annotations

from shared.errors import VigilError


class AlerterError(VigilError):
    """Root of every error ``alerter`` raises on purpose."""


class RuleFileError(AlerterError):
    """A rule file is invalid; ``problems`` holds one promtool-style line per error."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems or []


class HistoryError(AlerterError):
    """The database is not configured, unreachable, or failed a history query."""


class ReplayError(AlerterError):
    """A replay of the metrics stream failed (JetStream error, or it stopped delivering)."""


class TemplateError(AlerterError):
    """A Go-template subset error."""


class TemplateSyntaxError(TemplateError):
    """The template cannot be parsed or uses a construct outside the supported subset."""


class TemplateExecError(TemplateError):
    """The template parsed but cannot be rendered with the data given."""
