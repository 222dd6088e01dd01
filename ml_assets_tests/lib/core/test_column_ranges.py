"""Which files can hold an id: every file holding one is found, a changed file is read again
(never answered from a stale range), a damaged cache is rebuilt, and a warm lookup reads
no file it has seen before - the cost that used to grow with the table's history."""

import os
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_assets.lib.core.catalog import COLUMN_RANGES, MICROBATCH_EVENTS, RAW_EVENTS, Catalog
from ml_assets.lib.core.column_ranges import files_holding, files_overlapping

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def _write(catalog: Catalog, hour: int, ids: list) -> None:
    catalog.table(RAW_EVENTS).write(T0 + timedelta(hours=hour), pd.DataFrame({"event_id": ids}))


def _holding(catalog: Catalog, values: list) -> list[str]:
    return [p.stem for p in files_holding(catalog, RAW_EVENTS, "event_id", pd.Series(values))]


@settings(max_examples=40, deadline=None)
@given(files=st.lists(st.lists(st.integers(-50, 50), max_size=6), min_size=1, max_size=6),
       wanted=st.lists(st.integers(-60, 60), min_size=1, max_size=8))
def test_every_file_holding_a_value_is_returned_and_none_whose_range_cannot(tmp_path_factory,
                                                                            files, wanted):
    catalog = Catalog(tmp_path_factory.mktemp("lake"))
    for hour, ids in enumerate(files):
        _write(catalog, hour, ids)
    for _ in range(2):  # cold, then from the cache
        got = set(_holding(catalog, wanted))
        stems = {h: catalog.table(RAW_EVENTS).stem(T0 + timedelta(hours=h)) for h in range(len(files))}
        for hour, ids in enumerate(files):
            holds = bool(set(ids) & set(wanted))
            in_range = bool(ids) and any(min(ids) <= w <= max(ids) for w in wanted)
            assert holds <= (stems[hour] in got) <= in_range, (hour, ids, wanted)


def test_a_rewritten_file_is_read_again_and_a_deleted_one_is_forgotten(tmp_path):
    catalog = Catalog(tmp_path)
    _write(catalog, 0, [1, 2, 3])
    _write(catalog, 1, [10, 11])
    assert _holding(catalog, [2]) == ["2026-07-01T00"]
    _write(catalog, 0, [100, 101, 102])  # same size, new ids
    assert _holding(catalog, [2]) == []
    assert _holding(catalog, [101, 11]) == ["2026-07-01T00", "2026-07-01T01"]
    catalog.table(RAW_EVENTS).delete(T0)
    assert _holding(catalog, [101, 11]) == ["2026-07-01T01"]
    cached = pd.read_parquet(catalog.table(COLUMN_RANGES).path("raw_events/event_id"))
    assert cached["file"].tolist() == ["2026-07-01T01.parquet"]


def test_a_damaged_or_foreign_cache_is_rebuilt(tmp_path):
    catalog = Catalog(tmp_path)
    _write(catalog, 0, [1, 2, 3])
    cache = catalog.table(COLUMN_RANGES).path("raw_events/event_id")
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not parquet")
    assert _holding(catalog, [3]) == ["2026-07-01T00"]
    pd.DataFrame({"file": ["2026-07-01T00.parquet"]}).to_parquet(cache)  # no ranges in it
    assert _holding(catalog, [3]) == ["2026-07-01T00"]


def test_string_ids_nulls_and_empty_files(tmp_path):
    catalog = Catalog(tmp_path)
    _write(catalog, 0, ["a-1", "a-2"])
    _write(catalog, 1, pd.Series([None, None], dtype="string"))
    _write(catalog, 2, ["b-7", None])
    _write(catalog, 3, pd.Series([], dtype="string"))
    assert _holding(catalog, ["a-15"]) == ["2026-07-01T00"]  # inside a-1..a-2 as text
    assert _holding(catalog, ["b-7", None]) == ["2026-07-01T02"]
    assert _holding(catalog, [None]) == []


def test_a_change_of_id_type_starts_the_cache_over(tmp_path):
    catalog = Catalog(tmp_path)
    _write(catalog, 0, [1, 2])
    _write(catalog, 1, [3, 4])
    assert _holding(catalog, [4]) == ["2026-07-01T01"]
    _write(catalog, 0, ["x", "y"])
    _write(catalog, 1, ["z"])
    assert _holding(catalog, ["z"]) == ["2026-07-01T01"]


def test_a_warm_lookup_opens_only_files_it_has_not_seen(tmp_path):
    """Old files are overwritten in place with garbage of the same size and given back their
    mtime: their identity is unchanged, so a lookup that opened one would fail."""
    catalog = Catalog(tmp_path)
    for hour in range(24):
        _write(catalog, hour, list(range(hour * 10, hour * 10 + 10)))
    assert _holding(catalog, [5]) == ["2026-07-01T00"]
    for p in catalog.table(RAW_EVENTS).files():
        st_ = p.stat()
        with open(p, "r+b") as f:
            f.write(b"\0" * st_.st_size)
        os.utime(p, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    _write(catalog, 24, [240, 241])
    assert _holding(catalog, [241, 5, 999]) == ["2026-07-01T00", "2026-07-02T00"]
    with pytest.raises(Exception, match="parquet|Parquet"):  # the garbage is there to be read
        pd.read_parquet(catalog.table(RAW_EVENTS).files()[0])


def test_files_overlapping_a_window_are_those_with_a_row_in_it(tmp_path):
    """Named micro-batch files say nothing of time: the ones with events in a look-back are
    found by their cached event_ts range, and a file that changes is read again."""
    catalog = Catalog(tmp_path)
    table = catalog.table(MICROBATCH_EVENTS)
    for name, hours in (("a", [0, 1]), ("b", [5]), ("c", [9, 30]), ("d", [])):
        table.write(name, pd.DataFrame({"event_ts": pd.Series(
            [T0 + timedelta(hours=h) for h in hours], dtype="datetime64[us, UTC]")}))

    def overlapping(lo: int, hi: int) -> list[str]:
        return [p.stem for p in files_overlapping(catalog, MICROBATCH_EVENTS, "event_ts",
                                                  T0 + timedelta(hours=lo),
                                                  T0 + timedelta(hours=hi))]
    assert overlapping(1, 5) == ["a"]  # [lo, hi): hour 5 is out, hour 1 is in
    assert overlapping(2, 9) == ["b"]
    assert overlapping(10, 20) == ["c"]  # inside c's range: a bound, not a set
    assert overlapping(31, 40) == []
    table.write("b", pd.DataFrame({"event_ts": pd.Series([T0 + timedelta(hours=35)],
                                                         dtype="datetime64[us, UTC]")}))
    assert overlapping(31, 40) == ["b"]
