from __future__ import annotations

from pathlib import Path

import pytest

from notifier.__main__ import main
from notifier.config import load_file, load_from, parse
from notifier.errors import AlertmanagerConfigError
from notifier.route import build
from shared.config.loader import load_config

DATA = Path(__file__).parent.parent / "testdata" / "alertmanager"
GOOD = sorted((DATA / "good").glob("*.yml"))
BAD = sorted((DATA / "bad").glob("*.yml"))

EXPECTED_BAD = {
    "bad_matcher.yml": "route.routes[1].matchers[0]",
    "bad_time_interval.yml": "time_intervals[0].time_intervals[0].weekdays",
    "duplicate_receiver.yml": "receivers[1].name",
    "email_no_smarthost.yml": "receivers[0].email_configs[0]",
    "group_by_wildcard_mixed.yml": "route.group_by",
    "no_route.yml": "route",
    "root_matchers.yml": "route",
    "undefined_receiver.yml": "route.routes[0].receiver",
    "undefined_time_interval.yml": "route.routes[0].mute_time_intervals[0]",
    "unknown_field.yml": "route.group_wiat",
    "unknown_receiver_type.yml": "receivers[0]",
    "telegram_no_token.yml": "receivers[0].telegram_configs[0]",
    "webhook_no_url.yml": "receivers[0].webhook_configs[0]",
    "zero_group_interval.yml": "route.group_interval",
}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_samples_load(path: Path) -> None:
    cfg = load_file(path)
    assert cfg.am.route is not None


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_samples_fail_naming_the_path(path: Path) -> None:
    with pytest.raises(AlertmanagerConfigError) as info:
        load_file(path)
    paths = [p for p, _ in info.value.problems]
    assert EXPECTED_BAD[path.name] in paths, info.value.problems


def test_every_bad_sample_has_an_expectation() -> None:
    assert {p.name for p in BAD} == set(EXPECTED_BAD)


def test_unknown_receiver_type_error_names_the_type() -> None:
    with pytest.raises(AlertmanagerConfigError, match="carrier_pigeon_configs"):
        load_file(DATA / "bad" / "unknown_receiver_type.yml")


def test_route_defaults_are_inherited_down_the_tree() -> None:
    cfg = load_file(DATA / "good" / "simple.yml")
    root = build(cfg.route)
    assert root.opts.group_wait == 30
    assert root.opts.group_interval == 300
    assert root.opts.repeat_interval == 3 * 3600
    db = root.routes[2]
    assert db.opts.group_by == ("alertname", "cluster", "database")
    team_x = db.routes[0]
    assert team_x.opts.receiver == "team-X-pager"
    assert team_x.opts.group_by == ("alertname", "cluster", "database")
    assert team_x.opts.repeat_interval == 3 * 3600
    assert team_x.continue_


def test_defaults_when_the_root_sets_nothing() -> None:
    cfg = parse(
        {"route": {"receiver": "a"}, "receivers": [{"name": "a"}]}, base_dir=Path(), source="t"
    )
    root = build(cfg.route)
    assert (root.opts.group_wait, root.opts.group_interval, root.opts.repeat_interval) == (
        30.0,
        300.0,
        4 * 3600.0,
    )
    assert root.opts.group_by == ()
    assert not root.opts.group_by_all
    assert cfg.am.global_.resolve_timeout == 300.0


def test_full_sample_parses_legacy_matchers_time_intervals_and_receivers() -> None:
    cfg = load_file(DATA / "good" / "full.yml")
    root = build(cfg.route)
    assert root.opts.group_by_all
    infra = root.routes[0]
    assert [str(m) for m in infra.matchers] == ['service=~"^(api|web)$"', 'team="infra"']
    assert infra.opts.mute_time_intervals == ("weekends",)
    chat = root.routes[1]
    assert [str(m) for m in chat.matchers] == [
        'env="prod"',
        'region!="eu-1"',
        'severity!~"info|debug"',
    ]
    assert set(cfg.am.intervals()) == {"weekends", "office-hours"}
    hook = cfg.am.receiver("infra-webhook").webhook_configs[0]
    assert hook.max_alerts == 10
    assert not hook.send_resolved
    assert hook.http_config is not None
    assert hook.http_config.basic_auth is not None
    assert "s3cret" not in repr(hook)
    warned = [p for p, _ in cfg.warnings]
    assert "receivers[2].slack_configs[0]" not in warned  # delivered since the receivers landed
    assert "receivers[2].pushover_configs[0]" in warned


def _vigil_config(tmp_path: Path, alerting: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(f"alerting:\n{alerting}", encoding="utf-8")
    return path


def test_loads_from_a_path_relative_to_the_vigil_config(tmp_path: Path) -> None:
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "alertmanager.yml").write_text(
        (DATA / "good" / "simple.yml").read_text(), encoding="utf-8"
    )
    loaded = load_config(
        _vigil_config(tmp_path, "  alertmanager_config: am/alertmanager.yml\n"), env={}
    )
    assert load_from(loaded).route.receiver == "team-X-mails"


def test_inline_errors_are_prefixed_with_the_vigil_field(tmp_path: Path) -> None:
    loaded = load_config(
        _vigil_config(
            tmp_path,
            "  alertmanager_config:\n    route: {receiver: a, routes: [{matchers: ['x=~\"(\"']}]}\n"
            "    receivers: [{name: a}]\n",
        ),
        env={},
    )
    with pytest.raises(AlertmanagerConfigError) as info:
        load_from(loaded)
    assert info.value.problems[0][0] == "alerting.alertmanager_config.route.routes[0].matchers[0]"


def test_no_alertmanager_config_gives_a_blackhole_default(tmp_path: Path) -> None:
    loaded = load_config(_vigil_config(tmp_path, "  rule_files: []\n"), env={})
    cfg = load_from(loaded)
    assert cfg.am.receivers[0].integrations() == []


def test_check_config_reports_alertmanager_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _vigil_config(tmp_path, f"  alertmanager_config: {DATA / 'bad' / 'bad_matcher.yml'}\n")
    assert main(["--config", str(bad), "--check-config"]) == 1
    assert "route.routes[1].matchers[0]" in capsys.readouterr().err
    good = _vigil_config(tmp_path, f"  alertmanager_config: {DATA / 'good' / 'simple.yml'}\n")
    assert main(["--config", str(good), "--check-config"]) == 0
    out = capsys.readouterr()
    assert "SUCCESS" in out.out
    assert "email delivery is not implemented" not in out.err  # email is delivered now


def test_check_config_reports_an_unusable_template_naming_receiver_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    am = tmp_path / "am.yml"
    am.write_text(
        "route: {receiver: r}\n"
        "receivers:\n"
        "  - name: r\n"
        "    slack_configs:\n"
        "      - api_url: http://127.0.0.1:1/\n"
        "        title: '{{ template \"mine\" . }}'\n",
        encoding="utf-8",
    )
    bad = _vigil_config(tmp_path, f"  alertmanager_config: {am}\n")
    assert main(["--config", str(bad), "--check-config"]) == 1
    err = capsys.readouterr().err
    assert "receivers.r.slack_configs[0].title" in err
    assert "unknown template 'mine'" in err
