"""``web.ui.load_dashboards`` parses a file again only when its text changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.config.loader import LoadedConfig, load_config
from web import ui


def config(tmp_path: Path) -> LoadedConfig:
    path = tmp_path / "vigil.yaml"
    path.write_text(
        yaml.safe_dump({"visualization": {"dashboards": ["mine/*.yaml"]}}), encoding="utf-8"
    )
    return load_config(path, env={})


def write(path: Path, title: str) -> None:
    doc = {"id": "mine", "title": title, "panels": [{"title": "Load", "targets": [{"expr": "x"}]}]}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")


def titles(loaded: LoadedConfig) -> dict[str, str]:
    body = ui.load_dashboards(loaded)
    return {d["id"]: d["title"] for d in body["dashboards"]}


def test_an_edit_shows_at_once_and_unchanged_files_are_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine").mkdir()
    mine = tmp_path / "mine" / "a.yaml"
    write(mine, "First")
    loaded = config(tmp_path)
    assert titles(loaded)["mine"] == "First"
    parsed: list[str] = []
    real = ui.parse_dashboard

    def counting(text: str, *, json_doc: bool) -> ui.Dashboard:
        parsed.append(text)
        return real(text, json_doc=json_doc)

    monkeypatch.setattr(ui, "parse_dashboard", counting)
    assert titles(loaded)["mine"] == "First"
    assert parsed == []  # nothing changed: built-ins and mine come from the last parse
    write(mine, "Other")  # same size, written at once: the text decides, not the mtime
    assert titles(loaded)["mine"] == "Other"
    assert len(parsed) == 1


def test_a_broken_file_stays_reported_until_fixed(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    mine = tmp_path / "mine" / "a.yaml"
    mine.write_text("id: [unclosed\n", encoding="utf-8")
    loaded = config(tmp_path)
    for _ in range(2):
        body = ui.load_dashboards(loaded)
        assert [Path(e["source"]).name for e in body["errors"]] == ["a.yaml"]
    write(mine, "Fixed")
    assert titles(loaded)["mine"] == "Fixed"
    assert ui.load_dashboards(loaded)["errors"] == []
