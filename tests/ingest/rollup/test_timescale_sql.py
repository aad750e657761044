"""The SQL each mode's set-up runs, pinned by snapshots, and its safety checks.

Snapshots live in ``snapshots/``; after an intended change, regenerate them
with ``VIGIL_UPDATE_SNAPSHOTS=1`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.rollup.errors import RollupConfigError, RollupSchemaError
from ingest.rollup.schema import apache_statements
from ingest.rollup.statement import Statement, render
from ingest.rollup.timescale_sql import TimescaleState, plan_timescale, refresh_windows
from shared.config.models import StorageConfig

SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(name: str, statements: list[Statement]) -> None:
    text = render(statements)
    path = SNAPSHOTS / name
    if os.environ.get("VIGIL_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}; run with VIGIL_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


def storage(**fields: object) -> StorageConfig:
    return StorageConfig.model_validate(fields)


def test_timescale_setup_of_a_fresh_database_matches_snapshot() -> None:
    assert_snapshot("timescale_fresh.sql", plan_timescale(StorageConfig(), TimescaleState()))


def test_timescale_setup_after_a_first_start_only_resets_policies() -> None:
    state = TimescaleState(
        continuous_aggregates=frozenset({"samples_1m", "samples_1h"}), compression_enabled=True
    )
    statements = plan_timescale(
        storage(retention={"raw": "30d", "rollup_1m": "180d", "rollup_1h": "5y"}), state
    )
    assert_snapshot("timescale_existing_custom_retention.sql", statements)
    assert not any("CREATE" in s.sql or "ALTER TABLE" in s.sql for s in statements)


def test_apache_rollup_tables_match_snapshot() -> None:
    assert_snapshot("apache_tables.sql", apache_statements(StorageConfig()))


def test_continuous_aggregates_use_the_apache_mode_aggregates() -> None:
    created = [s.sql for s in plan_timescale(StorageConfig(), TimescaleState())[:2]]
    assert "vigil_increase(value ORDER BY time)" in created[0]
    assert "FROM samples\n" in created[0]
    assert "vigil_increase_merge(first, last, increase ORDER BY bucket)" in created[1]
    assert "FROM samples_1m\n" in created[1]


def test_refresh_windows_cover_late_data_and_stay_inside_retention() -> None:
    windows = refresh_windows(StorageConfig())
    late = StorageConfig().rollup_late_window
    assert windows.minute.start_offset.total_seconds() > late
    assert windows.minute.start_offset.total_seconds() < StorageConfig().retention.raw
    assert windows.hour.start_offset > windows.minute.start_offset
    # At least two buckets between start and end, as refresh policies require.
    assert windows.minute.start_offset - windows.minute.end_offset >= 2 * windows.minute.end_offset


def test_a_refresh_window_reaching_dropped_raw_data_is_refused_naming_the_settings() -> None:
    config = storage(rollup_late_window="15d", retention={"raw": "15d"})
    with pytest.raises(RollupConfigError) as err:
        plan_timescale(config, TimescaleState())
    message = str(err.value)
    assert message.startswith("cannot configure rollups:")
    assert "storage.rollup_late_window" in message
    assert "storage.retention.raw (15d)" in message


def test_an_hour_window_reaching_dropped_minute_rows_is_refused() -> None:
    config = storage(
        rollup_late_window="3d", retention={"raw": "3d1h", "rollup_1m": "3d1h", "rollup_1h": "1y"}
    )
    with pytest.raises(RollupConfigError, match=r"storage\.retention\.rollup_1m \(3d1h\)"):
        refresh_windows(config)


def test_plain_tables_from_apache_mode_block_continuous_aggregates() -> None:
    state = TimescaleState(other_relations=frozenset({"samples_1m"}))
    with pytest.raises(RollupSchemaError, match="samples_1m exist as plain tables"):
        plan_timescale(StorageConfig(), state)


def test_continuous_aggregates_without_head_are_refused_with_the_way_out() -> None:
    state = TimescaleState(
        continuous_aggregates=frozenset({"samples_1m", "samples_1h"}),
        without_head=frozenset({"samples_1m", "samples_1h"}),
    )
    with pytest.raises(RollupSchemaError) as err:
        plan_timescale(StorageConfig(), state)
    assert "samples_1h, samples_1m: made by an earlier Vigil without the head column" in str(
        err.value
    )
    assert "DROP MATERIALIZED VIEW samples_1h, samples_1m CASCADE" in str(err.value)


def test_apache_tables_of_an_earlier_vigil_get_the_head_column_filled() -> None:
    state = TimescaleState(
        other_relations=frozenset({"samples_1m", "samples_1h"}),
        without_head=frozenset({"samples_1h"}),
    )
    statements = apache_statements(StorageConfig(), state)
    upgrades = [s.sql for s in statements if "ADD COLUMN" in s.sql]
    assert len(upgrades) == 1
    assert upgrades[0].startswith("ALTER TABLE samples_1h ADD COLUMN IF NOT EXISTS head")
    assert "FROM samples_1m m" in upgrades[0]
    assert statements[:4] == apache_statements(StorageConfig())[:4]
