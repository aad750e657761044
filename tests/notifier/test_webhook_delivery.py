from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notifier.config.receivers import WebhookConfig
from notifier.delivery import Attempt, RetryPolicy, deliver
from notifier.errors import PermanentError, RetryableError
from notifier.receivers.base import BuildContext, Notification
from notifier.receivers.http import retry_after
from notifier.receivers.registry import build_receivers
from notifier.receivers.webhook import WebhookIntegration, go_time, payload
from notifier.ssrf import URLGuard, redact
from tests.notifier.helpers import alert, at, config
from tests.notifier.hookserver import Answer, HookServer, check_webhook_payload


@pytest.fixture
async def hook() -> AsyncIterator[HookServer]:
    server = await HookServer().start()
    yield server
    await server.stop()


def _notification(n_firing: int = 2, n_resolved: int = 1) -> Notification:
    firing = [
        alert(0, alertname="Down", instance=f"h{i}", annotations={"summary": "down"})
        for i in range(n_firing)
    ]
    resolved = [
        alert(0, 10, resolved=True, alertname="Down", instance="r") for _ in range(n_resolved)
    ]
    return Notification(
        receiver="team",
        group_key='{}:{alertname="Down"}',
        group_labels={"alertname": "Down"},
        firing=firing,
        resolved=resolved,
        external_url="http://vigil.example",
        at=at(30),
    )


def _ctx() -> BuildContext:
    return BuildContext(base_dir=Path(), guard=URLGuard())


def _webhook(url: str, **kw: object) -> WebhookIntegration:
    return WebhookIntegration(WebhookConfig.model_validate({"url": url, **kw}), 0, _ctx())


def test_payload_is_alertmanagers_version_4() -> None:
    n = _notification()
    doc = payload(n)
    check_webhook_payload(doc)
    assert doc["status"] == "firing"
    assert doc["groupKey"] == '{}:{alertname="Down"}'
    assert doc["commonLabels"] == {"alertname": "Down"}
    assert doc["commonAnnotations"] == {}
    assert [a["status"] for a in doc["alerts"]] == ["firing", "firing", "resolved"]
    assert doc["alerts"][0]["startsAt"] == "2026-01-05T12:00:00Z"
    assert doc["truncatedAlerts"] == 0


def test_max_alerts_truncates_and_counts() -> None:
    doc = payload(_notification(3, 1), max_alerts=2)
    assert len(doc["alerts"]) == 2
    assert doc["truncatedAlerts"] == 2


def test_go_time_trims_fraction_zeros() -> None:
    assert go_time(at(0.5)) == "2026-01-05T12:00:00.5Z"
    assert go_time(at(0)) == "2026-01-05T12:00:00Z"


async def test_webhook_posts_the_payload_with_basic_auth(hook: HookServer) -> None:
    wh = _webhook(hook.url(), http_config={"basic_auth": {"username": "u", "password": "p@ss"}})
    await wh.notify(_notification())
    await wh.close()
    [req] = hook.received()
    assert req.method == "POST"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"u:p@ss").decode()
    check_webhook_payload(req.json())
    assert req.json()["receiver"] == "team"


