"""The API's pure rules: silence updates and expiry, filters, postable alerts, time format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifier.api.alerts import msg_id, to_events
from notifier.api.original import mask
from shared.alertmanager.apierrors import ApiError, BadRequest
from shared.alertmanager.filters import (
    matches_filter,
    parse_filter,
    parse_receiver,
    receivers_match,
)
from shared.alertmanager.models import PostableAlert, PostableSilence, fmt_time
from shared.alertmanager.silences import can_update, check, expired, ms, sort_key
from shared.wire import Matcher, Silence
from tests.notifier.helpers import T0, at


def silence(start: float, end: float, sid: str = "s", name: str = "alertname") -> Silence:
    return Silence(
        id=sid,
        matchers=[Matcher(name=name, value="X")],
        starts_at=at(start),
        ends_at=at(end),
        updated_at=T0,
    )


def test_fmt_time_writes_go_strfmt_milliseconds() -> None:
    t = datetime(2026, 1, 5, 12, 0, 1, 987654, tzinfo=UTC)
    assert fmt_time(t) == "2026-01-05T12:00:01.987Z"
    assert ms(t) == datetime(2026, 1, 5, 12, 0, 1, 987000, tzinfo=UTC)


def test_an_active_silence_may_only_change_its_end_in_place() -> None:
    old = silence(-10, 100)
    now = T0
    assert can_update(old, old.model_copy(update={"ends_at": at(200)}), now)
    assert not can_update(old, old.model_copy(update={"starts_at": at(-5)}), now)
    assert not can_update(old, old.model_copy(update={"ends_at": at(-1)}), now)
    assert not can_update(old, silence(-10, 100, name="instance"), now)


def test_a_pending_silence_may_move_but_not_into_the_past_and_expired_ones_never() -> None:
    pending = silence(10, 100)
    assert can_update(pending, silence(20, 50), T0)
    assert not can_update(pending, silence(-1, 50), T0)
    assert not can_update(silence(-10, -5), silence(-10, 100), T0)


def test_expiring_ends_an_active_silence_and_collapses_a_pending_one() -> None:
    assert expired(silence(-10, 100), T0).ends_at == T0
    gone = expired(silence(10, 100), T0)
    assert (gone.starts_at, gone.ends_at) == (T0, T0)
    with pytest.raises(ApiError, match="already expired"):
        expired(silence(-10, -5), T0)


def test_silences_sort_active_by_end_then_pending_by_start_then_expired_latest_first() -> None:
    items = [
        silence(-10, -5, "old"),
        silence(50, 60, "later"),
        silence(-10, 20, "b"),
        silence(10, 60, "soon"),
        silence(-10, 10, "a"),
        silence(-10, -1, "recent"),
    ]
    order = [s.id for s in sorted(items, key=lambda s: sort_key(s, T0))]
    assert order == ["a", "b", "soon", "later", "recent", "old"]


def _posted(**over: object) -> PostableSilence:
    body: dict[str, object] = {
        "matchers": [{"name": "alertname", "value": "X", "isRegex": False}],
        "startsAt": T0.isoformat(),
        "endsAt": (T0 + timedelta(hours=1)).isoformat(),
        "createdBy": "me",
        "comment": "c",
    }
    body.update(over)
    return PostableSilence.model_validate(body)


def test_check_applies_alertmanagers_silence_rules() -> None:
    assert check(_posted(), T0).matchers[0].is_equal
    with pytest.raises(BadRequest, match="start time must be before end time"):
        check(_posted(endsAt=T0.isoformat()), T0)
    with pytest.raises(BadRequest, match="in the past"):
        check(_posted(), T0 + timedelta(hours=2))
    with pytest.raises(BadRequest, match="empty string"):
        check(_posted(matchers=[{"name": "a", "value": "", "isRegex": False}]), T0)
    with pytest.raises(BadRequest, match="empty label name"):
        check(_posted(matchers=[{"name": "", "value": "x", "isRegex": False}]), T0)


def test_filters_follow_alertmanagers_match_filter_labels() -> None:
    f = parse_filter(['alertname="X"', 'env!=""'])
    assert matches_filter(f, {"alertname": "X", "env": "prod"})
    assert not matches_filter(f, {"alertname": "X"})  # env!="" needs env
    assert not matches_filter(parse_filter(['env=~"p.*"']), {"alertname": "X"})
    assert matches_filter(parse_filter(['env=""']), {"alertname": "X"})
    assert matches_filter(parse_filter(["{a=~b.*,c!=d}"]), {"a": "bb", "c": "e"})
    with pytest.raises(BadRequest):
        parse_filter(["a=~("])


def test_receiver_filter_is_an_anchored_regex() -> None:
    pattern = parse_receiver("team-.*")
    assert receivers_match(["team-db"], pattern)
    assert not receivers_match(["my-team-db"], pattern)
    assert receivers_match(["x"], parse_receiver(None))
    with pytest.raises(BadRequest):
        parse_receiver("(")


def test_postable_alerts_get_defaults_and_resolve_by_end_time() -> None:
    now = T0
    alerts = [
        PostableAlert.model_validate({"labels": {"a": "1"}}),
        PostableAlert.model_validate({"labels": {"a": "2"}, "endsAt": at(-5).isoformat()}),
        PostableAlert.model_validate(
            {"labels": {"a": "3"}, "startsAt": "0001-01-01T00:00:00Z", "annotations": None}
        ),
    ]
    events, problems = to_events(alerts, now, 300.0)
    assert problems == []
    assert (events[0].starts_at, events[0].ends_at, events[0].status) == (now, at(300), "firing")
    assert (events[1].starts_at, events[1].status) == (at(-5), "resolved")
    assert events[2].starts_at == now
    assert msg_id(events[0]) != msg_id(events[0].model_copy(update={"ends_at": at(360)}))


def test_original_config_hides_secrets_but_keeps_paths_and_routes() -> None:
    raw = {
        "global": {"smtp_auth_password": "p", "slack_api_url": "https://hooks/x"},
        "route": {"receiver": "r", "matchers": ['a="b"']},
        "receivers": [
            {
                "name": "r",
                "webhook_configs": [
                    {
                        "url": "https://x/token",
                        "http_config": {"basic_auth": {"username": "u", "password": "pw"}},
                    }
                ],
                "telegram_configs": [{"bot_token_file": "/run/t", "chat_id": 1}],
                "email_configs": [{"to": "a@b", "auth_password": "pw"}],
            }
        ],
    }
    masked = mask(raw)
    assert masked["global"] == {"smtp_auth_password": "<secret>", "slack_api_url": "<secret>"}
    assert masked["route"] == raw["route"]
    hook = masked["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "<secret>"
    assert hook["http_config"]["basic_auth"] == {"username": "u", "password": "<secret>"}
    assert masked["receivers"][0]["telegram_configs"] == [
        {"bot_token_file": "/run/t", "chat_id": 1}
    ]
    assert masked["receivers"][0]["email_configs"][0]["auth_password"] == "<secret>"
