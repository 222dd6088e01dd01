"""The lake catalog: key <-> file naming, listing, reads, atomic writes, and that no other
module builds a lake path (so the layout cannot leak again)."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import ml_assets
from ml_assets.lib.core.catalog import (
    BATCH_SCORES,
    PREDICTION_LOG,
    RAW_EVENTS,
    RAW_LABELS,
    TRAINING_SET,
    Catalog,
    Grain,
)
from ml_assets.lib.core.lake_table import file_stem

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def test_key_file_round_trip():
    cat = Catalog("/nowhere")
    hourly, daily = cat.table(RAW_EVENTS), cat.table(RAW_LABELS)
    h = T0 + timedelta(hours=13)
    assert hourly.key(h) == "2026-07-01-13:00"
    assert hourly.stem(h) == "2026-07-01T13" == file_stem("2026-07-01-13:00")
    assert hourly.start(file_stem(hourly.key(h))) == h
    assert hourly.path("2026-07-01-13:00") == hourly.path(h) == Path(
        "/nowhere/raw_events/2026-07-01T13.parquet")
    assert daily.key(T0) == daily.stem(T0) == file_stem("2026-07-01") == "2026-07-01"
    assert daily.start("2026-07-01") == T0
    assert cat.table(TRAINING_SET).path() == Path("/nowhere/training_set.parquet")
    assert hourly.grain is Grain.HOURLY and daily.step == timedelta(days=1)
    with pytest.raises(KeyError):
        cat.table("no_such_table")


def test_the_event_tables_take_the_spec_s_grain(tmp_path):
    cat = Catalog(tmp_path, "daily")
    scores, labels = cat.table(BATCH_SCORES), cat.table(RAW_LABELS)
    assert scores.grain is Grain.DAILY and scores.step == timedelta(days=1)
    assert scores.key(T0) == "2026-07-01" and scores.path(T0).name == "2026-07-01.parquet"
    assert scores.missing(T0 + timedelta(hours=5), T0 + timedelta(days=2)) == [
        T0, T0 + timedelta(days=1)]  # lo floored to the day
    assert labels.grain is Grain.DAILY and Catalog(tmp_path).table(BATCH_SCORES).grain is Grain.HOURLY
    assert {t.name for t in cat.tables(Grain.HOURLY)} == set()
    with pytest.raises(ValueError, match="'weekly' is not a valid Grain"):
        Catalog(tmp_path, "weekly")


def test_files_missing_latest(tmp_path):
    table = Catalog(tmp_path).table(BATCH_SCORES)
    assert table.files() == [] and table.latest() is None
    for h in (0, 1, 3):
        table.write(T0 + timedelta(hours=h), pd.DataFrame({"x": [h]}))
    files, missing = table.coverage(T0, T0 + timedelta(hours=5))
    assert [p.stem for p in files] == ["2026-07-01T00", "2026-07-01T01", "2026-07-01T03"]
    assert missing == [T0 + timedelta(hours=2), T0 + timedelta(hours=4)]
    assert table.files(T0, T0 + timedelta(hours=5)) == files
    assert table.missing(T0 + timedelta(minutes=30), T0 + timedelta(hours=2)) == []  # lo floored
    assert table.latest() == T0 + timedelta(hours=3)
    assert table.partitions() == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=3)]


def test_named_files_are_listed_recursively(tmp_path):
    log = Catalog(tmp_path).table(PREDICTION_LOG)
    log.write("2026-07-01T13/b", pd.DataFrame({"x": [1]}))
    log.write("2026-07-01T12/a", pd.DataFrame({"x": [2]}))
    assert [p.parent.name for p in log.files()] == ["2026-07-01T12", "2026-07-01T13"]
    assert sorted(log.read()["x"]) == [1, 2]


def test_read_unions_by_name(tmp_path):
    table = Catalog(tmp_path).table(RAW_LABELS)
    table.write(T0, pd.DataFrame({"a": [1]}))
    table.write(T0 + timedelta(days=1), pd.DataFrame({"a": [2], "b": ["new"]}))
    df = table.read(T0, T0 + timedelta(days=2)).sort_values("a")
    assert list(df.columns) == ["a", "b"] and df["b"].isna().tolist() == [True, False]
    assert list(table.read(T0, T0 + timedelta(days=1), columns=["a"])["a"]) == [1]
    assert table.read(T0 + timedelta(days=5), T0 + timedelta(days=6)).empty
    assert "union_by_name = true" in table.relation()


def test_write_is_atomic(tmp_path):
    table = Catalog(tmp_path).table(RAW_EVENTS)
    path = table.write(T0, pd.DataFrame({"x": [1]}))
    table.write(T0, pd.DataFrame({"x": [2]}))  # replace: readers see old or new, never half
    assert pd.read_parquet(path)["x"].tolist() == [2]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    table.delete(T0)
    assert table.files() == []


# A lake path built by hand: the lake root joined, or a DataPaths.lake_file-style helper.
LAKE_PATH = re.compile(r'/ "lake"|\.lake /|lake_file\(|\.lake\)?\s*/\s*"')
OWNERS = {Path("lib/core/catalog.py"), Path("lib/core/paths.py")}  # the table layout; the root


def test_no_module_outside_the_catalog_builds_a_lake_path():
    package = Path(ml_assets.__file__).parent
    leaks = [f"{p.relative_to(package)}:{n}: {line.strip()}"
             for p in sorted(package.rglob("*.py")) if p.relative_to(package) not in OWNERS
             for n, line in enumerate(p.read_text().splitlines(), 1) if LAKE_PATH.search(line)]
    assert leaks == [], "build lake paths through lib/core/catalog.py:\n" + "\n".join(leaks)