async def test_webhook_bearer_token_from_authorization(hook: HookServer, tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("t0ken\n")
    cfg = WebhookConfig.model_validate(
        {"url": hook.url(), "http_config": {"authorization": {"credentials_file": "tok"}}}
    )
    wh = WebhookIntegration(cfg, 0, BuildContext(base_dir=tmp_path, guard=URLGuard()))
    await wh.notify(_notification())
    await wh.close()
    assert hook.received()[0].headers["authorization"] == "Bearer t0ken"


async def test_errors_classify_status_and_never_show_the_url_path(hook: HookServer) -> None:
    hook.on("/secret-token/hook", Answer(404, body=b"nope"))
    wh = _webhook(hook.url("/secret-token/hook"))
    with pytest.raises(PermanentError) as info:
        await wh.notify(_notification())
    assert "secret-token" not in str(info.value)
    assert "HTTP 404" in str(info.value)
    hook.on("/busy", Answer(429, headers={"Retry-After": "7"}))
    wh2 = _webhook(hook.url("/busy"))
    with pytest.raises(RetryableError) as info2:
        await wh2.notify(_notification())
    assert info2.value.retry_after == 7.0
    hook.on("/down", Answer(503))
    wh3 = _webhook(hook.url("/down"))
    with pytest.raises(RetryableError):
        await wh3.notify(_notification())
    await wh3.close()
    await wh.close()
    await wh2.close()


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("120") == 120.0
    assert retry_after("Mon, 05 Jan 2026 12:01:00 GMT", now=at(0)) == 60.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_retry_plan_backs_off_with_jitter_and_honours_retry_after() -> None:
    p = RetryPolicy(initial=1, multiplier=2, max_delay=8, jitter=0.5)
    assert [p.backoff(n, 0.5) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]
    assert p.backoff(1, 0.0) == 0.5
    assert p.backoff(1, 0.999999) == pytest.approx(1.5, abs=1e-5)
    assert p.next_delay(1, 0, 60, 0.5, retry_after=30) == 30
    assert p.next_delay(1, 0, 60, 0.5, retry_after=0.1) == 1
    assert p.next_delay(3, 57, 60, 0.5) is None


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def _run(
    hook: HookServer, path: str, deadline: float = 60
) -> tuple[bool, list[Attempt], _FakeClock]:
    clock = _FakeClock()
    attempts: list[Attempt] = []

    async def report(a: Attempt) -> None:
        attempts.append(a)

    wh = _webhook(hook.url(path))
    ok = await deliver(
        wh,
        _notification(),
        policy=RetryPolicy(initial=1, jitter=0),
        deadline=deadline,
        report=report,
        clock=clock,
        sleep=clock.sleep,
        rand=lambda: 0.5,
    )
    await wh.close()
    return ok, attempts, clock


async def test_delivery_retries_5xx_then_succeeds(hook: HookServer) -> None:
    hook.on("/flaky", Answer(500), Answer(502), Answer(200))
    ok, attempts, clock = await _run(hook, "/flaky")
    assert ok
    assert [a.outcome for a in attempts] == ["retrying", "retrying", "success"]
    assert clock.sleeps == [1, 2]


async def test_delivery_honours_retry_after(hook: HookServer) -> None:
    hook.on("/limited", Answer(429, headers={"Retry-After": "5"}), Answer(200))
    ok, _attempts, clock = await _run(hook, "/limited")
    assert ok
    assert clock.sleeps == [5]


async def test_permanent_4xx_is_not_retried(hook: HookServer) -> None:
    hook.on("/bad", Answer(400))
    ok, attempts, clock = await _run(hook, "/bad")
    assert not ok
    assert [a.outcome for a in attempts] == ["failed"]
    assert clock.sleeps == []
    assert len(hook.received("/bad")) == 1


async def test_delivery_gives_up_at_the_deadline(hook: HookServer) -> None:
    hook.on("/down", Answer(503))
    ok, attempts, _clock = await _run(hook, "/down", deadline=10)
    assert not ok
    assert [a.outcome for a in attempts] == ["retrying", "retrying", "retrying", "failed"]


async def test_attempt_timeout_is_retryable(hook: HookServer) -> None:
    hook.on("/slow", Answer(delay=5), Answer(200))
    attempts: list[Attempt] = []

    async def report(a: Attempt) -> None:
        attempts.append(a)

    async def no_sleep(_s: float) -> None:
        return None

    wh = _webhook(hook.url("/slow"))
    ok = await deliver(
        wh,
        _notification(),
        policy=RetryPolicy(),
        deadline=60,
        report=report,
        attempt_timeout=0.2,
        sleep=no_sleep,
    )
    await wh.close()
    assert ok
    assert attempts[0].outcome == "retrying"
    assert "timed out" in (attempts[0].error or "")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x",
        "http://[::ffff:169.254.169.254]/x",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/latest",
        "http://0.0.0.0:80/",
        "file:///etc/passwd",
    ],
)
async def test_ssrf_guard_refuses_link_local_and_metadata(url: str) -> None:
    with pytest.raises(PermanentError):
        await URLGuard().check(url)


async def test_ssrf_guard_allows_loopback_private_and_the_allow_list() -> None:
    guard = URLGuard()
    await guard.check("http://127.0.0.1:9/x")
    await guard.check("http://[::1]:9/x")
    await guard.check("http://10.1.2.3/x")
    await guard.check("http://localhost:9/x")
    allowed = URLGuard(["169.254.169.254/32", "metadata.google.internal"])
    await allowed.check("http://169.254.169.254/")
    await allowed.check("http://metadata.google.internal/")


def test_redact_keeps_only_scheme_host_and_port() -> None:
    assert (
        redact("https://hooks.slack.com/services/T/B/XYZ?x=1")
        == "https://hooks.slack.com/<redacted>"
    )


async def test_registry_builds_webhooks_and_marks_other_types_unsupported() -> None:
    cfg = config(
        {
            "global": {
                "slack_api_url": "https://hooks.slack.com/x",
                "http_config": {"follow_redirects": False},
            },
            "route": {"receiver": "r"},
            "receivers": [
                {
                    "name": "r",
                    "webhook_configs": [{"url": "http://127.0.0.1:1/"}],
                    "slack_configs": [{}],
                    "pushover_configs": [{"user_key": "u", "token": "t"}],
                },
                {"name": "empty"},
            ],
        }
    )
    built = build_receivers(cfg.am, _ctx())
    assert [i.kind for i in built["r"]] == ["webhook", "slack", "pushover"]
    assert built["empty"] == []
    wh = built["r"][0]
    assert isinstance(wh, WebhookIntegration)
    assert wh.cfg.http_config is not None
    assert not wh.cfg.http_config.follow_redirects
    slack = built["r"][1]
    assert slack.cfg.api_url.get_secret_value() == "https://hooks.slack.com/x"  # type: ignore[attr-defined]  # from global
    with pytest.raises(PermanentError, match="not implemented"):
        await built["r"][2].notify(_notification())


async def test_redirects_to_refused_addresses_are_refused(hook: HookServer) -> None:
    hook.on(
        "/bounce", Answer(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    )
    wh = _webhook(hook.url("/bounce"))
    with pytest.raises(PermanentError, match="link-local"):
        await wh.notify(_notification())
    await wh.close()
    assert len(hook.received("/bounce")) == 1
