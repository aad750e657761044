"""File-based target discovery: Prometheus file_sd files, re-read when they change."""

from __future__ import annotations

import json
import os
from pathlib import Path

from structlog.testing import capture_logs

from agent.targets import Target, TargetSource


def write(path: Path, text: str, *, bump: int = 0) -> None:
    path.write_text(text, encoding="utf-8")
    if bump:
        # A change within the filesystem's timestamp granularity must still be seen:
        # tests move mtime explicitly instead of sleeping.
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump))


def test_static_targets_come_first_then_files_by_path_with_their_labels(tmp_path: Path) -> None:
    write(tmp_path / "b.json", json.dumps([{"targets": ["b1"], "labels": {"team": "x"}}]))
    write(
        tmp_path / "a.yaml",
        "- targets: [a1, a2]\n  labels: {env: prod}\n- targets: [a3]\n",
    )
    src = TargetSource(["s1"], [str(tmp_path / "*.json"), str(tmp_path / "*.yaml")], owner="t")
    assert src.targets == [Target("s1", {})]  # before the first refresh
    assert src.refresh() == [
        Target("s1", {}),
        Target("a1", {"env": "prod"}),
        Target("a2", {"env": "prod"}),
        Target("a3", {}),
        Target("b1", {"team": "x"}),
    ]


def test_a_changed_file_is_read_again_and_an_unchanged_one_is_not(tmp_path: Path) -> None:
    f = tmp_path / "t.yml"
    write(f, "- targets: [one]\n")
    src = TargetSource([], [str(tmp_path / "*.yml")], owner="t")
    assert [t.target for t in src.refresh()] == ["one"]
    # Same size and mtime: not read again (a different content proves it was not).
    st = f.stat()
    f.write_text("- targets: [two]\n", encoding="utf-8")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [t.target for t in src.refresh()] == ["one"]
    write(f, "- targets: [three, four]\n", bump=10_000_000)
    assert [t.target for t in src.refresh()] == ["three", "four"]


def test_new_files_add_targets_and_deleted_files_remove_them(tmp_path: Path) -> None:
    src = TargetSource(["s"], [str(tmp_path / "*.yaml")], owner="t")
    assert [t.target for t in src.refresh()] == ["s"]
    write(tmp_path / "x.yaml", "- targets: [x]\n")
    assert [t.target for t in src.refresh()] == ["s", "x"]
    (tmp_path / "x.yaml").unlink()
    assert [t.target for t in src.refresh()] == ["s"]


def test_a_bad_file_keeps_its_last_good_targets_and_is_logged_once(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    write(f, "- targets: [good]\n  labels: {a: b}\n")
    src = TargetSource([], [str(f)], owner="scripts")
    assert src.refresh() == [Target("good", {"a": "b"})]
    with capture_logs() as logs:
        write(f, "- targets: [bad\n", bump=10_000_000)
        assert src.refresh() == [Target("good", {"a": "b"})]
        assert src.refresh() == [Target("good", {"a": "b"})]
        write(f, "- labels: {a: b}\n", bump=20_000_000)  # still bad, differently
        assert src.refresh() == [Target("good", {"a": "b"})]
        write(f, "- targets: [better]\n", bump=30_000_000)
        assert src.refresh() == [Target("better", {})]
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["file"] == str(f)
    assert warnings[0]["collector"] == "scripts"
    assert "cannot parse" in warnings[0]["reason"]
    assert [e["event"] for e in logs if e["log_level"] == "info"] == ["target file read again"]


def test_a_file_bad_from_the_start_gives_no_targets_and_invalid_labels_are_refused(
    tmp_path: Path,
) -> None:
    f = tmp_path / "t.json"
    write(f, json.dumps([{"targets": ["x"], "labels": {"__meta": "no"}}]))
    src = TargetSource(["s"], [str(f)], owner="t")
    with capture_logs() as logs:
        assert src.refresh() == [Target("s", {})]
    assert "invalid label name" in logs[0]["reason"]


def test_identical_targets_are_listed_once_and_an_empty_file_is_no_targets(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "- targets: [x, x]\n- targets: [x]\n  labels: {k: v}\n")
    write(tmp_path / "b.yaml", "")
    src = TargetSource(["x"], [str(tmp_path / "*.yaml")], owner="t")
    assert src.refresh() == [Target("x", {}), Target("x", {"k": "v"})]
