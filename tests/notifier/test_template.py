"""Templates: Vigil's defaults, overrides, the Go-template translation and the sandbox."""

from __future__ import annotations

import pytest

from notifier.receivers.base import Notification
from notifier.template import TemplateError, Templates, context, vigil_url
from notifier.template_go import DEFAULT_TEMPLATES, is_go, translate
from tests.notifier.helpers import alert, at
from tests.notifier.receivers.data import TITLE, notification

# Alertmanager's own default subject (template/default.tmpl, "__subject")
AM_SUBJECT = (
    '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]'
    ' {{ .GroupLabels.SortedPairs.Values | join " " }} {{ if gt (len .CommonLabels)'
    " (len .GroupLabels) }}({{ with .CommonLabels.Remove .GroupLabels.Names }}"
    '{{ .Values | join " " }}{{ end }}){{ end }}'
)


@pytest.fixture(scope="module")
def t() -> Templates:
    return Templates()


def render(
    t: Templates, source: str | None, default: str = "empty.j2", n: Notification | None = None
) -> str:
    return t.text(source, default).render(context(n or notification()))


def test_default_title_is_alertmanagers_subject(t: Templates) -> None:
    assert render(t, None, "title.j2") == TITLE
    assert render(t, AM_SUBJECT) == TITLE  # the oracle: Alertmanager's template, translated
    resolved = notification(resolved=True)
    assert render(t, None, "title.j2", resolved) == render(t, AM_SUBJECT, n=resolved)
    assert render(t, None, "title.j2", resolved) == "[RESOLVED] HighCPU (web-1 critical)"


def test_context_has_severity_summary_runbook_counts_and_vigil_link() -> None:
    data = context(notification(n_resolved=1))
    assert data["severity"] == "critical"
    assert data["summary"] == "CPU above 90%"
    assert data["description"] == "web-1 has been busy for 10 minutes"
    assert data["runbook_url"] == "https://runbooks.example/HighCPU"
    assert (data["firing_count"], data["resolved_count"]) == (2, 1)
    assert data["vigil_url"] == (
        "http://vigil.example/alerts?filter=%7Balertname%3D%22HighCPU%22%7D&receiver=team"
    )


def test_vigil_url_is_empty_without_an_external_url() -> None:
    n = Notification("r", "k", {"a": "b"}, [alert(0, a="b")], [], "", at(0))
    assert vigil_url(n) == ""


@pytest.mark.parametrize("default", ["slack.mrkdwn.j2", "markdown.j2", "email.text.j2"])
def test_default_bodies_carry_summary_severity_counts_and_links(t: Templates, default: str) -> None:
    text = render(t, None, default)
    for needle in (
        "CPU above 90%",
        "critical",
        "https://runbooks.example/HighCPU",
        "http://vigil.example/alerts?",
    ):
        assert needle in text, (default, needle)
    assert "2" in text


@pytest.mark.parametrize(
    ("go", "expected"),
    [
        ("{{ .CommonLabels.alertname }}", "HighCPU"),
        ("{{ .GroupLabels.alertname }}/{{ .Status }}/{{ .Receiver }}", "HighCPU/firing/team"),
        ("{{ .CommonAnnotations.summary }}", "CPU above 90%"),
        ("{{ .CommonLabels.missing }}", ""),
        ("{{ range .Alerts }}{{ .Labels.job }};{{ end }}", "node;app;"),
        ("{{ range .Alerts.Firing }}{{ .Status }} {{ end }}", "firing firing"),
        ("{{ len .Alerts.Resolved }}", "0"),
        ('{{ if eq .Status "firing" }}F{{ else }}R{{ end }}', "F"),
        (
            '{{ if ne .Status "firing" }}R{{ else if eq .CommonLabels.severity "critical" }}C{{ end }}',
            "C",
        ),
        ("{{ range $k, $v := .GroupLabels }}{{ $k }}={{ $v }}{{ end }}", "alertname=HighCPU"),
        ("{{ range $i, $a := .Alerts }}{{ $i }}:{{ $a.Labels.job }} {{ end }}", "0:node 1:app"),
        ("{{ $s := .Status }}{{ $s | toUpper }}", "FIRING"),
        ('{{ index .CommonLabels "instance" }}', "web-1"),
        ('{{ .CommonLabels.alertname | toLower }} {{ printf "%s!" .Status }}', "highcpu firing!"),
        ("{{ with .CommonLabels.instance }}on {{ . }}{{ end }}", "on web-1"),
        ("{{ with .CommonLabels.nope }}x{{ else }}none{{ end }}", "none"),
        ("{{- /* a comment */ -}} a  {{- .Status -}}  b", "afiringb"),
        ("{{ range .Alerts }}{{ .Annotations.runbook_url }}{{ break_me := 1 }}{{ end }}", None),
        ('{{ template "slack.default.title" . }}', TITLE),
        ("{{ .ExternalURL }}/x", "http://vigil.example/x"),
    ],
)
def test_go_idioms_render_like_alertmanager(t: Templates, go: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(TemplateError):
            render(t, go)
        return
    assert render(t, go) == expected


def test_go_text_with_jinja_syntax_is_kept_literal(t: Templates) -> None:
    assert translate("{{ .Status }} 100%} {#x") == "{{ Status }}{% raw %} 100%} {#x{% endraw %}"


def test_every_alertmanager_default_template_name_maps_to_a_vigil_default(t: Templates) -> None:
    for name in DEFAULT_TEMPLATES:
        render(t, f'{{{{ template "{name}" . }}}}')  # renders without error


@pytest.mark.parametrize(
    ("source", "go"),
    [
        ("{{ .Status }}", True),
        ("{{ $labels.x }}", True),
        ('{{ template "x" . }}', True),
        ("{{ range .Alerts }}{{ end }}", True),
        ("{{ Status }}", False),
        ("{% if Status %}x{% endif %}", False),
        ("plain text", False),
        ('{{ index .CommonLabels "x" }}', True),
        ("{{ CommonLabels.x | upper }}", False),
    ],
)
def test_is_go_tells_the_languages_apart(source: str, go: bool) -> None:
    assert is_go(source) is go


@pytest.mark.parametrize(
    "bad",
    [
        '{{ define "x" }}y{{ end }}',
        '{{ template "custom.title" . }}',
        "{{ .Status | frobnicate }}",
        "{{ if .Status }}unclosed",
        "{{ end }}",
    ],
)
def test_unsupported_go_is_reported_by_name(t: Templates, bad: str) -> None:
    with pytest.raises(TemplateError, match="cannot translate"):
        render(t, bad)


def test_jinja_templates_are_sandboxed(t: Templates) -> None:
    with pytest.raises(TemplateError, match=r"SecurityError|unsafe"):
        render(t, "{{ Alerts.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}")


def test_html_templates_autoescape_labels(t: Templates) -> None:
    n = Notification("r", "k", {}, [alert(0, alertname="<b>&", instance='"x"')], [], "", at(0))
    out = t.html("{{ CommonLabels.alertname }} {{ CommonLabels.instance }}", "empty.j2").render(
        context(n)
    )
    assert out == "&lt;b&gt;&amp; &#34;x&#34;"
    assert "<b>&" not in t.html(None, "email.html.j2").render(context(n))


def test_broken_jinja_fails_at_render_with_the_reason(t: Templates) -> None:
    tpl = t.text("{% if %}", "empty.j2")
    with pytest.raises(TemplateError, match="cannot compile template"):
        tpl.render({})
